package ablybridge

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/testutil"
)

// progressImpl is one Progress implementation under test.
type progressImpl struct {
	name string
	new  func(t *testing.T) Progress
}

// progressImpls are the Progress implementations every contract test runs
// against. Memory is always here; progress_redis_test.go (integration tag)
// adds Redis standalone and Redis Cluster, whose CROSSSLOT rule catches a
// script touching keys of two slots.
var progressImpls = []progressImpl{
	{"memory", func(t *testing.T) Progress { return NewMemoryProgress() }},
}

func TestProgressPendingMarks(t *testing.T) {
	t.Parallel()
	for _, impl := range progressImpls {
		t.Run(impl.name, func(t *testing.T) {
			t.Parallel()
			p, ctx := impl.new(t), context.Background()
			_, ok, err := p.Mark(ctx, "session:a")
			must(t, err)
			testutil.Equal(t, "Mark of an unmarked channel: ok", false, ok)
			must(t, p.MarkPending(ctx, "session:a"))
			must(t, p.MarkPending(ctx, "session:b"))
			pending, err := p.Pending(ctx)
			must(t, err)
			slices.Sort(pending)
			testutil.Equal(t, "Pending", []string{"session:a", "session:b"}, pending)
			m1, ok, err := p.Mark(ctx, "session:a")
			must(t, err)
			testutil.Equal(t, "Mark of a pending channel: ok", true, ok)
			if m1.Age < 0 || m1.Age > time.Minute {
				t.Fatalf("Mark age %v, want between 0 and a minute", m1.Age)
			}
			// A newer mark (a publish began since m1 was read) keeps it pending.
			time.Sleep(5 * time.Millisecond)
			must(t, p.MarkPending(ctx, "session:a"))
			done, err := p.Settle(ctx, "session:a", m1)
			must(t, err)
			testutil.Equal(t, "Settle with a stale mark: done", false, done)
			m2, _, err := p.Mark(ctx, "session:a")
			must(t, err)
			done, err = p.Settle(ctx, "session:a", m2)
			must(t, err)
			testutil.Equal(t, "Settle with the current mark: done", true, done)
			pending, err = p.Pending(ctx)
			must(t, err)
			testutil.Equal(t, "Pending after settle", []string{"session:b"}, pending)
		})
	}
}

func TestProgressCursor(t *testing.T) {
	t.Parallel()
	for _, impl := range progressImpls {
		t.Run(impl.name, func(t *testing.T) {
			t.Parallel()
			p, ctx := impl.new(t), context.Background()
			steps := []struct {
				set, want hub.Cursor
			}{
				{hub.Cursor{Epoch: "e1", Offset: 5}, hub.Cursor{Epoch: "e1", Offset: 5}},
				// A slower node finishing late never moves it back.
				{hub.Cursor{Epoch: "e1", Offset: 3}, hub.Cursor{Epoch: "e1", Offset: 5}},
				{hub.Cursor{Epoch: "e1", Offset: 12}, hub.Cursor{Epoch: "e1", Offset: 12}},
				// A new epoch (history lost) replaces it, even lower.
				{hub.Cursor{Epoch: "e2", Offset: 1}, hub.Cursor{Epoch: "e2", Offset: 1}},
				{hub.Cursor{}, hub.Cursor{}},
			}
			c, err := p.Cursor(ctx, "session:c")
			must(t, err)
			testutil.Equal(t, "fresh Cursor", hub.Cursor{}, c)
			for i, s := range steps {
				must(t, p.SetCursor(ctx, "session:c", s.set))
				got, err := p.Cursor(ctx, "session:c")
				must(t, err)
				if got != s.want {
					t.Fatalf("step %d: SetCursor(%v) → Cursor %v, want %v", i, s.set, got, s.want)
				}
			}
		})
	}
}

func TestProgressLock(t *testing.T) {
	t.Parallel()
	for _, impl := range progressImpls {
		t.Run(impl.name, func(t *testing.T) {
			t.Parallel()
			p, ctx := impl.new(t), context.Background()
			lock := func(owner string, ttl time.Duration) bool {
				ok, err := p.Lock(ctx, "session:l", owner, ttl)
				must(t, err)
				return ok
			}
			testutil.Equal(t, "a takes the lock", true, lock("a", time.Minute))
			testutil.Equal(t, "b takes a's lock", false, lock("b", time.Minute))
			testutil.Equal(t, "a extends its lock", true, lock("a", time.Minute))
			must(t, p.Unlock(ctx, "session:l", "b")) // not b's to release
			if lock("b", time.Minute) {
				t.Fatal("b released a's lock")
			}
			must(t, p.Unlock(ctx, "session:l", "a"))
			if !lock("b", 50*time.Millisecond) {
				t.Fatal("b refused after a released")
			}
			testutil.Eventually(t, "b's lock to expire", func() bool { return lock("a", time.Minute) })
		})
	}
}

func TestNewRedisProgressConfig(t *testing.T) {
	if _, err := NewRedisProgress(RedisProgressConfig{}); err == nil {
		t.Error("no client accepted")
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer c.Close()
	if _, err := NewRedisProgress(RedisProgressConfig{Client: c, Prefix: "a{b}"}); err == nil {
		t.Error("a prefix with a hash tag accepted")
	}
	p, err := NewRedisProgress(RedisProgressConfig{Client: c})
	must(t, err)
	if got := p.cursorKey("session:x"); got != "handoff:{session:x}:ably" {
		t.Errorf("cursor key %q", got)
	}
	if err := p.MarkPending(context.Background(), "session:x"); err == nil {
		t.Error("MarkPending with Redis down succeeded")
	} else if !strings.Contains(err.Error(), "unavailable") {
		t.Errorf("MarkPending with Redis down: %v, want an unavailable error", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
