//go:build integration

package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/internal/testutil"
)

// TestRedisRollbackNeverReissuesCursors: Redis crashes and comes back from
// a snapshot older than the last events it accepted (the issue's "SAVE,
// publish more, kill -9"). Node B publishes after the rollback although
// only node A's subscriber saw the lost events, so no node's memory can
// tell; the dataset's generation does. Every cursor ever returned names
// one event, and the subscriber on A is told to resync before the new
// events, never handed a stale one or skipped past one.
func TestRedisRollbackNeverReissuesCursors(t *testing.T) {
	t.Parallel()
	srv := testutil.StartRedis(t)
	ctx := context.Background()
	node := func() (*Hub, Backend) {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr, DialerRetries: 1})
		t.Cleanup(func() { c.Close() })
		b := openRedis(t, c, backendOpts{prefix: "rollback"})
		h := New(b)
		runHub(t, h)
		return h, b
	}
	a, _ := node()
	b, bBackend := node()
	sub := &collector{}
	subscribe(t, a, "c", nil, sub)

	accepted := map[string]string{} // cursor → data of the one event it names
	seq := 0
	publish := func() (Event, error) {
		ev, err := b.Publish(ctx, "c", Publication{Type: "t", Data: json.RawMessage(fmt.Sprintf(`{"seq":%d}`, seq))})
		if err != nil {
			return ev, err
		}
		if prev, ok := accepted[ev.ID]; ok {
			t.Fatalf("cursor %s reissued: first for %s, now for %s", ev.ID, prev, ev.Data)
		}
		accepted[ev.ID] = string(ev.Data)
		seq++
		return ev, nil
	}
	mustPublish := func(n int) (last Event) {
		for range n {
			ev, err := publish()
			if err != nil {
				t.Fatalf("publish %d: %v", seq, err)
			}
			last = ev
		}
		return last
	}
	kept := mustPublish(5)
	snapshot := srv.Snapshot()
	lost := mustPublish(5)
	testutil.Eventually(t, "node A's subscriber has every event", func() bool { return len(sub.events()) == 10 })

	srv.RestartFrom(snapshot)
	defer func() {
		if t.Failed() {
			for _, d := range sub.deliveries() {
				t.Logf("%v %s %s %s", d.Kind, d.Position, d.Event.ID, d.Event.Data)
			}
		}
	}()
	testutil.Eventually(t, "node B publishes again", func() bool {
		_, err := publish()
		return err == nil
	})
	caughtUp := func(last Event) func() bool {
		return func() bool {
			ds := sub.deliveries()
			d := ds[len(ds)-1]
			return d.Kind == KindEvent && d.Event.ID == last.ID || d.Kind == KindResync && d.Position == last.Cursor
		}
	}
	testutil.Eventually(t, "node A's subscriber is told of the new epoch", caughtUp(mustPublish(4)))
	// Live delivery goes on in the new epoch.
	last := mustPublish(3)
	testutil.Eventually(t, "node A's subscriber gets the new events", caughtUp(last))
	if last.Cursor.Epoch == kept.Cursor.Epoch {
		t.Fatalf("publishing after the rollback kept epoch %s", kept.Cursor.Epoch)
	}
	ds := sub.deliveries()[1:] // after KindSubscribed
	for i, d := range ds[:10] {
		testutil.Equal(t, fmt.Sprintf("kind of delivery %d before the rollback", i), KindEvent, d.Kind)
	}
	ds = ds[10:]
	testutil.Equal(t, "kind of the first delivery after the rollback", KindResync, ds[0].Kind)
	// Node A may see the rolled-back dataset before node B starts the new
	// epoch: it then resyncs at the old epoch's top and again at the new
	// epoch's start. Each resync is true when sent, and never silent.
	for len(ds) > 1 && ds[1].Kind == KindResync {
		ds = ds[1:]
	}
	var evs []Event
	for i, d := range ds[1:] {
		testutil.Equal(t, fmt.Sprintf("kind of delivery %d after the resync", i), KindEvent, d.Kind)
		testutil.Equal(t, "data of "+d.Event.ID, accepted[d.Event.ID], string(d.Event.Data))
		evs = append(evs, d.Event)
	}
	offsets(t, evs, ds[0].Position.Offset+1, last.Cursor.Offset)

	// A client resuming from before or after the snapshot is told to refetch.
	for _, since := range []Event{kept, lost} {
		if _, _, err := bBackend.History(ctx, "c", since.Cursor); !errors.Is(err, ErrUnrecoverable) {
			t.Errorf("History since %s (before the rollback): %v, want ErrUnrecoverable", since.ID, err)
		}
	}
}

