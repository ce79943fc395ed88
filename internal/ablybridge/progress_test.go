package ablybridge

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/testutil"
)

// progressImpls are the Progress implementations every contract test runs
// against: memory, Redis standalone and Redis Cluster (whose CROSSSLOT
// rule catches a script touching keys of two slots).
var progressImpls = []struct {
	name string
	new  func(t *testing.T) Progress
}{
	{"memory", func(t *testing.T) Progress { return NewMemoryProgress() }},
	{"redis", func(t *testing.T) Progress {
		r := testutil.StartRedis(t)
		c := redis.NewClient(&redis.Options{Addr: r.Addr})
		t.Cleanup(func() { c.Close() })
		return mustRedisProgress(t, c)
	}},
	{"redis-cluster", func(t *testing.T) Progress { return mustRedisProgress(t, startRedisCluster(t)) }},
}

func mustRedisProgress(t *testing.T, c redis.UniversalClient) *RedisProgress {
	t.Helper()
	p, err := NewRedisProgress(RedisProgressConfig{Client: c, Prefix: "test" + strconv.Itoa(testutil.FreePort(t))})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProgressPendingMarks(t *testing.T) {
	t.Parallel()
	for _, impl := range progressImpls {
		t.Run(impl.name, func(t *testing.T) {
			t.Parallel()
			p, ctx := impl.new(t), context.Background()
			if _, ok, err := p.Mark(ctx, "session:a"); ok || err != nil {
				t.Fatalf("Mark of an unmarked channel: ok=%v err=%v", ok, err)
			}
			must(t, p.MarkPending(ctx, "session:a"))
			must(t, p.MarkPending(ctx, "session:b"))
			pending, err := p.Pending(ctx)
			must(t, err)
			slices.Sort(pending)
			if strings.Join(pending, ",") != "session:a,session:b" {
				t.Fatalf("Pending = %v", pending)
			}
			m1, ok, err := p.Mark(ctx, "session:a")
			if !ok || err != nil || m1.Age < 0 || m1.Age > time.Minute {
				t.Fatalf("Mark = %+v ok=%v err=%v", m1, ok, err)
			}
			// A newer mark (a publish began since m1 was read) keeps it pending.
			time.Sleep(5 * time.Millisecond)
			must(t, p.MarkPending(ctx, "session:a"))
			if done, err := p.Settle(ctx, "session:a", m1); done || err != nil {
				t.Fatalf("Settle with a stale mark removed the channel (err %v)", err)
			}
			m2, _, err := p.Mark(ctx, "session:a")
			must(t, err)
			if done, err := p.Settle(ctx, "session:a", m2); !done || err != nil {
				t.Fatalf("Settle with the current mark: %v %v", done, err)
			}
			pending, err = p.Pending(ctx)
			must(t, err)
			if strings.Join(pending, ",") != "session:b" {
				t.Fatalf("Pending after settle = %v", pending)
			}
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
			if c, err := p.Cursor(ctx, "session:c"); err != nil || !c.IsZero() {
				t.Fatalf("fresh Cursor = %v, %v", c, err)
			}
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
			if !lock("a", time.Minute) || lock("b", time.Minute) || !lock("a", time.Minute) {
				t.Fatal("lock: a should hold it, b be refused, a extend it")
			}
			must(t, p.Unlock(ctx, "session:l", "b")) // not b's to release
			if lock("b", time.Minute) {
				t.Fatal("b released a's lock")
			}
			must(t, p.Unlock(ctx, "session:l", "a"))
			if !lock("b", 50*time.Millisecond) {
				t.Fatal("b refused after a released")
			}
			waitFor(t, "b's lock to expire", func() bool { return lock("a", time.Minute) })
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
	if err := p.MarkPending(context.Background(), "session:x"); err == nil || !strings.Contains(err.Error(), "unavailable") {
		t.Errorf("MarkPending with Redis down: %v, want an unavailable error", err)
	}
}

// startRedisCluster starts a one-node Redis Cluster owning every slot.
func startRedisCluster(t *testing.T) *redis.ClusterClient {
	t.Helper()
	dir, port := t.TempDir(), testutil.FreePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--dir", dir, "--save", "", "--appendonly", "no", "--loglevel", "warning",
		"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
		"--cluster-announce-ip", "127.0.0.1")
	logf, err := os.Create(filepath.Join(dir, "redis.log"))
	must(t, err)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server in cluster mode: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logf.Close() })

	admin := redis.NewClient(&redis.Options{Addr: addr})
	defer admin.Close()
	ctx := context.Background()
	waitFor(t, "the cluster node to answer", func() bool { return admin.Ping(ctx).Err() == nil })
	must(t, admin.ClusterAddSlotsRange(ctx, 0, 16383).Err())
	waitFor(t, "the cluster to be ok", func() bool {
		info, err := admin.ClusterInfo(ctx).Result()
		return err == nil && strings.Contains(info, "cluster_state:ok")
	})
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{addr}})
	t.Cleanup(func() { c.Close() })
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
