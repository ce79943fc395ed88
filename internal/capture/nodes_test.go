//go:build integration

package capture

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/internal/blob"
	"github.com/handoff-health/handoff/internal/session"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestTwoNodesShareRedis runs two API nodes on one Redis store and one S3
// bucket, as behind a load balancer: the desktop talks to one, the phone to
// the other, and each sees the other's writes. (Each node has its own
// memory hub here; carrying events between nodes is the hub's Redis
// backend's job, tested in package hub.)
func TestTwoNodesShareRedis(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	v := testutil.StartVersity(t)
	client := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { client.Close() })
	store, err := session.NewRedisStore(client, session.RedisStoreConfig{Prefix: "nodes:"})
	if err != nil {
		t.Fatal(err)
	}
	s3 := newS3(t, v, "nodes-")
	shared := backend{"shared", func(*testing.T, string) (session.Store, blob.Store, func(*http.ServeMux)) {
		return store, s3, func(*http.ServeMux) {}
	}}
	clock := testutil.NewClock() // one wall clock for both nodes
	desk, phone := newEnvClock(t, shared, Config{}, clock), newEnvClock(t, shared, Config{}, clock)

	c := desk.create("enc-nodes")
	mobile := phone.claim(c.Token).MobileToken
	img := phone.addImage(mobile, testutil.JPEG(t, 4), "image/jpeg")
	snap := desk.snapshot(c.SessionID)
	testutil.Check(t, "desktop node's snapshot: mobile connected", true, snap.MobileConnected)
	testutil.Equal(t, "desktop node's snapshot: image ids", []string{img.ID}, imageIDs(snap.Images))
	// Both nodes sweep; the session is removed exactly once.
	clock.Advance(DefaultSessionTTL + time.Second)
	removed := desk.api.sweep(context.Background()) + phone.api.sweep(context.Background())
	testutil.Equal(t, "removals by both nodes' sweeps", 1, removed)
}
