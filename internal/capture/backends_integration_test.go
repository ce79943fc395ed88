//go:build integration

package capture

import (
	"context"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/internal/blob"
	"github.com/handoff-health/handoff/internal/session"
	"github.com/handoff-health/handoff/internal/testutil"
)

// The Redis store + S3 blobs configuration needs redis-server and
// versitygw, so it joins the API tests only with the integration tag.
func init() { backendSetups = append(backendSetups, redisS3Backend) }

// redisS3Backend starts one redis-server and one versitygw for the calling
// test; each env made on it gets its own key prefix and bucket.
func redisS3Backend(t *testing.T) backend {
	r := testutil.StartRedis(t)
	v := testutil.StartVersity(t)
	client := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { client.Close() })
	return backend{"redis+s3", func(t *testing.T, _ string) (session.Store, blob.Store, func(*http.ServeMux)) {
		st, err := session.NewRedisStore(client, session.RedisStoreConfig{Prefix: "test:" + strings.ToLower(rand.Text()[:10]) + ":"})
		if err != nil {
			t.Fatal(err)
		}
		return st, newS3(t, v, "capture-"), func(*http.ServeMux) {}
	}}
}

// newS3 returns an S3 blob store on a new bucket of v.
func newS3(t *testing.T, v testutil.VersityServer, bucketPrefix string) blob.Store {
	s3, err := blob.NewS3(context.Background(), blob.S3Config{
		Endpoint: v.Endpoint, Region: v.Region, PathStyle: true,
		Bucket:      bucketPrefix + strings.ToLower(rand.Text()[:12]),
		AccessKeyID: v.AccessKey, SecretAccessKey: v.SecretKey, CreateBucket: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s3
}
