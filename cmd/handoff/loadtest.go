package main

import (
	"fmt"
	"io"
)

// loadtest is not built yet (issue "handoff loadtest"); it says so rather
// than pretending to measure anything.
func loadtest(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "handoff loadtest: not implemented yet")
	return 1
}
