//go:build integration

package realtime

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/handoff-health/handoff/client"
	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestTwoNodesOneRedis runs two realtime servers, each on its own hub and
// Redis backend, on one redis-server. A client on node A receives what
// node B publishes; when its socket to A is cut and the "load balancer"
// sends it to B, it resumes from its cursor with nothing lost.
func TestTwoNodesOneRedis(t *testing.T) {
	t.Parallel()
	const channel = "session:two-nodes"
	r := testutil.StartRedis(t)
	v := newVerifier(t)
	a := startNode(t, redisHub(t, r, hub.RedisConfig{}), v, Config{})
	b := startNode(t, redisHub(t, r, hub.RedisConfig{}), v, Config{})

	lb := &balancer{}
	lb.point(a)
	cl := newClient(t, a.url, v, lb.httpClient())
	if err := cl.Subscribe(channel, "0"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = cl.Run(ctx) }()
	waitForKind(t, cl, client.KindSubscribed)

	var published []hub.Event
	published = append(published, publish(t, b.hub, channel, "image.added", 50)...)
	got, _, _ := collect(t, cl, 50, 10*time.Second)
	assertSameEvents(t, got, published)

	// Cut the socket to A and send the reconnect to B, while both nodes
	// keep publishing.
	var wg sync.WaitGroup
	var more []hub.Event
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 100 {
			on := a.hub
			if i%2 == 1 {
				on = b.hub
			}
			ev, err := on.Publish(context.Background(), channel, hub.Publication{Type: "image.added", Data: []byte(`{"i":` + itoa(i) + `}`)})
			if err != nil {
				t.Errorf("publish: %v", err)
				return
			}
			more = append(more, ev)
			time.Sleep(time.Millisecond)
		}
	}()
	time.Sleep(20 * time.Millisecond)
	lb.point(b)
	if !a.dropOne() {
		t.Fatal("no socket on node A to drop")
	}
	got, resyncs, _ := collect(t, cl, 100, 10*time.Second)
	wg.Wait()
	if resyncs != 0 {
		t.Errorf("%d resyncs on a node switch", resyncs)
	}
	assertSameEvents(t, got, more)
	if n := countConns(b); n != 1 {
		t.Errorf("node B has %d sockets, want the resumed one", n)
	}
}

// TestRedisRestartUnderSubscriber kills Redis under a subscribed client
// and brings it back empty. Publishes during the outage fail loudly; after
// it, new events arrive, preceded by an explicit resync, never a silent gap.
func TestRedisRestartUnderSubscriber(t *testing.T) {
	t.Parallel()
	const channel = "session:outage"
	r := testutil.StartRedis(t)
	v := newVerifier(t)
	n := startNode(t, redisHub(t, r, hub.RedisConfig{PingInterval: 200 * time.Millisecond}), v, Config{})
	cl := newClient(t, n.url, v, nil)
	if err := cl.Subscribe(channel, "0"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = cl.Run(ctx) }()
	waitForKind(t, cl, client.KindSubscribed)
	before := publish(t, n.hub, channel, "image.added", 10)
	got, _, _ := collect(t, cl, 10, 10*time.Second)
	assertSameEvents(t, got, before)

	r.Kill()
	for i := range 3 {
		if _, err := n.hub.Publish(context.Background(), channel, hub.Publication{Type: "image.added"}); !errors.Is(err, hub.ErrUnavailable) {
			t.Fatalf("publish %d during outage: err = %v, want ErrUnavailable", i, err)
		}
	}
	r.Start()

	// Publish until Redis takes writes again, then a few more.
	var after []hub.Event
	testutil.Eventually(t, "publishes succeed after the restart", func() bool {
		ev, err := n.hub.Publish(context.Background(), channel, hub.Publication{Type: "image.added", Data: []byte(`{"after":0}`)})
		if err == nil {
			after = append(after, ev)
		}
		return err == nil
	})
	after = append(after, publish(t, n.hub, channel, "image.added", 5)...)
	if after[0].Cursor.Epoch == before[0].Cursor.Epoch {
		t.Fatalf("epoch survived an empty restart: %s", after[0].ID)
	}

	// The client must be told to resync before any post-restart event,
	// then receive every event after the resync position, in order.
	resync := waitForKind(t, cl, client.KindResync) // fails on an event first
	var want []hub.Event
	for _, ev := range after {
		if resync.ID == "0" || ev.Cursor.Offset > mustCursor(t, resync.ID).Offset {
			want = append(want, ev)
		}
	}
	got, resyncs, _ := collect(t, cl, len(want), 10*time.Second)
	assertSameEvents(t, got, want)

	// And the stream is live again.
	live := publish(t, n.hub, channel, "image.added", 5)
	got, more, _ := collect(t, cl, 5, 10*time.Second)
	assertSameEvents(t, got, live)
	if resyncs+more != 0 {
		t.Errorf("%d further resyncs after the first", resyncs+more)
	}
}

func mustCursor(t testing.TB, s string) hub.Cursor {
	t.Helper()
	c, err := hub.ParseCursor(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
