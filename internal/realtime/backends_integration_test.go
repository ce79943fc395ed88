//go:build integration

package realtime

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/testutil"
)

func init() {
	backends = append(backends, backend{"redis", func(t testing.TB) *hub.Hub {
		return redisHub(t, testutil.StartRedis(t), hub.RedisConfig{})
	}})
}

// redisHub runs a hub on its own Redis backend (and client) against r;
// several calls on one r make several nodes of one deployment.
func redisHub(t testing.TB, r *testutil.Redis, cfg hub.RedisConfig) *hub.Hub {
	t.Helper()
	rc := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { _ = rc.Close() }) // registered first, so it runs after the hub stops
	cfg.Client = rc
	b, err := hub.NewRedis(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return startHub(t, b)
}
