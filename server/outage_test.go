//go:build integration

package server_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/client"
	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/testutil"
	"github.com/handoff-health/handoff/protocol"
)

// redisNode is a production-shaped node on addrs, and a desktop JWT for it.
func redisNode(t *testing.T, addrs string) (*node, string) {
	t.Helper()
	cfg := defaults(t)
	cfg.JWTSecret = testJWTSecret
	cfg.RedisAddrs = addrs
	cfg.RedisPrefix = "test-" + strings.ToLower(rand.Text()[:8])
	verifier, err := auth.NewVerifier([]byte(testJWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	jwt, err := verifier.Issue(auth.Claims{Facility: "F-OUT-1", Provider: "gp-7", Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return startNode(t, cfg), jwt
}

// ready returns /readyz's answer.
func (n *node) ready(t *testing.T) (int, readiness) {
	t.Helper()
	r := n.do("GET", "/readyz", "", nil)
	var rd readiness
	r.decode(t, &rd)
	return r.status, rd
}

// TestRedisOutageIsUnavailable: while Redis is down, nothing tells a
// client a lie. The capture API answers 503 "unavailable" (not 500), the
// socket refuses a subscription with "unavailable" (not "forbidden", which
// ended the desktop's session), and /readyz is 503 naming the hub. When
// Redis is back, the Go client resubscribes by itself and gets events.
func TestRedisOutageIsUnavailable(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	n, jwt := redisNode(t, r.Addr)
	s := n.createSession(jwt, "enc-outage")
	r.Snapshot() // the session survives the restart below
	r.Kill()

	for _, req := range []struct{ method, path string }{
		{"GET", "/api/medtech/session/" + s.SessionID},
		{"POST", "/api/medtech/session/tokens"},
	} {
		var body any
		if req.method == "POST" {
			body = map[string]any{"encounterId": "enc-2", "patientId": testPatientID, "patientNhi": testNHI, "patientDisplay": testDisplay}
		}
		got := n.do(req.method, req.path, jwt, body)
		testutil.Equal(t, req.method+" "+req.path+" status with Redis down", http.StatusServiceUnavailable, got.status)
		testutil.Equal(t, req.method+" "+req.path+" error code with Redis down", "unavailable", got.errCode())
	}
	status, rd := n.ready(t)
	testutil.Equal(t, "readyz status with Redis down", http.StatusServiceUnavailable, status)
	testutil.Equal(t, "readyz hub check with Redis down", "unavailable", rd.Checks["hub"])

	desktop := n.realtime(t, jwt)
	if err := desktop.Subscribe(s.Channel, ""); err != nil {
		t.Fatal(err)
	}
	ev := testutil.Next(t, desktop, client.KindDisconnected, client.KindError)
	var se *client.ServerError
	if !errors.As(ev.Err, &se) || se.Code != string(protocol.CodeUnavailable) {
		t.Fatalf("subscribing with Redis down: %v %v, want the socket refused with %q", ev.Kind, ev.Err, protocol.CodeUnavailable)
	}

	r.Start()
	testutil.Next(t, desktop, client.KindSubscribed, client.KindResync)
	testutil.Eventually(t, "readyz is ok again", func() bool { st, _ := n.ready(t); return st == http.StatusOK })
	if _, err := n.srv.Hub().Publish(context.Background(), s.Channel, hub.Publication{Type: "integrator.note"}); err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "event after Redis returned", "integrator.note", testutil.NextEvent(t, desktop, s.Channel).Type)
}

// TestReadyzClusterDown: a Cluster master answers PING while the cluster
// is down; /readyz must not be fooled.
func TestReadyzClusterDown(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedisCluster(t)
	n, _ := redisNode(t, r.Addr+","+r.Addr) // two addresses: the cluster client
	testutil.Eventually(t, "readyz is ok on a healthy cluster", func() bool { st, _ := n.ready(t); return st == http.StatusOK })

	admin := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { admin.Close() })
	ctx := context.Background()
	if err := admin.ClusterDelSlotsRange(ctx, 0, 0).Err(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the cluster is down", func() bool {
		info, err := admin.ClusterInfo(ctx).Result()
		return err == nil && strings.Contains(info, "cluster_state:fail")
	})
	if err := admin.Ping(ctx).Err(); err != nil {
		t.Fatalf("the master should still answer PING: %v", err)
	}
	status, rd := n.ready(t)
	testutil.Equal(t, "readyz status with the cluster down", http.StatusServiceUnavailable, status)
	testutil.Equal(t, "readyz hub check with the cluster down", "unavailable", rd.Checks["hub"])

	if err := admin.ClusterAddSlotsRange(ctx, 0, 0).Err(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "readyz is ok once the cluster is", func() bool { st, _ := n.ready(t); return st == http.StatusOK })
}
