package main

import (
	"fmt"
	"io"
)

// bench is not built yet; it says so rather than pretending to measure.
func bench(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "handoff bench: not implemented yet")
	return 1
}
