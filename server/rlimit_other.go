//go:build !unix

package server

// descriptorLimit is unknown off Unix; --max-conns applies as given.
func descriptorLimit() (int, bool) { return 0, false }
