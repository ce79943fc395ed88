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
	cmd := exec.Command(testutil.RedisBinary(t), path, "--sentinel")
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
	testutil.EventuallyWithin(t, "the sentinel knows the master and its replica", readyBound, func() bool {
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

// replicaCaughtUp reports whether replica has processed every byte of
// master's replication stream.
func replicaCaughtUp(master, replica *testutil.Redis) bool {
	m, ok1 := replOffset(master.Addr, "master_repl_offset:")
	r, ok2 := replOffset(replica.Addr, "slave_repl_offset:")
	return ok1 && ok2 && m == r
}

// replOffset reads one offset field of INFO replication.
func replOffset(addr, field string) (int64, bool) {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	info, err := c.Info(context.Background(), "replication").Result()
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
