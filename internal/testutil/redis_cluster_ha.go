package testutil

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// RedisClusterHA is a Redis Cluster owned by one test: three masters, each
// with one replica, and a 1 s node timeout, so when a master dies its
// replica takes over within a few seconds. Unlike StartRedisCluster's one
// node, it can lose a master the way production does.
type RedisClusterHA struct {
	Masters, Replicas []*Redis // Replicas[i] follows Masters[i]
}

// StartRedisClusterHA starts the six servers, joins them, gives the masters
// a third of the slots each and waits until the cluster is ok with every
// replica in sync. Everything stops when the test ends.
func StartRedisClusterHA(t testing.TB) *RedisClusterHA {
	t.Helper()
	ctx := context.Background()
	args := []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", "1000", "--cluster-announce-ip", "127.0.0.1"}
	var all []*Redis
	var busPorts []int
	for range 6 {
		// The bus port defaults to port+10000, which may be taken (or past
		// 65535); a free one of its own avoids both.
		bus := FreePort(t)
		busPorts = append(busPorts, bus)
		all = append(all, StartRedisWith(t, append([]string{"--cluster-port", strconv.Itoa(bus)}, args...)...))
	}
	c := &RedisClusterHA{Masters: all[:3], Replicas: all[3:]}
	for i, r := range all[1:] {
		if err := all[0].do(func(rc *redis.Client) error {
			return rc.Do(ctx, "CLUSTER", "MEET", "127.0.0.1", r.Port, busPorts[i+1]).Err()
		}); err != nil {
			t.Fatalf("CLUSTER MEET: %v", err)
		}
	}
	ranges := [][2]int{{0, 5460}, {5461, 10922}, {10923, 16383}}
	for i, m := range c.Masters {
		if err := m.do(func(rc *redis.Client) error {
			return rc.ClusterAddSlotsRange(ctx, ranges[i][0], ranges[i][1]).Err()
		}); err != nil {
			t.Fatalf("CLUSTER ADDSLOTSRANGE: %v", err)
		}
	}
	for i, r := range c.Replicas {
		var id string
		if err := c.Masters[i].do(func(rc *redis.Client) (err error) {
			id, err = rc.Do(ctx, "CLUSTER", "MYID").Text()
			return err
		}); err != nil {
			t.Fatalf("CLUSTER MYID: %v", err)
		}
		// The replica must have heard of its master through the cluster bus first.
		Eventually(t, "a replica follows its master", func() bool {
			return r.do(func(rc *redis.Client) error { return rc.ClusterReplicate(ctx, id).Err() }) == nil
		})
	}
	Eventually(t, "the cluster is ok with every replica in sync", func() bool {
		for _, r := range all {
			if info := r.clusterInfo(); !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:6") {
				return false
			}
		}
		for _, r := range c.Replicas {
			if !r.InSync() {
				return false
			}
		}
		return true
	})
	return c
}

// Addrs is the masters' addresses, comma-separated as --redis-addrs takes
// them (several addresses: the Cluster client).
func (c *RedisClusterHA) Addrs() string {
	var a []string
	for _, m := range c.Masters {
		a = append(a, m.Addr)
	}
	return strings.Join(a, ",")
}

// MasterOf returns the index in Masters of the master that served key's
// slot when the cluster started.
func (c *RedisClusterHA) MasterOf(t testing.TB, key string) int {
	t.Helper()
	var slot int64
	if err := c.Masters[0].do(func(rc *redis.Client) (err error) {
		slot, err = rc.ClusterKeySlot(context.Background(), key).Result()
		return err
	}); err != nil {
		t.Fatalf("CLUSTER KEYSLOT: %v", err)
	}
	switch {
	case slot <= 5460:
		return 0
	case slot <= 10922:
		return 1
	}
	return 2
}

// IsMaster reports whether the server answers and is a master (a promoted
// replica becomes one).
func (r *Redis) IsMaster() bool { return strings.Contains(r.info("replication"), "role:master") }

// InSync reports whether a replica's link to its master is up.
func (r *Redis) InSync() bool {
	return strings.Contains(r.info("replication"), "master_link_status:up")
}

// ClusterOK reports whether the server sees its cluster as ok.
func (r *Redis) ClusterOK() bool { return strings.Contains(r.clusterInfo(), "cluster_state:ok") }

// clusterInfo returns CLUSTER INFO, or "" when the server does not answer.
func (r *Redis) clusterInfo() string {
	var info string
	_ = r.do(func(rc *redis.Client) (err error) {
		info, err = rc.ClusterInfo(context.Background()).Result()
		return err
	})
	return info
}

// info returns one INFO section, or "" when the server does not answer.
func (r *Redis) info(section string) string {
	var info string
	_ = r.do(func(rc *redis.Client) (err error) {
		info, err = rc.Info(context.Background(), section).Result()
		return err
	})
	return info
}

// do runs fn on a short-lived plain client of this one server.
func (r *Redis) do(fn func(*redis.Client) error) error {
	rc := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1})
	defer rc.Close()
	return fn(rc)
}
