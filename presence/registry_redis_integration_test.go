//go:build integration

package presence

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/internal/testutil"
)

// The Redis registry against a real redis-server, standalone and a
// one-node Cluster (which enforces one hash slot per script).

func init() {
	registryTable = append(registryTable,
		registryFactory{name: "redis", open: func(t testing.TB) *testRegistry {
			return openRedis(t, newRedisClient(t, testutil.StartRedis(t).Addr))
		}},
		registryFactory{name: "redis-cluster", open: func(t testing.TB) *testRegistry {
			c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{testutil.StartRedisCluster(t).Addr}})
			t.Cleanup(func() { c.Close() })
			return openRedis(t, c)
		}},
	)
}

func newRedisClient(t testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	return c
}

var nodes atomic.Int64

// openRedis returns a node whose sweeper only runs when the test says
// (sweep); peer opens another node of the same deployment.
func openRedis(t testing.TB, c redis.UniversalClient) *testRegistry {
	clock := testutil.NewClock()
	var open func() *testRegistry
	open = func() *testRegistry {
		r := newTestRedis(t, RedisConfig{Client: c, Prefix: "t", Grace: testGrace, Now: clock.Now,
			SweepInterval: time.Hour, NodeTimeout: 2 * time.Hour})
		return &testRegistry{Registry: r, clock: clock, peer: open, sweep: func() {
			if err := r.sweep(context.Background()); err != nil {
				t.Fatalf("sweep: %v", err)
			}
		}}
	}
	return open()
}

