package ablybridge

import (
	"context"
	"sync"
	"time"

	"github.com/handoff-health/handoff/hub"
)

// MemoryProgress keeps the bridge's state in process memory, for the
// single-node memory hub: both lose everything on restart together, so
// nothing here could outlive the history it points into anyway.
type MemoryProgress struct {
	now func() time.Time

	mu      sync.Mutex
	pending map[string]int64 // channel → mark, Unix ms
	cursors map[string]hub.Cursor
	locks   map[string]memLock
}

type memLock struct {
	owner   string
	expires time.Time
}

var _ Progress = (*MemoryProgress)(nil)

// NewMemoryProgress returns an empty in-memory Progress.
func NewMemoryProgress() *MemoryProgress {
	return &MemoryProgress{
		now:     time.Now,
		pending: make(map[string]int64),
		cursors: make(map[string]hub.Cursor),
		locks:   make(map[string]memLock),
	}
}

// MarkPending implements Progress.
func (p *MemoryProgress) MarkPending(ctx context.Context, channel string) error {
	p.mu.Lock()
	p.pending[channel] = p.now().UnixMilli()
	p.mu.Unlock()
	return nil
}

// Pending implements Progress.
func (p *MemoryProgress) Pending(ctx context.Context) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.pending))
	for ch := range p.pending {
		out = append(out, ch)
	}
	return out, nil
}

// Mark implements Progress.
func (p *MemoryProgress) Mark(ctx context.Context, channel string) (Mark, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, ok := p.pending[channel]
	if !ok {
		return Mark{}, false, nil
	}
	return Mark{At: at, Age: time.Duration(p.now().UnixMilli()-at) * time.Millisecond}, true, nil
}

// Settle implements Progress.
func (p *MemoryProgress) Settle(ctx context.Context, channel string, m Mark) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if at, ok := p.pending[channel]; !ok || at != m.At {
		return false, nil
	}
	delete(p.pending, channel)
	return true, nil
}

// Cursor implements Progress.
func (p *MemoryProgress) Cursor(ctx context.Context, channel string) (hub.Cursor, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cursors[channel], nil
}

// SetCursor implements Progress.
func (p *MemoryProgress) SetCursor(ctx context.Context, channel string, c hub.Cursor) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	old, ok := p.cursors[channel]
	if ok && old.Epoch == c.Epoch && old.Offset >= c.Offset {
		return nil
	}
	if c.IsZero() {
		delete(p.cursors, channel)
		return nil
	}
	p.cursors[channel] = c
	return nil
}

// Lock implements Progress. In one process the bridge already runs one
// worker per channel; the lock exists for the contract's sake and tests.
func (p *MemoryProgress) Lock(ctx context.Context, channel, owner string, ttl time.Duration) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if l, ok := p.locks[channel]; ok && l.owner != owner && now.Before(l.expires) {
		return false, nil
	}
	p.locks[channel] = memLock{owner: owner, expires: now.Add(ttl)}
	return true, nil
}

// Unlock implements Progress.
func (p *MemoryProgress) Unlock(ctx context.Context, channel, owner string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l, ok := p.locks[channel]; ok && l.owner == owner {
		delete(p.locks, channel)
	}
	return nil
}
