package capture

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/handoff-health/handoff/internal/blob"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestRegisterTakesImageOutOfURLReach is issue 13's first reproduction up to
// register: after register the upload object is gone, the image lives under
// a key no URL can write, and a second PUT through the still-valid upload URL
// (same size, a JPEG magic prefix, then HTML) changes neither what the
// desktop is shown nor what a repeated register returns. The sweep of the
// expired session also removes what that PUT left under the upload key.
func TestRegisterTakesImageOutOfURLReach(t *testing.T) {
	t.Parallel()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b, Config{})
			ctx := context.Background()
			c := e.create("enc-integrity")
			mobile := e.claim(c.Token).MobileToken
			photo := testutil.JPEG(t, 6)
			id := uuid.NewString()
			p := e.presign(mobile, id, "image/jpeg", len(photo))
			testutil.Equal(t, "presign key", blob.UploadKey(c.SessionID, id), p.Key)
			upload(t, p, photo)
			st, body := e.register(mobile, id, p.Key, nil)
			var v ImageView
			e.must(st, http.StatusCreated, body, &v)

			if _, err := e.blobs.Stat(ctx, p.Key); !errors.Is(err, blob.ErrNotFound) {
				t.Errorf("upload object after register: %v; want ErrNotFound", err)
			}
			stored := readBlob(t, e.blobs, blob.Key(c.SessionID, id))
			testutil.Check(t, "stored bytes are the registered photo", true, bytes.Equal(stored, photo))

			evil := append([]byte{0xFF, 0xD8, 0xFF}, bytes.Repeat([]byte("<html>"), len(photo))...)[:len(photo)]
			upload(t, p, evil) // the URL is still valid: the store accepts it, under the upload key
			st, body = e.register(mobile, id, p.Key, nil)
			e.must(st, http.StatusOK, body, nil)
			snap := e.snapshot(c.SessionID)
			testutil.Check(t, "snapshot serves the registered photo", true, bytes.Equal(fetch(t, snap.Images[0].URL), photo))
			testutil.Check(t, "stored bytes after the second PUT", true, bytes.Equal(readBlob(t, e.blobs, blob.Key(c.SessionID, id)), photo))

			e.clock.Advance(DefaultSessionTTL + time.Second)
			if n := e.api.sweep(ctx); n != 1 {
				t.Fatalf("sweep removed %d sessions, want 1", n)
			}
			for _, key := range []string{p.Key, blob.Key(c.SessionID, id)} {
				if _, err := e.blobs.Stat(ctx, key); !errors.Is(err, blob.ErrNotFound) {
					t.Errorf("%s after the session expired: %v; want ErrNotFound", key, err)
				}
			}
		})
	}
}

func readBlob(t *testing.T, s blob.Store, key string) []byte {
	t.Helper()
	rc, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("open %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