func newTestRedis(t testing.TB, cfg RedisConfig) *Redis {
	if cfg.NodeID == "" {
		cfg.NodeID = "n" + strconv.FormatInt(nodes.Add(1), 10)
	}
	r, err := NewRedis(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	// The lease is renewed at once; wait for it so a sweep in the test
	// never meets this node's members before its lease.
	testutil.Eventually(t, "the node's lease is written", func() bool {
		ok, err := cfg.Client.HExists(context.Background(), r.nodesKey(), cfg.NodeID).Result()
		return err == nil && ok
	})
	return r
}

func TestRedisNodesSeeEachOther(t *testing.T) {
	t.Parallel()
	c := newRedisClient(t, testutil.StartRedis(t).Addr)
	a := newTestRedis(t, RedisConfig{Client: c})
	b := newTestRedis(t, RedisConfig{Client: c})
	recA, recB := subscribe(t, a, "room"), subscribe(t, b, "room")
	apply(t, a, change(Enter, "room", "ca", "alice", "ca:0:0", `"a"`))
	apply(t, b, change(Enter, "room", "cb", "bob", "cb:0:0", `"b"`))
	apply(t, a, change(Update, "room", "ca", "alice", "ca:1:0", `"a2"`))
	want := []string{`2 alice@ca "a"`, `2 bob@cb "b"`, `4 alice@ca "a2"`}
	testutil.Equal(t, "events on a", want, who(recA.wait(t, 3)))
	testutil.Equal(t, "events on b", want, who(recB.wait(t, 3)))
	testutil.Equal(t, "members seen from b", []string{`alice@ca "a2"`, `bob@cb "b"`}, memberNames(members(t, b, "room")))
	if err := b.CloseConnection(context.Background(), "ca"); err != nil {
		t.Fatal(err) // a node may close a connection that entered on another
	}
	testutil.Equal(t, "the close, on a", `3 alice@ca "a2"`, who(recA.wait(t, 4)[3:])[0])
}

func TestRedisDeadNodesMembersLeaveOnce(t *testing.T) {
	t.Parallel()
	c := newRedisClient(t, testutil.StartRedis(t).Addr)
	// Short leases so the test waits little; every node sweeps, so the
	// survivors race to remove the dead node's members.
	cfg := RedisConfig{Client: c, NodeTimeout: 600 * time.Millisecond, SweepInterval: 100 * time.Millisecond}
	dead := newTestRedis(t, cfg)
	b, c2 := newTestRedis(t, cfg), newTestRedis(t, cfg)
	recX, recY := subscribe(t, b, "x"), subscribe(t, c2, "y")
	apply(t, dead, change(Enter, "x", "d1", "dora", "d1:0:0", `"d"`))
	apply(t, dead, change(Enter, "x", "d2", "dan", "d2:0:0", ""))
	apply(t, dead, change(Enter, "y", "d1", "dora", "d1:1:0", ""))
	apply(t, b, change(Enter, "x", "b1", "bob", "b1:0:0", ""))
	recX.wait(t, 3)
	recY.wait(t, 1)

	dead.Stop() // no Detach: the process died
	testutil.Eventually(t, "the dead node's members leave", func() bool {
		return len(members(t, b, "x")) == 1 && len(members(t, c2, "y")) == 0
	})
	// More passes, by hand and by the tickers, find nothing more to do.
	for range 3 {
		for _, r := range []*Redis{b, c2} {
			if err := r.sweep(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	leavesX := history(t, b, "x", HistoryQuery{Forwards: true})[3:]
	testutil.Equal(t, "one LEAVE each on x", []string{`3 dan@d2 `, `3 dora@d1 "d"`}, sortedWho(leavesX))
	testutil.Equal(t, "one LEAVE on y", []string{`3 dora@d1 `}, who(history(t, b, "y", HistoryQuery{Forwards: true})[1:]))
	for _, ev := range leavesX {
		testutil.Check(t, "synthesized", true, ev.Synthesized)
	}
	testutil.Equal(t, "subscribers on x got the same", who(leavesX), who(recX.wait(t, 5)[3:]))
	testutil.Equal(t, "members of x", []string{"bob@b1 "}, memberNames(members(t, c2, "x")))
	lost, err := b.Claim(context.Background(), "d1")
	if err != nil || !lost {
		t.Fatalf("a dead node's connection resuming elsewhere: lost=%v err=%v, want lost", lost, err)
	}
}

func TestRedisRestart(t *testing.T) {
	t.Parallel()
	srv := testutil.StartRedis(t)
	c := newRedisClient(t, srv.Addr)
	r := newTestRedis(t, RedisConfig{Client: c})
	rec := subscribe(t, r, "room")
	apply(t, r, change(Enter, "room", "c1", "bob", "c1:0:0", ""))
	rec.wait(t, 1)

	srv.Kill()
	ctx := context.Background()
	if _, _, err := r.Apply(ctx, change(Enter, "room", "c2", "alice", "c2:0:0", "")); err == nil {
		t.Fatal("apply with Redis down: no error")
	}
	if _, err := r.Members(ctx, "room"); err == nil {
		t.Fatal("members with Redis down: no error")
	}
	if err := r.CloseConnection(ctx, "c1"); err == nil {
		t.Fatal("close with Redis down: no error")
	}

	srv.Start() // empty: what Redis kept is nothing
	testutil.Eventually(t, "apply works again", func() bool {
		_, _, err := r.Apply(ctx, change(Enter, "room", "c2", "alice", "c2:0:0", ""))
		return err == nil
	})
	testutil.Equal(t, "members: what Redis kept, and the new one", []string{"alice@c2 "}, memberNames(members(t, r, "room")))
	// The PubSub link came back with its pattern: new events arrive.
	testutil.Eventually(t, "events arrive after the restart", func() bool {
		_, _, err := r.Apply(ctx, change(Update, "room", "c2", "alice", "c2:1:0", `"again"`))
		if err != nil {
			return false
		}
		for _, ev := range rec.got() {
			if string(ev.Data) == `"again"` {
				return true
			}
		}
		return false
	})
}

func TestRedisConfigRefusesBadSettings(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	for _, p := range []string{"a{b", "a}b", "a*"} {
		if _, err := NewRedis(RedisConfig{Client: c, Prefix: p}); err == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
	if _, err := NewRedis(RedisConfig{}); err == nil || errors.Is(err, ErrBadChange) {
		t.Errorf("no client: %v", err)
	}
	if _, err := NewRedis(RedisConfig{Client: c, NodeTimeout: time.Second, SweepInterval: time.Second}); err == nil {
		t.Error("a sweep interval as long as the node timeout was accepted")
	}
}

// TestRedisEventsMissedWhileReconnectingAreDelivered: PubSub drops what is
// published while a node's connection is down; the node reads it from
// history when it is back, in order, once.
func TestRedisEventsMissedWhileReconnectingAreDelivered(t *testing.T) {
	t.Parallel()
	srv := testutil.StartRedis(t)
	proxy := testutil.StartProxy(t, srv.Addr)
	viaProxy := newRedisClient(t, "127.0.0.1:"+strconv.Itoa(proxy.Port()))
	a := newTestRedis(t, RedisConfig{Client: viaProxy})
	b := newTestRedis(t, RedisConfig{Client: newRedisClient(t, srv.Addr)})
	rec := subscribe(t, a, "room")
	apply(t, b, change(Enter, "room", "c1", "bob", "c1:0:0", `0`))
	rec.wait(t, 1)

	proxy.Retarget("127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))) // nothing listens there
	proxy.Cut()
	for i := 1; i <= 5; i++ {
		apply(t, b, change(Update, "room", "c1", "bob", "c1:"+strconv.Itoa(i)+":0", strconv.Itoa(i)))
	}
	proxy.Retarget(srv.Addr)
	apply(t, b, change(Leave, "room", "c1", "bob", "c1:6:0", ""))

	want := who(history(t, b, "room", HistoryQuery{Forwards: true}))
	testutil.Equal(t, "events on the node that reconnected", want, who(rec.wait(t, len(want))))
	// Nothing more comes: a later event is the next one delivered.
	apply(t, b, change(Enter, "room", "c2", "alice", "c2:0:0", ""))
	testutil.Equal(t, "the next event", "2 alice@c2 ", who(rec.wait(t, len(want)+1)[len(want):])[0])
}

// TestRedisLateDetachLeavesResumedConnection: the connection resumed on
// node b while node a had not yet noticed its old transport was dead; a's
// late Detach must not start a Grace that would remove live members.
func TestRedisLateDetachLeavesResumedConnection(t *testing.T) {
	t.Parallel()
	a := openRedis(t, newRedisClient(t, testutil.StartRedis(t).Addr))
	b := a.peer()
	ctx := context.Background()
	apply(t, a, change(Enter, "r", "c1", "bob", "c1:0:0", ""))
	if lost, err := b.Claim(ctx, "c1"); err != nil || lost {
		t.Fatalf("claim: lost=%v err=%v", lost, err)
	}
	if err := a.DetachConnection(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	a.clock.Advance(2 * testGrace)
	a.sweep()
	testutil.Equal(t, "members", []string{"bob@c1 "}, memberNames(members(t, b, "r")))
	// b's own Detach does start the Grace.
	if err := b.DetachConnection(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	a.clock.Advance(2 * testGrace)
	a.sweep()
	testutil.Equal(t, "members after b's detach and Grace", []string{}, memberNames(members(t, b, "r")))
}

// TestRedisForgottenDeadNodeIsSwept: Redis came back from a snapshot that
// lacks a node's lease but has its members; the sweeper grants the node a
// lease, which a dead node never renews, so its members still go.
func TestRedisForgottenDeadNodeIsSwept(t *testing.T) {
	t.Parallel()
	c := newRedisClient(t, testutil.StartRedis(t).Addr)
	cfg := RedisConfig{Client: c, NodeTimeout: 600 * time.Millisecond, SweepInterval: 100 * time.Millisecond}
	ghost, b := newTestRedis(t, cfg), newTestRedis(t, cfg)
	apply(t, ghost, change(Enter, "g", "c1", "gus", "c1:0:0", ""))
	apply(t, b, change(Enter, "g", "c2", "bob", "c2:0:0", ""))
	ghost.Stop()
	if err := c.HDel(context.Background(), ghost.nodesKey(), ghost.NodeID()).Err(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the forgotten node's member leaves", func() bool { return len(members(t, b, "g")) == 1 })
	testutil.Equal(t, "members", []string{"bob@c2 "}, memberNames(members(t, b, "g")))
	testutil.Equal(t, "one synthesized LEAVE", []string{"3 gus@c1 "}, who(history(t, b, "g", HistoryQuery{Forwards: true})[2:]))
}

// TestRedisNodesSeeOneOrder: writers on two nodes at once; subscribers on
// both see the channel's events in the one order history has.
func TestRedisNodesSeeOneOrder(t *testing.T) {
	t.Parallel()
	c := newRedisClient(t, testutil.StartRedis(t).Addr)
	a, b := newTestRedis(t, RedisConfig{Client: c}), newTestRedis(t, RedisConfig{Client: c})
	recA, recB := subscribe(t, a, "busy"), subscribe(t, b, "busy")
	const each = 24 // 96 events: all within the kept history
	var wg sync.WaitGroup
	for i, r := range []*Redis{a, b, a, b} {
		wg.Go(func() {
			conn := "c" + strconv.Itoa(i)
			for n := range each {
				act := Enter
				if n%2 == 1 {
					act = Leave
				}
				apply(t, r, change(act, "busy", conn, "bob", conn+":"+strconv.Itoa(n)+":0", strconv.Itoa(n)))
			}
		})
	}
	wg.Wait()
	want := who(history(t, a, "busy", HistoryQuery{Forwards: true, Limit: 4 * each}))
	testutil.Equal(t, "events kept", 4*each, len(want))
	testutil.Equal(t, "order on a", want, who(recA.wait(t, 4*each)))
	testutil.Equal(t, "order on b", want, who(recB.wait(t, 4*each)))
	testutil.Equal(t, "members", []string{}, memberNames(members(t, b, "busy")))
}
