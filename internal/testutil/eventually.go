package testutil

import (
	"testing"
	"time"
)

// EventuallyTimeout bounds how long Eventually waits. It is a failure bound
// on a loaded 2-core CI machine, never a speed assertion.
const EventuallyTimeout = 20 * time.Second

// Eventually polls cond until it holds, failing the test with what after
// EventuallyTimeout.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(EventuallyTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
