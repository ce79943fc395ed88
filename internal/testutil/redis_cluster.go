package testutil

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// StartRedisCluster starts a one-node Redis Cluster owned by the test: a
// redis-server in cluster mode that holds every slot, with
// cluster_state:ok. One master is enough to hold code to Cluster's rules
// (keys of one script in one slot, MOVED handling, cluster state); a test
// fails the cluster by taking a slot away (CLUSTER DELSLOTS), which turns
// cluster_state to fail as losing a master would. Clients need the cluster
// client: redis.NewClusterClient, or two copies of Addr in --redis-addrs.
func StartRedisCluster(t testing.TB) *Redis {
	t.Helper()
	r := &Redis{t: t, Dir: t.TempDir(), Port: FreePort(t)}
	r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port))
	// The bus port defaults to port+10000, which may be taken or past
	// 65535; a free one of its own avoids both.
	r.args = []string{"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(r.Dir, "nodes.conf"),
		"--cluster-announce-ip", "127.0.0.1", "--cluster-port", strconv.Itoa(FreePort(t))}
	r.Start()
	t.Cleanup(r.Kill)
	admin := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer admin.Close()
	ctx := context.Background()
	if err := admin.ClusterAddSlotsRange(ctx, 0, 16383).Err(); err != nil {
		t.Fatalf("CLUSTER ADDSLOTSRANGE on %s: %v", r.Addr, err)
	}
	Eventually(t, "the one-node cluster is ok", func() bool {
		info, err := admin.ClusterInfo(ctx).Result()
		return err == nil && strings.Contains(info, "cluster_state:ok")
	})
	return r
}
