//go:build integration

package hub

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/internal/testutil"
)

// TestRedisDedupeSurvivesRestart: message ids hold across a Redis restart
// as far as Redis kept them. The restart starts a new epoch (the dataset's
// generation changed), yet a retry of an id the snapshot kept is answered
// with the first event, from the old epoch, and stores nothing; an id the
// snapshot lost is published anew.
func TestRedisDedupeSurvivesRestart(t *testing.T) {
	t.Parallel()
	srv := testutil.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, DialerRetries: 1})
	t.Cleanup(func() { c.Close() })
	b := openRedis(t, c, backendOpts{})
	ctx := context.Background()
	kept, err := b.Publish(ctx, "c", withID("t", `"kept"`, "k:0"))
	noErr(t, "Publish k:0", err)
	snapshot := srv.Snapshot()
	_, err = b.Publish(ctx, "c", withID("t", `"lost"`, "l:0"))
	noErr(t, "Publish l:0", err)
	srv.RestartFrom(snapshot)

	var again Event
	testutil.Eventually(t, "a publish after the restart", func() bool {
		again, err = b.Publish(ctx, "c", withID("t", `"kept"`, "k:0"))
		return err == nil
	})
	testutil.Equal(t, "retry of a kept id is a duplicate", true, again.Duplicate)
	testutil.Check(t, "the retry's event", sameOf(kept), sameOf(again))
	lost, err := b.Publish(ctx, "c", withID("t", `"lost"`, "l:0"))
	noErr(t, "Publish l:0 again", err)
	testutil.Equal(t, "retry of a lost id is a duplicate", false, lost.Duplicate)
	if lost.Cursor.Epoch == kept.Cursor.Epoch {
		t.Errorf("the first publish after the restart is in the old epoch: %s", lost.ID)
	}
}
