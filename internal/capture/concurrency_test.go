package capture

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/handoff-health/handoff/internal/blob"
)

// TestConcurrentRegistrations has one phone presign, upload and register 20
// images at once, on both configurations: all 20 are kept, each announced
// once. Then 5 more racing for no free slot are all refused.
func TestConcurrentRegistrations(t *testing.T) {
	t.Parallel()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b, Config{})
			c := e.create("enc-burst")
			mobile := e.claim(c.Token).MobileToken
			live := e.subscribe(c.Channel, nil)

			var wg sync.WaitGroup
			for i := range DefaultMaxImages {
				wg.Go(func() { e.addImage(mobile, testJPEG(t, byte(i)), "image/jpeg") })
			}
			wg.Wait()
			if n := len(e.snapshot(c.SessionID).Images); n != DefaultMaxImages {
				t.Fatalf("%d images after %d concurrent registrations", n, DefaultMaxImages)
			}
			for range DefaultMaxImages {
				live.wait(t, EventImageAdded)
			}

			codes := make(chan string, 5)
			for range 5 {
				wg.Go(func() {
					st, body := e.do("POST", "/api/medtech/session/presigned-url", mobile,
						map[string]any{"imageId": uuid.NewString(), "contentType": "image/png", "size": 100})
					if st != http.StatusConflict {
						t.Errorf("presign past the cap: %d %s", st, body)
					}
					codes <- errCode(body)
				})
			}
			wg.Wait()
			close(codes)
			for code := range codes {
				if code != "too_many_images" {
					t.Errorf("code %q", code)
				}
			}
			if n := len(e.snapshot(c.SessionID).Images); n != DefaultMaxImages {
				t.Fatalf("%d images after refused extras", n)
			}
		})
	}
}

// TestStoreConcurrentAdds races 30 AddImage calls on a session capped at 20
// straight at each store (no presign to hold slots): exactly 20 win, none
// is lost, and every loser gets ErrTooManyImages.
func TestStoreConcurrentAdds(t *testing.T) {
	t.Parallel()
	for _, st := range storeImpls(t) {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clock := newClock()
			store := st.fresh(t)
			s := openTestSession(t, store, clock, "enc-race")
			var wg sync.WaitGroup
			var mu sync.Mutex
			added, refused := 0, 0
			for range 30 {
				wg.Go(func() {
					id := uuid.NewString()
					img := Image{ID: id, Key: blob.Key(s.ID, id), ContentType: "image/jpeg", Size: 1, CreatedAt: clock.Now()}
					_, ok, err := store.AddImage(ctx, s.ID, img, touchAt(clock))
					mu.Lock()
					defer mu.Unlock()
					switch {
					case ok:
						added++
					case errors.Is(err, ErrTooManyImages):
						refused++
					default:
						t.Errorf("AddImage: %v", err)
					}
				})
			}
			wg.Wait()
			got, err := store.Get(ctx, s.ID, clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			if added != 20 || refused != 10 || len(got.Images) != 20 {
				t.Fatalf("added %d refused %d stored %d", added, refused, len(got.Images))
			}
		})
	}
}
