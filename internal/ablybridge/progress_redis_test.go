//go:build integration

package ablybridge

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/internal/testutil"
)

// The Redis rows of the Progress contract need redis-server, so they join
// only with the integration tag.
func init() {
	progressImpls = append(progressImpls,
		progressImpl{"redis", func(t *testing.T) Progress {
			r := testutil.StartRedis(t)
			c := redis.NewClient(&redis.Options{Addr: r.Addr})
			t.Cleanup(func() { c.Close() })
			return mustRedisProgress(t, c)
		}},
		progressImpl{"redis-cluster", func(t *testing.T) Progress { return mustRedisProgress(t, startRedisCluster(t)) }},
	)
}

func mustRedisProgress(t *testing.T, c redis.UniversalClient) *RedisProgress {
	t.Helper()
	p, err := NewRedisProgress(RedisProgressConfig{Client: c, Prefix: "test" + strconv.Itoa(testutil.FreePort(t))})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startRedisCluster starts a one-node Redis Cluster owning every slot.
func startRedisCluster(t *testing.T) *redis.ClusterClient {
	t.Helper()
	dir, port := t.TempDir(), testutil.FreePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--dir", dir, "--save", "", "--appendonly", "no", "--loglevel", "warning",
		"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
		"--cluster-announce-ip", "127.0.0.1",
		// The bus port defaults to port+10000, which may be taken or past 65535.
		"--cluster-port", strconv.Itoa(testutil.FreePort(t)))
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
	testutil.Eventually(t, "the cluster node to answer", func() bool { return admin.Ping(ctx).Err() == nil })
	must(t, admin.ClusterAddSlotsRange(ctx, 0, 16383).Err())
	testutil.Eventually(t, "the cluster to be ok", func() bool {
		info, err := admin.ClusterInfo(ctx).Result()
		return err == nil && strings.Contains(info, "cluster_state:ok")
	})
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{addr}})
	t.Cleanup(func() { c.Close() })
	return c
}
