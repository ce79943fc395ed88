//go:build integration

package commit

import (
	"crypto/rand"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/internal/session"
	"github.com/handoff-health/handoff/internal/testutil"
)

// The Redis session store needs a redis-server, so it joins the
// store-sensitive tests only with the integration tag.
func init() { storeKindSetups = append(storeKindSetups, redisStoreKind) }

// redisStoreKind starts one redis-server for the calling test; each store
// made on it gets its own key prefix.
func redisStoreKind(t *testing.T) storeKind {
	r := testutil.StartRedis(t)
	client := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { client.Close() })
	return storeKind{"redis", func(t *testing.T) session.Store {
		st, err := session.NewRedisStore(client, session.RedisStoreConfig{
			Prefix: "commit-test:" + strings.ToLower(rand.Text()[:10]) + ":"})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}}
}
