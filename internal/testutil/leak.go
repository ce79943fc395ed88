package testutil

import (
	"testing"

	"go.uber.org/goleak"
)

// VerifyNoLeaks runs a package's tests and then fails the run if any
// goroutine started by them is still running. Use it as TestMain:
//
//	func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }
//
// Goroutines that a library keeps for the whole process (go-redis's and
// net/http's idle connection reapers) are ignored by name in opts.
func VerifyNoLeaks(m *testing.M, opts ...goleak.Option) {
	goleak.VerifyTestMain(m, opts...)
}
