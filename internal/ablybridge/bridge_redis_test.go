//go:build integration

package ablybridge

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/testutil"
)

// redisNode builds a node whose hub and bridge state live in Redis under
// prefix, as a production handoff process does.
func redisNode(t *testing.T, addr, prefix string, cfg Config) *node {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	backend, err := hub.NewRedis(hub.RedisConfig{Client: c, Prefix: prefix})
	must(t, err)
	t.Cleanup(func() { backend.Close() })
	progress, err := NewRedisProgress(RedisProgressConfig{Client: c, Prefix: prefix})
	must(t, err)
	return newNode(t, backend, progress, cfg, nil)
}

func TestBridgeResumesAfterRestartWithRedis(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	stub := newAblyStub(t)
	prefix := "restart" + strconv.Itoa(r.Port)
	chans := []string{"session:r1", "session:r2", "session:r3"}
	evs := map[string][]hub.Event{}

	first := redisNode(t, r.Addr, prefix, testConfig(stub)).start(t)
	for _, ch := range chans {
		evs[ch] = first.publish(t, ch, 0, 5)
	}
	testutil.Eventually(t, "the first events at Ably", func() bool { return stub.total() == 15 })

	// Ably starts storing messages without answering, then goes away:
	// the node has a backlog, and the message in flight was stored by Ably
	// but never acknowledged.
	stub.mode.Store(stubHang)
	for _, ch := range chans {
		evs[ch] = append(evs[ch], first.publish(t, ch, 5, 20)...)
	}
	testutil.Eventually(t, "the backlog to be failing", func() bool {
		_, dups := stub.counts()
		return first.metric(t, "handoff_ably_retries_total") >= 3 && dups >= 1
	})
	stub.Down()
	first.stop()

	// A new process on the same Redis: it finds the pending channels and
	// resumes from the stored cursors once Ably is back.
	second := redisNode(t, r.Addr, prefix, testConfig(stub)).start(t)
	stub.mode.Store(stubOK)
	stub.Up()
	testutil.Eventually(t, "the backlog at Ably", func() bool { return stub.total() == 75 })
	for _, ch := range chans {
		checkMirrored(t, stub, ch, evs[ch])
	}
	if _, dups := stub.counts(); dups == 0 {
		t.Errorf("no duplicate discarded: the unacknowledged messages should have been sent again under their ids")
	}
	if got := second.metric(t, "handoff_ably_bridged_total"); got < 60 {
		t.Errorf("the second node bridged %v events, want at least the 60 of the backlog", got)
	}
	checkRedisSettled(t, r.Addr, prefix, chans, evs)
	checkLogsClean(t, first.logs)
	checkLogsClean(t, second.logs)
}

// checkRedisSettled waits for the pending set to empty and checks each
// channel's stored cursor names its last event.
func checkRedisSettled(t *testing.T, addr, prefix string, chans []string, evs map[string][]hub.Event) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	ctx := context.Background()
	testutil.Eventually(t, "the pending set to empty", func() bool {
		n, err := c.ZCard(ctx, prefix+":ably:pending").Result()
		return err == nil && n == 0
	})
	for _, ch := range chans {
		got, err := c.Get(ctx, prefix+":{"+ch+"}:ably").Result()
		must(t, err)
		if want := evs[ch][len(evs[ch])-1].ID; got != want {
			t.Errorf("%s: stored cursor %q, want %q", ch, got, want)
		}
	}
}

func TestBridgeTwoNodesOneChannelWithRedis(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	stub := newAblyStub(t)
	prefix := "twonodes" + strconv.Itoa(r.Port)
	nodes := []*node{
		redisNode(t, r.Addr, prefix, testConfig(stub)).start(t),
		redisNode(t, r.Addr, prefix, testConfig(stub)).start(t),
	}
	chans := []string{"session:x", "session:y"}
	evs := map[string][]hub.Event{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	// A phone's requests land on either node: each channel's events are
	// published alternately through both, one at a time.
	for _, ch := range chans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				ev := nodes[i%2].publish(t, ch, i, 1)
				mu.Lock()
				evs[ch] = append(evs[ch], ev...)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	testutil.Eventually(t, "every event at Ably", func() bool { return stub.total() == 60 })
	for _, ch := range chans {
		checkMirrored(t, stub, ch, evs[ch])
	}
	bridged := nodes[0].metric(t, "handoff_ably_bridged_total") + nodes[1].metric(t, "handoff_ably_bridged_total")
	_, dups := stub.counts()
	t.Logf("bridged %v publishes for 60 events; Ably discarded %d duplicates", bridged, dups)
	checkRedisSettled(t, r.Addr, prefix, chans, evs)
	for _, n := range nodes {
		checkLogsClean(t, n.logs)
	}
}
