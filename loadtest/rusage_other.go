//go:build !unix

package loadtest

// processUsage is not measured off Unix; the report then omits it.
func processUsage() usage { return usage{} }
