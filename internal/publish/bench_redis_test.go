//go:build integration

package publish

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/testutil"
)

func BenchmarkPublishHTTPRedis(b *testing.B) {
	c := redis.NewClient(&redis.Options{Addr: testutil.StartRedis(b).Addr})
	b.Cleanup(func() { c.Close() })
	backend, err := hub.NewRedis(hub.RedisConfig{Client: c})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { backend.Close() })
	benchPublish(b, backend)
}
