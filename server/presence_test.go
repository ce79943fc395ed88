//go:build integration

package server_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/handoff-health/handoff/internal/testutil"
	"github.com/handoff-health/handoff/presence"
)

// TestPresenceRegistryPerBackend: a node keeps presence where it keeps its
// hub, so on Redis every node of a deployment sees the same members.
func TestPresenceRegistryPerBackend(t *testing.T) {
	ctx := context.Background()
	enter := presence.Change{Action: presence.Enter, Channel: "session:p", ClientID: "phone", ConnectionID: "c1", ID: "c1:0:0"}

	mem := startNode(t, devConfig(t))
	if _, ok, err := mem.srv.Presence().Apply(ctx, enter); err != nil || !ok {
		t.Fatalf("memory node: enter ok=%v err=%v", ok, err)
	}

	cfg := defaults(t)
	cfg.JWTSecret = testJWTSecret
	cfg.RedisAddrs = testutil.StartRedis(t).Addr
	cfg.RedisPrefix = "test-" + strings.ToLower(rand.Text()[:8])
	cfgB := cfg
	cfgB.DataDir = t.TempDir()
	a, b := startNode(t, cfg), startNode(t, cfgB)
	if _, ok, err := a.srv.Presence().Apply(ctx, enter); err != nil || !ok {
		t.Fatalf("node A: enter ok=%v err=%v", ok, err)
	}
	ms, err := b.srv.Presence().Members(ctx, "session:p")
	if err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "members seen by node B", 1, len(ms))
	testutil.Equal(t, "member", "phone", ms[0].ClientID)
}
