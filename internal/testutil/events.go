package testutil

import (
	"testing"
	"time"

	"github.com/handoff-health/handoff/client"
)

// NextTimeout bounds how long Next waits for an event (a failure bound,
// not a speed assertion).
const NextTimeout = 20 * time.Second

// Next returns c's next event of one of kinds, skipping other kinds. An
// error event it was not asked for fails the test, since it would
// otherwise be skipped silently.
func Next(t testing.TB, c *client.Client, kinds ...client.Kind) client.Event {
	t.Helper()
	deadline := time.After(NextTimeout)
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatalf("events closed while waiting for %v", kinds)
			}
			for _, k := range kinds {
				if ev.Kind == k {
					return ev
				}
			}
			if ev.Kind == client.KindError {
				t.Fatalf("waiting for %v: error on channel %q: %v", kinds, ev.Channel, ev.Err)
			}
		case <-deadline:
			t.Fatalf("no %v event within %s", kinds, NextTimeout)
		}
	}
}

// NextEvent returns c's next published event on channel, skipping others.
func NextEvent(t testing.TB, c *client.Client, channel string) client.Event {
	t.Helper()
	for {
		if ev := Next(t, c, client.KindEvent); ev.Channel == channel {
			return ev
		}
	}
}
