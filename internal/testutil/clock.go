package testutil

import (
	"sync"
	"time"
)

// Clock is a settable clock for code that takes a `func() time.Time`.
// It starts at the real time, cut to milliseconds like every stored time,
// and moves only when Advance is called. Safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock at the current UTC time, to the millisecond.
func NewClock() *Clock { return &Clock{t: time.Now().UTC().Truncate(time.Millisecond)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
