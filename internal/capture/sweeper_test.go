package capture

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestRunSweeper: the background sweeper removes expired sessions on its
// own and stops with its context.
func TestRunSweeper(t *testing.T) {
	t.Parallel()
	e := newEnv(t, memoryBackend(), Config{SweepInterval: 5 * time.Millisecond})
	c := e.create("enc-sweep")
	live := e.subscribe(c.Channel, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.api.RunSweeper(ctx) }()
	e.clock.Advance(DefaultSessionTTL)
	live.wait(t, EventSessionExpired)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("RunSweeper returned %v", err)
	}
}
