//go:build integration

package hub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/internal/testutil"
)

// The Redis backend against a real redis-server, standalone and Cluster.

// init adds the Redis rows to the conformance table, so the memory rows
// still run without the integration tag.
func init() {
	backendTable = append(backendTable,
		backendFactory{name: "redis", open: func(t testing.TB, o backendOpts) *testBackend {
			return openRedis(t, newRedisClient(t, testutil.StartRedis(t).Addr), o)
		}},
		backendFactory{name: "redis-cluster", cluster: true, open: func(t testing.TB, o backendOpts) *testBackend {
			return openRedis(t, clusterClient(t), o)
		}},
	)
	teardown = append(teardown, stopCluster)
}

func newRedisClient(t testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	return c
}

// prefixes numbers the key prefixes of tests sharing a server.
var prefixes atomic.Int64

// openRedis returns a Redis backend under a key prefix of its own, whose
// TTL really elapses: pass sleeps.
func openRedis(t testing.TB, c redis.UniversalClient, o backendOpts) *testBackend {
	if o.prefix == "" {
		o.prefix = "t" + strconv.FormatInt(prefixes.Add(1), 10)
	}
	r, err := NewRedis(RedisConfig{Client: c, Prefix: o.prefix, HistorySize: o.size, HistoryTTL: o.ttl, Dedupe: o.dedupe})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return &testBackend{
		Backend: r,
		pass:    func(d time.Duration) { time.Sleep(d) },
		subscribed: func(ch string) bool {
			n, err := c.PubSubNumSub(context.Background(), r.key(ch, "pub")).Result()
			return err != nil || n[r.key(ch, "pub")] > 0
		},
	}
}

// The one-node Redis Cluster the cluster cases share. A fresh master
// waits about two seconds before it declares itself ok, too long to pay
// per test; tests keep apart by key prefix instead (see openRedis).
var cluster struct {
	once sync.Once
	cmd  *exec.Cmd
	dir  string
	addr string
	err  error
}

// clusterClient returns a client of the shared cluster, starting it first.
// One node owning every slot is enough to hold the backend to Cluster's
// rules: every script's keys in one slot (else CROSSSLOT), commands routed
// by key, PubSub through the cluster client.
func clusterClient(t testing.TB) *redis.ClusterClient {
	t.Helper()
	cluster.once.Do(func() { cluster.err = startCluster() })
	if cluster.err != nil {
		t.Fatalf("redis cluster: %v", cluster.err)
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{cluster.addr}})
	t.Cleanup(func() { c.Close() })
	return c
}

func startCluster() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := l.Addr().(*net.TCPAddr).Port
	// The cluster bus gets a free port of its own: Redis's default,
	// port+10000, may be taken or past 65535.
	bl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		l.Close()
		return err
	}
	bus := bl.Addr().(*net.TCPAddr).Port
	l.Close()
	bl.Close()
	if cluster.dir, err = os.MkdirTemp("", "handoff-cluster-"); err != nil {
		return err
	}
	cluster.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cluster.cmd = exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--dir", cluster.dir, "--save", "", "--appendonly", "no", "--loglevel", "warning",
		"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(cluster.dir, "nodes.conf"),
		"--cluster-announce-ip", "127.0.0.1", "--cluster-port", strconv.Itoa(bus))
	if err := cluster.cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server in cluster mode: %w", err)
	}
	admin := redis.NewClient(&redis.Options{Addr: cluster.addr})
	defer admin.Close()
	ctx := context.Background()
	ok := func(what string, cond func() bool) error {
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				return fmt.Errorf("timed out waiting until %s", what)
			}
		}
		return nil
	}
	if err := ok("the node answers", func() bool { return admin.Ping(ctx).Err() == nil }); err != nil {
		return err
	}
	if err := admin.ClusterAddSlotsRange(ctx, 0, 16383).Err(); err != nil {
		return fmt.Errorf("CLUSTER ADDSLOTSRANGE: %w", err)
	}
	return ok("the cluster is ok", func() bool {
		info, err := admin.ClusterInfo(ctx).Result()
		return err == nil && strings.Contains(info, "cluster_state:ok")
	})
}