// TestRedisCleanRestartStartsNewEpoch: Redis restarted from a dump that
// has every event (a clean SHUTDOWN, or AOF). The node cannot tell it from
// a rollback, so it starts a new epoch: one spurious resync, never a
// silent one.
func TestRedisCleanRestartStartsNewEpoch(t *testing.T) {
	t.Parallel()
	srv := testutil.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, DialerRetries: 1})
	t.Cleanup(func() { c.Close() })
	b := openRedis(t, c, backendOpts{})
	ctx := context.Background()
	before := publishN(t, b, "c", 3)
	again := publishN(t, b, "c", 1)[0]
	testutil.Equal(t, "epoch of a second publish without a restart", before[0].Cursor.Epoch, again.Cursor.Epoch)

	srv.RestartFrom(srv.Snapshot())
	var after Event
	testutil.Eventually(t, "Publish works again", func() bool {
		ev, err := b.Publish(ctx, "c", Publication{Type: "t"})
		after = ev
		return err == nil
	})
	if after.Cursor.Epoch == before[0].Cursor.Epoch {
		t.Fatalf("publishing after a restart kept epoch %s", after.Cursor.Epoch)
	}
	testutil.Equal(t, "offset of the first event of the new epoch", uint64(1), after.Cursor.Offset)
}

// TestRedisPromotedReplicaStartsNewEpoch: a replica that missed the last
// events is promoted (Sentinel failover with a lagging replica). Its
// process did not restart, so run_id is unchanged; master_replid tells.
func TestRedisPromotedReplicaStartsNewEpoch(t *testing.T) {
	t.Parallel()
	primary, replica := testutil.StartRedis(t), testutil.StartRedis(t)
	ctx := context.Background()
	pc := redis.NewClient(&redis.Options{Addr: primary.Addr})
	rc := redis.NewClient(&redis.Options{Addr: replica.Addr})
	t.Cleanup(func() { pc.Close(); rc.Close() })
	if err := rc.SlaveOf(ctx, "127.0.0.1", fmt.Sprint(primary.Port)).Err(); err != nil {
		t.Fatal(err)
	}
	onPrimary := openRedis(t, pc, backendOpts{prefix: "failover"})
	onReplica := openRedis(t, rc, backendOpts{prefix: "failover"})
	synced := publishN(t, onPrimary, "c", 3)
	testutil.Eventually(t, "the replica has the first events", func() bool {
		top, err := onReplica.Top(ctx, "c")
		return err == nil && top == synced[2].Cursor
	})
	// The replica is cut off and promoted; the old primary accepts two
	// more events the new one never sees.
	if err := rc.SlaveOf(ctx, "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	lost := publishN(t, onPrimary, "c", 2)
	after := publishN(t, onReplica, "c", 1)[0]
	for _, ev := range append(synced, lost...) {
		if ev.ID == after.ID {
			t.Fatalf("the promoted replica reissued cursor %s", ev.ID)
		}
	}
	if after.Cursor.Epoch == synced[0].Cursor.Epoch {
		t.Fatalf("publishing on the promoted replica kept epoch %s", after.Cursor.Epoch)
	}
}
