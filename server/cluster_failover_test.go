//go:build integration

package server_test

import (
	"context"
	"testing"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestClusterFailoverIsUsedAtOnce: when a Cluster master dies and its
// replica takes over, the node publishes to the promoted replica as soon as
// it is master. go-redis re-reads the slot map only on MOVED/ASK/READONLY
// and every 60 s, so without server/redis_cluster.go every publish of the
// dead master's slots kept dialling it and failed for up to a minute (the
// chaos suite's Cluster scenario found it).
func TestClusterFailoverIsUsedAtOnce(t *testing.T) {
	t.Parallel()
	rc := testutil.StartRedisClusterHA(t)
	n, jwt := redisNode(t, rc.Addrs())
	s := n.createSession(jwt, "enc-failover")
	publish := func() error {
		_, err := n.srv.Hub().Publish(context.Background(), s.Channel, hub.Publication{Type: "integrator.note"})
		return err
	}
	if err := publish(); err != nil {
		t.Fatalf("publish before the failover: %v", err)
	}

	victim := rc.MasterOf(t, "{"+s.Channel+"}") // the channel is its keys' hash tag
	rc.Masters[victim].Kill()
	testutil.Eventually(t, "the dead master's replica is master", rc.Replicas[victim].IsMaster)
	testutil.Eventually(t, "a publish to the dead master's slots succeeds", func() bool { return publish() == nil })
}
