package capture

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/handoff-health/handoff/internal/blob"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestSessionByteQuota is the reproduction of "one phone token added 61 MB
// in 10 minutes": it presigns and uploads again and again without
// registering. The quota counts those uploads until the sweeper deletes
// their blobs, so presigning past it is a 409 that changes nothing, and an
// expired URL frees nothing until its blob is gone.
func TestSessionByteQuota(t *testing.T) {
	t.Parallel()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			data := testutil.JPEG(t, 3)
			e := newEnv(t, b, Config{MaxImageBytes: int64(len(data)), MaxSessionBytes: 3 * int64(len(data))})
			c := e.create("enc-quota")
			mobile := e.claim(c.Token).MobileToken
			kept := e.addImage(mobile, data, "image/jpeg") // registered: survives every sweep
			var keys []string
			for range 2 {
				p := e.presign(mobile, uuid.NewString(), "image/jpeg", len(data))
				upload(t, p, data)
				keys = append(keys, p.Key)
			}
			before := e.fingerprint(c.SessionID)
			e.presignRefused(mobile, len(data), http.StatusConflict, "quota_exceeded")
			testutil.Equal(t, "session after a refused presign", before, e.fingerprint(c.SessionID))

			e.clock.Advance(DefaultUploadURLTTL + time.Second) // URLs expired, blobs still stored
			e.presignRefused(mobile, len(data), http.StatusConflict, "quota_exceeded")
			testutil.Check(t, "uploads swept within the grace", 0, e.api.sweepUploads(context.Background()))

			e.clock.Advance(uploadSweepGrace)
			testutil.Check(t, "stale uploads swept", 2, e.api.sweepUploads(context.Background()))
			for _, key := range keys {
				if _, err := e.blobs.Stat(context.Background(), key); !errors.Is(err, blob.ErrNotFound) {
					t.Errorf("stale upload's blob after the sweep: %v", err)
				}
			}
			if _, err := e.blobs.Stat(context.Background(), blob.Key(c.SessionID, kept.ID)); err != nil {
				t.Errorf("registered image's blob after the sweep: %v", err)
			}
			testutil.Equal(t, "pending uploads after the sweep", 0, len(e.session(c.SessionID).Pending))
			e.addImage(mobile, data, "image/jpeg") // the quota is free again
			testutil.Check(t, "second sweep", 0, e.api.sweepUploads(context.Background()))
		})
	}
}

// TestSessionLifetime: "each presign extends the session by 2 h, so cleanup
// never comes". Presigning every 90 minutes keeps a session alive only
// until its creation plus MaxSessionLifetime; then the phone's token stops
// working and the sweeper removes the session and its uploads.
func TestSessionLifetime(t *testing.T) {
	t.Parallel()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b, Config{MaxSessionLifetime: 3 * time.Hour})
			c := e.create("enc-lifetime")
			deadline := e.clock.Now().Truncate(time.Millisecond).Add(3 * time.Hour)
			mobile := e.claim(c.Token).MobileToken
			e.clock.Advance(90 * time.Minute)
			p := e.presign(mobile, uuid.NewString(), "image/png", 10)
			testutil.Check(t, "session expiry after a late write", deadline, e.session(c.SessionID).ExpiresAt)
			upload(t, p, testutil.PNG(t, 1)[:10])
			e.clock.Advance(90 * time.Minute)
			st, body := e.do("POST", "/api/medtech/session/presigned-url", mobile,
				map[string]any{"imageId": uuid.NewString(), "contentType": "image/png", "size": 10})
			testutil.Check(t, "presign at the deadline: status", http.StatusUnauthorized, st)
			testutil.Check(t, "presign at the deadline: code", "invalid_token", errCode(body))
			testutil.Check(t, "sessions swept", 1, e.api.sweep(context.Background()))
			if _, err := e.blobs.Stat(context.Background(), p.Key); !errors.Is(err, blob.ErrNotFound) {
				t.Errorf("expired session's unregistered upload: %v", err)
			}
		})
	}
}

// TestOpenSessionCap is the reproduction of "65 open sessions in one
// second" with a cap of 50: concurrent creates, and exactly 50 succeed.
// Reusing an open encounter's session and other facilities are unaffected.
func TestOpenSessionCap(t *testing.T) {
	t.Parallel()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			const cap, tries = 50, 65
			e := newEnv(t, b, Config{MaxOpenSessionsPerFacility: cap})
			var mu sync.Mutex
			codes := map[int]int{}
			var wg sync.WaitGroup
			for i := range tries {
				wg.Go(func() {
					st, body := e.do("POST", "/api/medtech/session/tokens", e.jwt,
						map[string]any{"encounterId": fmt.Sprintf("enc-%d", i), "patientId": testPatientID, "patientNhi": testNHI, "patientDisplay": testDisplay})
					mu.Lock()
					defer mu.Unlock()
					codes[st]++
					if st == http.StatusTooManyRequests && errCode(body) != "too_many_open_sessions" {
						t.Errorf("refused create: code %q", errCode(body))
					}
				})
			}
			wg.Wait()
			testutil.Equal(t, "create statuses", map[int]int{http.StatusCreated: cap, http.StatusTooManyRequests: tries - cap}, codes)
			st, body := e.do("POST", "/api/medtech/session/tokens", e.jwt,
				map[string]any{"encounterId": "enc-0", "patientId": testPatientID, "patientNhi": testNHI, "patientDisplay": testDisplay})
			if st != http.StatusCreated && st != http.StatusTooManyRequests {
				t.Fatalf("reuse: %d %s", st, body)
			}
			other := e.issue("fac-b", time.Hour)
			st, body = e.do("POST", "/api/medtech/session/tokens", other,
				map[string]any{"encounterId": "enc-b", "patientId": testPatientID, "patientNhi": testNHI, "patientDisplay": testDisplay})
			e.must(st, http.StatusCreated, body, nil)
		})
	}
}

// TestStorageLimitsConfig: limits that contradict each other stop New.
func TestStorageLimitsConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"quota below one image", Config{MaxImageBytes: 1000, MaxSessionBytes: 999}},
		{"lifetime below the TTL", Config{SessionTTL: 2 * time.Hour, MaxSessionLifetime: time.Hour}},
		{"negative cap", Config{MaxOpenSessionsPerFacility: -1}},
	} {
		tc.cfg.PublicURL = "http://127.0.0.1:1"
		if _, err := tc.cfg.withDefaults(); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	cfg, err := Config{PublicURL: "http://127.0.0.1:1", MaxImageBytes: 200 << 20}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	testutil.Check(t, "default quota with a larger image limit", int64(200<<20), cfg.MaxSessionBytes)
}
