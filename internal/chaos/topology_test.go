//go:build integration

package chaos

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/internal/testutil"
)

// sentinelMaster is the name the Sentinel monitors its master under.
const sentinelMaster = "chaos"

// startSentinel starts one redis-server in Sentinel mode watching master,
// with quorum 1 and a 1 s down-after, so a failover starts within seconds.
// The replicas must already be connected: Sentinel learns them from the
// master's INFO.
func startSentinel(t *testing.T, master *testutil.Redis) string {
	t.Helper()
	dir := t.TempDir()
	port := testutil.FreePort(t)
	conf := fmt.Sprintf("port %d\nbind 127.0.0.1\nprotected-mode no\ndir %s\n"+
		"sentinel monitor %s 127.0.0.1 %d 1\n"+
		"sentinel down-after-milliseconds %[3]s 1000\n"+
		"sentinel failover-timeout %[3]s 5000\n", port, dir, sentinelMaster, master.Port)
	path := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "sentinel.log"))
	if err != nil {
		t.Fatal(err)
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server not found: `make test` installs it (apt-get install -y redis-server); tests never skip for a missing dependency")
	}
	cmd := exec.Command(bin, path, "--sentinel")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server --sentinel: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	sc := redis.NewSentinelClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { sc.Close() })
	waitFor(t, "the sentinel knows the master and its replica", readyBound, func() bool {
		replicas, err := sc.Replicas(context.Background(), sentinelMaster).Result()
		return err == nil && len(replicas) > 0
	})
	return addr
}

// sentinelMasterAddr asks the sentinel which address is master now.
func sentinelMasterAddr(addr string) string {
	sc := redis.NewSentinelClient(&redis.Options{Addr: addr})
	defer sc.Close()
	hp, err := sc.GetMasterAddrByName(context.Background(), sentinelMaster).Result()
	if err != nil || len(hp) != 2 {
		return ""
	}
	return net.JoinHostPort(hp[0], hp[1])
}

// replicaInSync reports whether a replica's link to its master is up.
func replicaInSync(r *testutil.Redis) bool {
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer c.Close()
	info, err := c.Info(context.Background(), "replication").Result()
	return err == nil && strings.Contains(info, "master_link_status:up")
}

// redisCluster is a Redis Cluster of three masters, each with one replica,
// and a 1 s node timeout so a dead master's replica takes over in seconds.
type redisCluster struct {
	masters, replicas []*testutil.Redis
}

func startCluster(t *testing.T) *redisCluster {
	t.Helper()
	ctx := context.Background()
	args := []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", "1000", "--cluster-announce-ip", "127.0.0.1"}
	var all []*testutil.Redis
	for range 6 {
		all = append(all, testutil.StartRedisWith(t, args...))
	}
	rc := &redisCluster{masters: all[:3], replicas: all[3:]}
	first := admin(t, all[0])
	for _, r := range all[1:] {
		if err := first.ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(r.Port)).Err(); err != nil {
			t.Fatalf("CLUSTER MEET: %v", err)
		}
	}
	ranges := [][2]int{{0, 5460}, {5461, 10922}, {10923, 16383}}
	for i, m := range rc.masters {
		if err := admin(t, m).ClusterAddSlotsRange(ctx, ranges[i][0], ranges[i][1]).Err(); err != nil {
			t.Fatalf("CLUSTER ADDSLOTSRANGE: %v", err)
		}
	}
	for i, r := range rc.replicas {
		id, err := admin(t, rc.masters[i]).Do(ctx, "CLUSTER", "MYID").Text()
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a replica follows its master", readyBound, func() bool {
			return admin(t, r).ClusterReplicate(ctx, id).Err() == nil
		})
	}
	waitFor(t, "the cluster is ok with every replica in sync", readyBound, func() bool {
		for _, r := range all {
			info, err := admin(t, r).ClusterInfo(ctx).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:6") {
				return false
			}
		}
		for _, r := range rc.replicas {
			if !replicaInSync(r) {
				return false
			}
		}
		return true
	})
	return rc
}

// addrs is the masters' addresses, as --redis-addrs (several: the Cluster client).
func (rc *redisCluster) addrs() string {
	var a []string
	for _, m := range rc.masters {
		a = append(a, m.Addr)
	}
	return strings.Join(a, ",")
}

// masterOf returns the index of the master serving channel's keys (their
// hash tag is the channel name).
func (rc *redisCluster) masterOf(t *testing.T, channel string) int {
	t.Helper()
	slot, err := admin(t, rc.masters[0]).ClusterKeySlot(context.Background(), "{"+channel+"}").Result()
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case slot <= 5460:
		return 0
	case slot <= 10922:
		return 1
	}
	return 2
}

// isMaster reports whether r has become a master.
func isMaster(t *testing.T, r *testutil.Redis) bool {
	info, err := admin(t, r).Info(context.Background(), "replication").Result()
	return err == nil && strings.Contains(info, "role:master")
}

// clusterOK reports whether r sees the cluster as ok.
func clusterOK(t *testing.T, r *testutil.Redis) bool {
	info, err := admin(t, r).ClusterInfo(context.Background()).Result()
	return err == nil && strings.Contains(info, "cluster_state:ok")
}

// admins caches one plain client per server address, for the polls above.
var admins sync.Map // addr → *redis.Client

// admin is a plain client of one server; every one is closed when the
// test that first asked for it ends.
func admin(t *testing.T, r *testutil.Redis) *redis.Client {
	if c, ok := admins.Load(r.Addr); ok {
		return c.(*redis.Client)
	}
	c := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1})
	if prev, loaded := admins.LoadOrStore(r.Addr, c); loaded {
		c.Close()
		return prev.(*redis.Client)
	}
	t.Cleanup(func() { admins.Delete(r.Addr); c.Close() })
	return c
}
