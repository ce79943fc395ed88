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
	EventuallyWithin(t, what, EventuallyTimeout, cond)
}

// EventuallyWithin is Eventually with its own bound, for waits that are
// long by nature (a process starting, a Redis failover). The bound is a
// failure bound, never a speed assertion.
func EventuallyWithin(t testing.TB, what string, bound time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", bound, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
