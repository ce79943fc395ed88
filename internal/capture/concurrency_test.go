package capture

import (
	"net/http"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/handoff-health/handoff/internal/testutil"
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
				wg.Go(func() { e.addImage(mobile, testutil.JPEG(t, byte(i)), "image/jpeg") })
			}
			wg.Wait()
			testutil.Equal(t, "images after concurrent registrations", DefaultMaxImages, len(e.snapshot(c.SessionID).Images))
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
				testutil.Check(t, "error code of a presign past the cap", "too_many_images", code)
			}
			testutil.Equal(t, "images after refused extras", DefaultMaxImages, len(e.snapshot(c.SessionID).Images))
		})
	}
}