// stopCluster ends the shared cluster, if a test started it.
func stopCluster() {
	if cluster.cmd != nil && cluster.cmd.Process != nil {
		_ = cluster.cmd.Process.Kill()
		_ = cluster.cmd.Wait()
	}
	if cluster.dir != "" {
		os.RemoveAll(cluster.dir)
	}
}

func TestRedisKeysShareHashTagAndExpire(t *testing.T) {
	t.Parallel()
	srv := testutil.StartRedis(t)
	c := newRedisClient(t, srv.Addr)
	r, err := NewRedis(RedisConfig{Client: c, Prefix: "p1", HistorySize: 2, HistoryTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	other, err := NewRedis(RedisConfig{Client: c, Prefix: "p2"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	publishN(t, r, "session:abc", 3)
	ctx := context.Background()
	meta, err := c.HGetAll(ctx, "p1:{session:abc}:meta").Result()
	noErr(t, "HGETALL meta", err)
	testutil.Equal(t, "meta top", "3", meta["top"])
	if meta["epoch"] == "" {
		t.Fatalf("meta has no epoch: %v", meta)
	}
	entries, err := c.XRange(ctx, "p1:{session:abc}:stream", "-", "+").Result()
	noErr(t, "XRANGE stream", err)
	var entryIDs []string
	for _, e := range entries {
		entryIDs = append(entryIDs, e.ID)
	}
	testutil.Equal(t, "stream entry ids", []string{"0-2", "0-3"}, entryIDs)
	for _, k := range []string{"p1:{session:abc}:meta", "p1:{session:abc}:stream"} {
		if ttl := c.PTTL(ctx, k).Val(); ttl <= 50*time.Second {
			t.Errorf("PTTL %s = %v, want about 1m (more than 50s)", k, ttl)
		} else if ttl > time.Minute {
			t.Errorf("PTTL %s = %v, want about 1m (at most 1m)", k, ttl)
		}
	}
	// Another prefix is another deployment: its own offsets.
	ev := publishN(t, other, "session:abc", 1)[0]
	testutil.Check(t, "offset of the first event under another prefix", uint64(1), ev.Cursor.Offset)
}

// TestRedisMetaWithoutStream covers keys evicted one without the other.
func TestRedisMetaWithoutStream(t *testing.T) {
	t.Parallel()
	c := newRedisClient(t, testutil.StartRedis(t).Addr)
	b := openRedis(t, c, backendOpts{})
	ctx := context.Background()
	r := b.Backend.(*Redis)
	pub := publishN(t, b, "c", 3)
	c.Del(ctx, r.key("c", "stream"))
	testutil.Check(t, "History over a lost stream",
		historyResult{Err: ErrUnrecoverable}, readHistory(b, "c", pub[0].Cursor),
		equateErrors, cmpopts.IgnoreFields(historyResult{}, "Top"))
	testutil.Check(t, "History from the top over a lost stream",
		historyResult{Top: pub[2].Cursor}, readHistory(b, "c", pub[2].Cursor), equateErrors)
	c.Del(ctx, r.key("c", "meta"))
	c.XAdd(ctx, &redis.XAddArgs{Stream: r.key("c", "stream"), ID: "0-99", Values: []string{"e", "x"}})
	ev := publishN(t, b, "c", 1)[0]
	testutil.Check(t, "offset of a publish over a stream without meta", uint64(1), ev.Cursor.Offset)
	if ev.Cursor.Epoch == pub[0].Cursor.Epoch {
		t.Errorf("publish over a stream without meta gave %s, in the old epoch", ev.ID)
	}
}

func TestRedisTwoNodes(t *testing.T) {
	t.Parallel()
	srv := testutil.StartRedis(t)
	a := openRedis(t, newRedisClient(t, srv.Addr), backendOpts{prefix: "handoff"})
	b := openRedis(t, newRedisClient(t, srv.Addr), backendOpts{prefix: "handoff"})
	hubA, hubB := New(a), New(b)
	runHub(t, hubA)
	runHub(t, hubB)
	onA, onB := &collector{}, &collector{}
	subscribe(t, hubA, "session:s", nil, onA)
	subscribe(t, hubB, "session:s", nil, onB)
	for i := 0; i < 10; i++ {
		hub := hubA
		if i%2 == 1 {
			hub = hubB
		}
		if _, err := hub.Publish(context.Background(), "session:s", Publication{Type: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []*collector{onA, onB} {
		testutil.Eventually(t, "both nodes get every event", func() bool { return len(c.events()) == 10 })
		offsets(t, c.events(), 1, 10)
	}
}

// TestRedisSubscribeIsInEffectOnReturn: an event another node publishes
// right after Subscribe returns must arrive live.
func TestRedisSubscribeIsInEffectOnReturn(t *testing.T) {
	t.Parallel()
	srv := testutil.StartRedis(t)
	a := openRedis(t, newRedisClient(t, srv.Addr), backendOpts{prefix: "handoff"})
	b := openRedis(t, newRedisClient(t, srv.Addr), backendOpts{prefix: "handoff"})
	rec := &recorder{}
	run(t, a, rec)
	ctx := context.Background()
	const n = 100
	for i := 0; i < n; i++ {
		ch := fmt.Sprintf("c%d", i)
		if err := a.Subscribe(ctx, ch); err != nil {
			t.Fatal(err)
		}
		publishN(t, b, ch, 1)
	}
	testutil.Eventually(t, "every event arrives", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.events) == n
	})
}

// TestRedisIgnoresForeignMessages: a message on a subscribed channel that
// publish.lua did not write is not an event, and does not stop delivery.
func TestRedisIgnoresForeignMessages(t *testing.T) {
	t.Parallel()
	c := newRedisClient(t, testutil.StartRedis(t).Addr)
	b := openRedis(t, c, backendOpts{})
	rec := &recorder{}
	run(t, b, rec)
	ctx := context.Background()
	if err := b.Subscribe(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	c.Publish(ctx, b.Backend.(*Redis).key("c", "pub"), "not an event")
	publishN(t, b, "c", 1)
	testutil.Eventually(t, "the real event arrives", func() bool { return len(rec.of("c")) == 1 })
}

func TestRedisRunStopsOnCloseAndCancel(t *testing.T) {
	t.Parallel()
	c := newRedisClient(t, testutil.StartRedis(t).Addr)
	ctx := context.Background()
	for _, stop := range []string{"close", "cancel"} {
		b := openRedis(t, c, backendOpts{})
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- b.Run(runCtx, &recorder{}) }()
		if err := b.Subscribe(ctx, "c"); err != nil {
			t.Fatal(err)
		}
		want := error(nil)
		if stop == "close" {
			b.Close()
		} else {
			cancel()
			want = context.Canceled
		}
		if err := <-done; !errors.Is(err, want) {
			t.Errorf("%s: Run returned %v, want %v", stop, err, want)
		}
		cancel()
		if err := b.Subscribe(ctx, "d"); !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: Subscribe after Run ended: %v, want ErrUnavailable", stop, err)
		}
	}
	b := openRedis(t, c, backendOpts{})
	b.Close()
	if _, err := b.Publish(ctx, "c", Publication{Type: "t"}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Publish after Close: %v, want ErrUnavailable", err)
	}
}

// countingHandler counts Resync calls on their way to the hub.
type countingHandler struct {
	Handler
	resyncs atomic.Int32
}

func (c *countingHandler) Resync() {
	c.resyncs.Add(1)
	c.Handler.Resync()
}

// runCounted runs h's backend through a countingHandler.
func runCounted(t testing.TB, h *Hub) *countingHandler {
	ch := &countingHandler{Handler: (*hubHandler)(h)}
	run(t, h.backend, ch)
	return ch
}

func TestRedisKilledAndRestartedEmpty(t *testing.T) {
	t.Parallel()
	srv := testutil.StartRedis(t)
	// One dial attempt per command rather than five keeps the outage short.
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, DialerRetries: 1})
	t.Cleanup(func() { c.Close() })
	b := openRedis(t, c, backendOpts{})
	h := New(b)
	runHub(t, h)
	sub := &collector{}
	subscribe(t, h, "c", nil, sub)
	ctx := context.Background()
	before := publishN(t, b, "c", 3)
	testutil.Eventually(t, "live events arrive", func() bool { return len(sub.events()) == 3 })

	srv.Kill()
	if _, err := h.Publish(ctx, "c", Publication{Type: "t"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Publish with Redis down: %v, want ErrUnavailable", err)
	}
	if _, _, err := b.History(ctx, "c", Cursor{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("History with Redis down: %v, want ErrUnavailable", err)
	}
	if _, err := b.Top(ctx, "c"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Top with Redis down: %v, want ErrUnavailable", err)
	}
	if _, err := h.Subscribe(ctx, "d", nil, (&collector{}).sink); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Subscribe with Redis down: %v, want ErrUnavailable", err)
	}

	srv.Start() // empty: the history of "c" is lost
	testutil.Eventually(t, "Publish works again", func() bool {
		_, err := h.Publish(ctx, "c", Publication{Type: "t"})
		return err == nil
	})
	testutil.Eventually(t, "the subscriber is told to resync", func() bool {
		ds := sub.deliveries()
		return ds[len(ds)-1].Kind == KindResync || len(sub.events()) > len(before)
	})
	last := publishN(t, b, "c", 2)[1]
	testutil.Eventually(t, "the subscriber catches up", func() bool {
		evs := sub.events()
		return len(evs) > 0 && evs[len(evs)-1].ID == last.ID
	})
	// After the old events: one KindResync, then the new epoch without gap.
	ds := sub.deliveries()[1+len(before):]
	testutil.Equal(t, "kind of the first delivery after losing Redis", KindResync, ds[0].Kind)
	var evs []Event
	for i, d := range ds[1:] {
		testutil.Equal(t, fmt.Sprintf("kind of delivery %d after the resync", i), KindEvent, d.Kind)
		testutil.Equal(t, fmt.Sprintf("epoch of event %d after the resync", i), last.Cursor.Epoch, d.Event.Cursor.Epoch)
		evs = append(evs, d.Event)
	}
	offsets(t, evs, ds[0].Position.Offset+1, last.Cursor.Offset)
}

// TestRedisPubSubKilledKeepsData: Redis keeps its data while the node's
// PubSub connection is killed repeatedly under publishing. Whatever live
// delivery missed is delivered from history, exactly once, in order.
func TestRedisPubSubKilledKeepsData(t *testing.T) {
	t.Parallel()
	srv := testutil.StartRedis(t)
	admin := newRedisClient(t, srv.Addr)
	a := openRedis(t, newRedisClient(t, srv.Addr), backendOpts{prefix: "handoff"})
	b := openRedis(t, newRedisClient(t, srv.Addr), backendOpts{prefix: "handoff"})
	h := New(a)
	counter := runCounted(t, h)
	sub := &collector{}
	subscribe(t, h, "c", nil, sub)
	ctx := context.Background()
	const n = 300
	for i := 1; i <= n; i++ {
		publishN(t, b, "c", 1)
		if i%50 == 0 {
			if err := admin.ClientKillByFilter(ctx, "TYPE", "pubsub").Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	testutil.Eventually(t, "every event arrives", func() bool { return len(sub.events()) >= n })
	testutil.Eventually(t, "the node resyncs after reconnecting", func() bool { return counter.resyncs.Load() > 0 })
	publishN(t, b, "c", 1)
	testutil.Eventually(t, "live delivery resumes", func() bool { return len(sub.events()) > n })
	testutil.Check(t, "number of deliveries (KindSubscribed and every event once)", n+2, len(sub.deliveries()))
	offsets(t, sub.events(), 1, n+1)
}

// faultyNet dials real connections that a test can cut or silence.
type faultyNet struct {
	mu     sync.Mutex
	refuse bool
	conns  []*faultyConn
}

func (f *faultyNet) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse {
		return nil, errors.New("test: network down")
	}
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	fc := &faultyConn{Conn: c}
	f.conns = append(f.conns, fc)
	return fc, nil
}

// setDown closes every connection and refuses new ones, or lifts that.
func (f *faultyNet) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refuse = down
	for _, c := range f.conns {
		if down {
			c.Close()
		}
	}
	if down {
		f.conns = nil
	}
}

// stallPubSub silences the PubSub connections like a half-open TCP
// connection: writes succeed, nothing is ever read.
func (f *faultyNet) stallPubSub() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		if c.pubsub.Load() {
			c.stalled.Store(true)
		}
	}
}

type faultyConn struct {
	net.Conn
	pubsub  atomic.Bool // a SUBSCRIBE went through it
	stalled atomic.Bool
}

func (c *faultyConn) Write(b []byte) (int, error) {
	if bytes.Contains(bytes.ToLower(b), []byte("subscribe")) {
		c.pubsub.Store(true)
	}
	return c.Conn.Write(b)
}

func (c *faultyConn) Read(b []byte) (int, error) {
	for {
		n, err := c.Conn.Read(b)
		if err != nil || !c.stalled.Load() {
			return n, err
		}
		// Stalled: the bytes are lost; wait for the reader's deadline.
	}
}

// openFaulty returns a hub on a Redis backend whose network f controls,
// plus a plain backend on the same server to publish from.
func openFaulty(t *testing.T, ping time.Duration) (*Hub, *faultyNet, Backend, *countingHandler) {
	srv := testutil.StartRedis(t)
	f := &faultyNet{}
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, Dialer: f.dial})
	t.Cleanup(func() { c.Close() })
	a, err := NewRedis(RedisConfig{Client: c, PingInterval: ping})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	h := New(a)
	counter := runCounted(t, h)
	return h, f, openRedis(t, newRedisClient(t, srv.Addr), backendOpts{prefix: "handoff"}), counter
}

