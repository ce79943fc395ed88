//go:build integration

package capture

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/blob"
	"github.com/handoff-health/handoff/internal/session"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestRedisHubFailsAfterStoreWrite is the fault with real Redis:
// the session store and the hub's channel live on different redis-servers
// (as two Cluster masters hold the session's and the channel's slots), and
// the hub's one fails between the stored image and its publish. The phone
// is told 503, never 201; the desktop then gets image.added, or, where
// that Redis lost its data, a resync (after which its snapshot shows the
// image): never silence.
func TestRedisHubFailsAfterStoreWrite(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		fail, heal func(t *testing.T, r *testutil.Redis)
		wantEvent  bool
	}{
		// Writes refused, data kept (a master that lost its replicas):
		// the same epoch goes on, so the desktop gets the event itself.
		{"writes refused", func(t *testing.T, r *testutil.Redis) { redisConfig(t, r, "1") }, func(t *testing.T, r *testutil.Redis) { redisConfig(t, r, "0") }, true},
		// Killed and back empty: a new epoch, so a resync may come first.
		{"killed", func(_ *testing.T, r *testutil.Redis) { r.Kill() }, func(_ *testing.T, r *testutil.Redis) { r.Start() }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hubRedis := testutil.StartRedis(t)
			e := newSplitRedisEnv(t, hubRedis)
			c := e.create("enc-redis-announce")
			desktop := &kindRecorder{}
			sub, err := e.hub.Subscribe(context.Background(), c.Channel, nil, desktop.sink)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(sub.Unsubscribe)
			cl := e.claim(c.Token)

			data := testutil.JPEG(t, 3)
			id := uuid.NewString()
			p := e.presign(cl.MobileToken, id, "image/jpeg", len(data))
			upload(t, p, data)
			tc.fail(t, hubRedis)
			st, body := e.register(cl.MobileToken, id, p.Key, nil)
			testutil.Equal(t, "register status with the hub's Redis failing", http.StatusServiceUnavailable, st)
			testutil.Equal(t, "register error code", "unavailable", errCode(body))
			testutil.Equal(t, "image stored", 1, len(e.session(c.SessionID).Images))

			tc.heal(t, hubRedis)
			testutil.Eventually(t, "nothing left to republish", func() bool { return e.hub.Pending() == 0 })
			testutil.Eventually(t, "desktop told", func() bool {
				added, resyncs := desktop.seen(EventImageAdded)
				return added == 1 || !tc.wantEvent && resyncs > 0
			})
		})
	}
}

// newSplitRedisEnv is an API whose session store is on a redis-server of
// its own and whose hub is on hubRedis.
func newSplitRedisEnv(t *testing.T, hubRedis *testutil.Redis) *env {
	storeRedis := testutil.StartRedis(t)
	sc := redis.NewClient(&redis.Options{Addr: storeRedis.Addr})
	hc := redis.NewClient(&redis.Options{Addr: hubRedis.Addr})
	t.Cleanup(func() { sc.Close(); hc.Close() })
	hb, err := hub.NewRedis(hub.RedisConfig{Client: hc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hb.Close() })
	b := backend{"redis store, redis hub", func(t *testing.T, publicURL string) (session.Store, blob.Store, func(*http.ServeMux)) {
		st, err := session.NewRedisStore(sc, session.RedisStoreConfig{})
		if err != nil {
			t.Fatal(err)
		}
		l, err := blob.NewLocal(blob.LocalConfig{Dir: t.TempDir(), BaseURL: publicURL})
		if err != nil {
			t.Fatal(err)
		}
		return st, l, func(mux *http.ServeMux) { mux.Handle("/blob/", l.Handler()) }
	}}
	return newEnvHub(t, b, Config{}, testutil.NewClock(), hb)
}

// redisConfig sets min-replicas-to-write: with no replica attached, "1"
// makes the server refuse every write (NOREPLICAS) while it keeps its data.
func redisConfig(t *testing.T, r *testutil.Redis, n string) {
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer c.Close()
	if err := c.ConfigSet(context.Background(), "min-replicas-to-write", n).Err(); err != nil {
		t.Fatal(err)
	}
}

// kindRecorder counts a subscription's events by type and its resyncs.
type kindRecorder struct {
	mu      sync.Mutex
	types   map[string]int
	resyncs int
}

func (k *kindRecorder) sink(d hub.Delivery) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch d.Kind {
	case hub.KindEvent:
		if k.types == nil {
			k.types = map[string]int{}
		}
		k.types[d.Event.Type]++
	case hub.KindResync:
		k.resyncs++
	}
	return true
}

func (k *kindRecorder) seen(typ string) (events, resyncs int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.types[typ], k.resyncs
}
