// Package backoff is handoff's one retry delay: exponential with "equal
// jitter". Every retry loop (the Go client's reconnect, the Ably bridge,
// the ALEX client) uses it, so they cannot drift apart.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy bounds the delays. Its zero value is not useful: set both fields.
type Policy struct {
	// Min is the delay before the first retry (attempt 0), before jitter.
	Min time.Duration
	// Max caps the delay, before jitter.
	Max time.Duration
}

// Delay returns the wait before retry attempt+1 (attempt counts from 0):
// Min doubled per attempt, capped at Max, then "equal jitter": half of it
// fixed and a random part of the other half. The fixed half means a retry
// never collapses into a tight loop; the random half means a fleet cut off
// at once does not come back at once.
func (p Policy) Delay(attempt int) time.Duration {
	d := p.Max
	if attempt < 62 {
		if e := p.Min << attempt; e > 0 && e < d {
			d = e
		}
	}
	if d <= 0 {
		return 0
	}
	half := d / 2
	return half + rand.N(half+1)
}

// Sleep waits d, or until ctx ends; it reports whether the full wait passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Spread returns a random duration in (3d/4, d]. A per-socket timer armed
// with it (heartbeats, pings) drifts apart from the timers of sockets that
// connected in the same burst, so their work does not arrive in bursts of
// its own; the upper bound is kept, so a deadline it serves still holds.
func Spread(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	q := d / 4
	return d - rand.N(q)
}
