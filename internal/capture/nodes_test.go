package capture

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/internal/blob"
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
	store, err := NewRedisStore(client, RedisStoreConfig{Prefix: "nodes:"})
	if err != nil {
		t.Fatal(err)
	}
	s3, err := blob.NewS3(context.Background(), blob.S3Config{
		Endpoint: v.Endpoint, Region: v.Region, PathStyle: true,
		Bucket:      "nodes-" + strings.ToLower(rand.Text()[:12]),
		AccessKeyID: v.AccessKey, SecretAccessKey: v.SecretKey, CreateBucket: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	shared := backend{"shared", func(*testing.T, string) (Store, blob.Store, func(*http.ServeMux)) {
		return store, s3, func(*http.ServeMux) {}
	}}
	desk, phone := newEnv(t, shared, Config{}), newEnv(t, shared, Config{})
	phone.clock = desk.clock // one wall clock for both nodes
	phone.api.now = desk.clock.Now

	c := desk.create("enc-nodes")
	mobile := phone.claim(c.Token).MobileToken
	img := phone.addImage(mobile, testJPEG(t, 4), "image/jpeg")
	snap := desk.snapshot(c.SessionID)
	if len(snap.Images) != 1 || snap.Images[0].ID != img.ID || !snap.MobileConnected {
		t.Fatalf("desktop node's snapshot %+v", snap)
	}
	// Both nodes sweep; the session is removed exactly once.
	desk.clock.Advance(DefaultSessionTTL + time.Second)
	if n := desk.api.sweep(context.Background()) + phone.api.sweep(context.Background()); n != 1 {
		t.Fatalf("%d removals, want 1", n)
	}
}

// TestRunSweeper: the background sweeper removes expired sessions on its
// own and stops with its context.
func TestRunSweeper(t *testing.T) {
	t.Parallel()
	e := newEnv(t, memoryBackend(), Config{SweepInterval: 5 * time.Millisecond})
	c := e.create("enc-sweep")
	live := e.subscribe(c.Channel, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.api.RunSweeper(ctx) }()
	e.clock.Advance(DefaultSessionTTL)
	live.wait(t, EventSessionExpired)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("RunSweeper returned %v", err)
	}
}
