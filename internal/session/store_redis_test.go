//go:build integration

package session

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

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

// TestRedisImageWithoutSHA256 loads an image record written before SHA-256s
// were recorded: it still loads, with an empty SHA256, and can be edited.
func TestRedisImageWithoutSHA256(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	st := newRedisStoreForTest(t, r.Addr)
	c := testutil.NewClock()
	ctx := context.Background()
	s := openTestSession(t, st, c, "enc-old")
	id := NewID()
	old := `{"id":"` + id + `","key":"sessions/` + s.ID + `/` + id + `","contentType":"image/jpeg","size":7,` +
		`"metadata":{"notes":"n"},"createdAt":"` + c.Now().Format(time.RFC3339Nano) + `","commit":{"status":"pending"}}`
	if _, _, err := st.AddImage(ctx, s.ID, Image{ID: id, Key: "placeholder"}, touchAt(c)); err != nil {
		t.Fatal(err)
	}
	if err := st.c.HSet(ctx, st.sessionKeys(s.ID)[1], id, old).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := st.Get(ctx, s.ID, c.Now())
	if err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "old image", Image{ID: id, Key: "sessions/" + s.ID + "/" + id, ContentType: "image/jpeg", Size: 7,
		Metadata: Metadata{Notes: "n"}, CreatedAt: c.Now(), Commit: Commit{Status: CommitPending}}, got.Images[0])
	img, err := st.UpdateImage(ctx, s.ID, id, touchAt(c), func(img *Image) error { img.Metadata.Notes = "m"; return nil })
	if err != nil {
		t.Fatal(err)
	}
	testutil.Check(t, "edited sha256", "", img.SHA256)
}