// TestRedisLinkDownResyncsFromHistory: events published while the node
// cannot reach Redis at all can only come from history, after reconnect.
func TestRedisLinkDownResyncsFromHistory(t *testing.T) {
	t.Parallel()
	h, f, other, counter := openFaulty(t, time.Second)
	sub := &collector{}
	subscribe(t, h, "c", nil, sub)
	publishN(t, other, "c", 3)
	testutil.Eventually(t, "live events arrive", func() bool { return len(sub.events()) == 3 })

	f.setDown(true)
	publishN(t, other, "c", 7)
	time.Sleep(100 * time.Millisecond) // let the node fail a reconnect or two
	if n := len(sub.events()); n != 3 {
		t.Fatalf("%d events arrived over a cut link", n)
	}
	f.setDown(false)
	testutil.Eventually(t, "history fills the gap", func() bool { return len(sub.events()) >= 10 })
	if counter.resyncs.Load() == 0 {
		t.Error("no Resync after the link came back")
	}
	// Only a live event can arrive now: go-redis resubscribed.
	publishN(t, other, "c", 1)
	testutil.Eventually(t, "live delivery resumes", func() bool { return len(sub.events()) >= 11 })
	offsets(t, sub.events(), 1, 11)
}

// TestRedisSilentLinkIsReplaced: a PubSub connection that stops answering
// (half-open TCP) is detected by the idle probe and replaced.
func TestRedisSilentLinkIsReplaced(t *testing.T) {
	t.Parallel()
	h, f, other, counter := openFaulty(t, 100*time.Millisecond)
	sub := &collector{}
	subscribe(t, h, "c", nil, sub)
	publishN(t, other, "c", 2)
	testutil.Eventually(t, "live events arrive", func() bool { return len(sub.events()) == 2 })

	f.stallPubSub()
	publishN(t, other, "c", 3)
	testutil.Eventually(t, "the node notices and resyncs", func() bool { return len(sub.events()) >= 5 })
	offsets(t, sub.events(), 1, 5)
	publishN(t, other, "c", 1)
	testutil.Eventually(t, "live delivery resumes", func() bool { return len(sub.events()) == 6 })
	if counter.resyncs.Load() == 0 {
		t.Error("no Resync after replacing the link")
	}
}
