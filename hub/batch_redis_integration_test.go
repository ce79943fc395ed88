//go:build integration

package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/internal/testutil"
)

// TestRedisBatchesConcurrentPublishes: publishes that arrive while a batch
// is in flight (held by a stalled proxy) go to Redis together in one
// publish.lua call, which reads INFO once for all of them; and a publish
// whose caller gives up while it is still queued is not stored.
func TestRedisBatchesConcurrentPublishes(t *testing.T) {
	t.Parallel()
	srv := testutil.StartRedis(t)
	direct := newRedisClient(t, srv.Addr)
	proxy := startStallProxy(t, srv.Addr, "{held}:meta")
	c := redis.NewClient(&redis.Options{Addr: proxy.addr, ReadTimeout: -1})
	t.Cleanup(func() { c.Close() })
	r, err := NewRedis(RedisConfig{Client: c})
	noErr(t, "NewRedis", err)
	t.Cleanup(func() { r.Close() })
	ctx := context.Background()

	// Load the script, then count only what follows.
	_, err = r.Publish(ctx, "warm", Publication{Type: "t"})
	noErr(t, "first publish", err)
	noErr(t, "CONFIG RESETSTAT", direct.ConfigResetStat(ctx).Err())

	held := make(chan error, 1)
	go func() {
		_, err := r.Publish(ctx, "held", Publication{Type: "t"})
		held <- err
	}()
	testutil.Eventually(t, "the first batch is held in flight", func() bool { return proxy.held.Load() == 1 })

	// Every other queued publish has an origin, so one batch mixes both.
	const n = 10
	origin := func(i int) Origin {
		if i%2 == 0 {
			return Origin{}
		}
		return Origin{MsgID: fmt.Sprintf("b:%d", i), ClientID: fmt.Sprintf("client %d", i), ConnectionID: "conn" + strconv.Itoa(i)}
	}
	type result struct {
		i   int
		ev  Event
		err error
	}
	results := make(chan result, n)
	for i := range n {
		go func() {
			p := Publication{Type: "t", Data: []byte(fmt.Sprintf(`{"i":%d}`, i)), Origin: origin(i)}
			ev, err := r.Publish(ctx, "b-"+strconv.Itoa(i%3), p)
			results <- result{i, ev, err}
		}()
	}
	gaveUp, cancel := context.WithCancel(ctx)
	abandoned := make(chan error, 1)
	go func() {
		_, err := r.Publish(gaveUp, "abandoned", Publication{Type: "t"})
		abandoned <- err
	}()
	queued := func() int {
		r.batch.mu.Lock()
		defer r.batch.mu.Unlock()
		return len(r.batch.queue)
	}
	testutil.Eventually(t, "every later publish is queued", func() bool { return queued() == n+1 })
	cancel()
	if err := <-abandoned; !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("a publish whose context ended while queued: %v, want ErrUnavailable and context.Canceled", err)
	}

	proxy.unblock()
	noErr(t, "the held publish", <-held)
	stored := map[string]int{}
	for range n {
		res := <-results
		noErr(t, "a queued publish", res.err)
		testutil.Equal(t, fmt.Sprintf("origin of queued publish %d", res.i), origin(res.i), res.ev.Origin)
		stored[res.ev.Channel]++
	}
	testutil.Equal(t, "events per channel", map[string]int{"b-0": 4, "b-1": 3, "b-2": 3}, stored)
	for ch, count := range stored {
		hist, _, err := r.History(ctx, ch, Cursor{})
		noErr(t, "History", err)
		offsets(t, hist, 1, uint64(count))
		for _, ev := range hist {
			var d struct{ I int }
			noErr(t, "event data", json.Unmarshal(ev.Data, &d))
			testutil.Equal(t, fmt.Sprintf("origin of %s in history", ev.Data), origin(d.I), ev.Origin)
		}
	}
	hist, _, err := r.History(ctx, "abandoned", Cursor{})
	noErr(t, "History of the abandoned publish's channel", err)
	testutil.Equal(t, "events stored for the publish given up while queued", 0, len(hist))

	// Two script calls: the held one, then the ten queued publishes
	// together; each read INFO twice (server and replication), and the
	// History calls above read none.
	stats, err := direct.Info(ctx, "commandstats").Result()
	noErr(t, "INFO commandstats", err)
	calls := func(cmd string) int {
		m := regexp.MustCompile(`cmdstat_` + cmd + `:calls=(\d+)`).FindStringSubmatch(stats)
		if m == nil {
			return 0
		}
		v, _ := strconv.Atoi(m[1])
		return v
	}
	testutil.Equal(t, "publish.lua calls (EVALSHA) for 11 publishes", 2, calls("evalsha")-len(stored)-1)
	testutil.Equal(t, "INFO calls inside publish.lua", 4, calls("info"))
}

// TestRedisBatchDedupesWithinOneCall: one publish.lua call holding the same
// message id twice on a channel (and once on another) stores it once per
// channel; the repeat answers with the first event, and an event without
// an id between them is stored as usual.
func TestRedisBatchDedupesWithinOneCall(t *testing.T) {
	t.Parallel()
	b := openRedis(t, newRedisClient(t, testutil.StartRedis(t).Addr), backendOpts{})
	r := b.Backend.(*Redis)
	var batch []*pubReq
	for _, q := range []struct{ ch, id, data string }{{"c", "x", "1"}, {"c", "", "2"}, {"c", "x", "3"}, {"d", "x", "4"}} {
		batch = append(batch, &pubReq{ctx: context.Background(), channel: q.ch, pubsub: r.key(q.ch, "pub"),
			p: withID("t", q.data, q.id)})
	}
	r.call(batch)
	var got []string
	for i, req := range batch {
		noErr(t, fmt.Sprintf("event %d", i), req.err)
		got = append(got, req.res[:min(len(req.res), 1)]+"…")
	}
	testutil.Equal(t, "which answers are duplicates (\"=\")", []string{"+…", "+…", "=…", "+…"}, got)
	first, _ := decodeEvent("c", batch[0].res)
	dup, _ := decodeEvent("c", batch[2].res[1:])
	testutil.Check(t, "the repeat's event", sameOf(first), sameOf(dup))
	testutil.Equal(t, "top of c", uint64(2), topOf(t, b, "c").Offset)
	testutil.Equal(t, "top of d", uint64(1), topOf(t, b, "d").Offset)
}
