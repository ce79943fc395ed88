//go:build integration

package session

import (
	"crypto/rand"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/internal/testutil"
)

// The Redis rows of every store table: they need a redis-server, so they
// exist only with the integration tag.
func init() {
	storeImpls = append(storeImpls, storeImpl{"redis", func(t *testing.T) func(*testing.T) Store {
		r := testutil.StartRedis(t)
		return func(t *testing.T) Store { return newRedisStoreForTest(t, r.Addr) }
	}})
}

// newRedisStoreForTest returns a store on addr under a key prefix of its own.
func newRedisStoreForTest(t *testing.T, addr string) *RedisStore {
	client := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { client.Close() })
	st, err := NewRedisStore(client, RedisStoreConfig{Prefix: "test:" + strings.ToLower(rand.Text()[:10]) + ":"})
	if err != nil {
		t.Fatal(err)
	}
	return st
}
