package capture

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// addrLimiter is a token bucket per client address (httpx.ClientAddr), for
// failed QR claims: only a claim that failed takes a token, so a client's
// junk uses up its own bucket and nobody else's, and a valid QR code is
// never refused for it. It is per node: with several nodes behind a
// balancer an address gets the limit on each, which still bounds guessing
// far below anything useful.
type addrLimiter struct {
	limit rate.Limit
	burst int
	// idle is how long an untouched bucket takes to refill; after that it
	// equals a new one and is dropped, which bounds memory.
	idle time.Duration

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastPrune time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// newAddrLimiter returns nil (no limit) for a negative rate.
func newAddrLimiter(perMinute float64, burst int) *addrLimiter {
	if perMinute < 0 {
		return nil
	}
	l := rate.Limit(perMinute / 60)
	return &addrLimiter{
		limit:   l,
		burst:   burst,
		idle:    time.Duration(float64(burst) / float64(l) * float64(time.Second)),
		buckets: make(map[string]*bucket),
	}
}

// allow takes one token for addr, or says how long until one is available.
func (l *addrLimiter) allow(addr string, now time.Time) (time.Duration, bool) {
	if l == nil {
		return 0, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastPrune) > l.idle {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > l.idle {
				delete(l.buckets, k)
			}
		}
		l.lastPrune = now
	}
	b := l.buckets[addr]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[addr] = b
	}
	b.seen = now
	res := b.lim.ReserveN(now, 1)
	if !res.OK() {
		return l.idle, false
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d, false
	}
	return 0, true
}
