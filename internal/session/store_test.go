package session

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/handoff-health/handoff/internal/blob"
	"github.com/handoff-health/handoff/internal/testutil"
)

// Lifetimes the tests give QR codes and upload URLs (the capture API's
// defaults; the store only compares the times it is given).
const (
	qrTTL     = 10 * time.Minute
	uploadTTL = 5 * time.Minute
)

// storeImpl is one Store implementation under test.
type storeImpl struct {
	name string
	// start prepares the implementation for the calling test (Redis starts
	// a redis-server) and returns a maker of empty stores, each isolated
	// from the others (Redis: its own key prefix).
	start func(t *testing.T) func(t *testing.T) Store
}

// storeImpls lists the implementations every contract test runs on. The
// memory store is always here; store_redis_test.go (integration tag)
// appends Redis, so `go test` without the tag needs nothing but Go.
var storeImpls = []storeImpl{
	{"memory", func(*testing.T) func(*testing.T) Store {
		return func(*testing.T) Store { return NewMemoryStore() }
	}},
}

// newHash returns the hash of a fresh random token.
func newHash() string { return HashToken(rand.Text()) }

func touchAt(c *testutil.Clock) Touch {
	now := c.Now().Truncate(time.Millisecond)
	return Touch{Now: now, Expires: now.Add(DefaultTTL)}
}

func newTestSession(c *testutil.Clock, encounter, patient string) Session {
	t := touchAt(c)
	return Session{
		ID: NewID(), Facility: "fac-a", EncounterID: encounter, PatientID: patient,
		MaxImages: 20, CreatedAt: t.Now, ExpiresAt: t.Expires,
	}
}

func qrAt(c *testutil.Clock) QRToken {
	return QRToken{Hash: newHash(), ExpiresAt: c.Now().Add(qrTTL)}
}

func openTestSession(t *testing.T, st Store, c *testutil.Clock, encounter string) Session {
	t.Helper()
	s, created, err := st.Open(context.Background(), newTestSession(c, encounter, "pat-1"), qrAt(c), 0)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if !created {
		t.Fatal("Open: created = false for a new encounter")
	}
	return s
}

// wantErr fails the test unless err is want.
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

// must fails the test on err.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestStoreContract runs the Store semantics every implementation promises.
func TestStoreContract(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fn   func(t *testing.T, st Store, c *testutil.Clock)
	}{
		{"open reuses the encounter's session", testOpenReuse},
		{"claim once and supersede", testClaim},
		{"reserve holds slots until the URL expires", testReserve},
		{"add is idempotent", testAddIdempotent},
		{"update, commit and remove", testUpdateRemove},
		{"status closes the session", testStatus},
		{"expiry, lease and removal", testExpiry},
	}
	for _, impl := range storeImpls {
		t.Run(impl.name, func(t *testing.T) {
			fresh := impl.start(t)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) { tt.fn(t, fresh(t), testutil.NewClock()) })
			}
		})
	}
}

func testOpenReuse(t *testing.T, st Store, c *testutil.Clock) {
	ctx := context.Background()
	enc := "enc-" + uuid.NewString()
	first := openTestSession(t, st, c, enc)
	c.Advance(time.Minute)
	qr := qrAt(c)
	again, created, err := st.Open(ctx, newTestSession(c, enc, "pat-1"), qr, 0)
	must(t, "reopen", err)
	testutil.Check(t, "reopen: created", false, created)
	testutil.Check(t, "reopen: session id", first.ID, again.ID)
	if !again.ExpiresAt.After(first.ExpiresAt) {
		t.Errorf("reopen: expiry %v not after the first %v", again.ExpiresAt, first.ExpiresAt)
	}
	_, _, err = st.Open(ctx, newTestSession(c, enc, "pat-2"), qr, 0)
	wantErr(t, "other patient", err, ErrPatientMismatch)
	other := newTestSession(c, enc, "pat-1")
	other.Facility = "fac-b"
	s, created, err := st.Open(ctx, other, qr, 0)
	must(t, "same encounter id in another facility", err)
	testutil.Check(t, "another facility: created", true, created)
	if s.ID == first.ID {
		t.Error("another facility's encounter reused the first facility's session")
	}
}

func testClaim(t *testing.T, st Store, c *testutil.Clock) {
	ctx := context.Background()
	enc := "enc-" + uuid.NewString()
	qr1 := qrAt(c)
	s, _, err := st.Open(ctx, newTestSession(c, enc, "pat-1"), qr1, 0)
	must(t, "open", err)
	id, err := st.PeekQR(ctx, qr1.Hash, c.Now())
	must(t, "peek", err)
	testutil.Equal(t, "peeked session id", s.ID, id)
	mob1 := newHash()
	got, err := st.Claim(ctx, qr1.Hash, mob1, touchAt(c))
	must(t, "claim", err)
	if got.MobileConnectedAt.IsZero() {
		t.Fatal("claim: MobileConnectedAt not set")
	}
	_, err = st.Claim(ctx, qr1.Hash, newHash(), touchAt(c))
	wantErr(t, "second claim", err, ErrTokenClaimed)
	// A new QR for the encounter supersedes the first; claiming it adds a
	// phone, and the first phone keeps working.
	qr2 := qrAt(c)
	_, _, err = st.Open(ctx, newTestSession(c, enc, "pat-1"), qr2, 0)
	must(t, "reopen", err)
	_, err = st.PeekQR(ctx, qr1.Hash, c.Now())
	wantErr(t, "old QR", err, ErrTokenSuperseded)
	mob2 := newHash()
	_, err = st.Claim(ctx, qr2.Hash, mob2, touchAt(c))
	must(t, "claim new QR", err)
	got, err = st.ByMobile(ctx, mob1, c.Now())
	must(t, "first phone after a second claimed", err)
	testutil.Equal(t, "phones", 2, got.Phones)
	got, err = st.ByMobile(ctx, mob2, c.Now())
	must(t, "mobile token", err)
	testutil.Equal(t, "session of the mobile token", s.ID, got.ID)
	_, err = st.PeekQR(ctx, newHash(), c.Now())
	wantErr(t, "unknown QR", err, ErrTokenNotFound)
	qr3 := qrAt(c)
	_, _, err = st.Open(ctx, newTestSession(c, enc, "pat-1"), qr3, 0)
	must(t, "reopen again", err)
	c.Advance(qrTTL)
	_, err = st.Claim(ctx, qr3.Hash, newHash(), touchAt(c))
	wantErr(t, "expired QR", err, ErrTokenExpired)
}

func testReserve(t *testing.T, st Store, c *testutil.Clock) {
	ctx := context.Background()
	s := newTestSession(c, "enc-"+uuid.NewString(), "pat-1")
	s.MaxImages = 2
	s, _, err := st.Open(ctx, s, qrAt(c), 0)
	must(t, "open", err)
	p := PendingUpload{ContentType: "image/jpeg", Size: 10, ExpiresAt: c.Now().Add(uploadTTL)}
	a, b := uuid.NewString(), uuid.NewString()
	for _, id := range []string{a, b, a} { // re-reserving a pending image takes no new slot
		must(t, "reserve", st.Reserve(ctx, s.ID, id, p, touchAt(c)))
	}
	wantErr(t, "third reserve", st.Reserve(ctx, s.ID, uuid.NewString(), p, touchAt(c)), ErrTooManyImages)
	got, err := st.Get(ctx, s.ID, c.Now())
	must(t, "get", err)
	testutil.Equal(t, "pending uploads", map[string]PendingUpload{a: p, b: p}, got.Pending)
	_, _, err = st.AddImage(ctx, s.ID, Image{ID: a, Key: blob.Key(s.ID, a), CreatedAt: c.Now()}, touchAt(c))
	must(t, "add", err)
	wantErr(t, "reserve registered image", st.Reserve(ctx, s.ID, a, p, touchAt(c)), ErrImageExists)
	c.Advance(uploadTTL) // b's URL expired: its slot is free again
	must(t, "reserve after URL expiry", st.Reserve(ctx, s.ID, uuid.NewString(), p, touchAt(c)))
}

func testAddIdempotent(t *testing.T, st Store, c *testutil.Clock) {
	ctx := context.Background()
	s := openTestSession(t, st, c, "enc-"+uuid.NewString())
	id := uuid.NewString()
	img := Image{ID: id, Key: blob.Key(s.ID, id), ContentType: "image/png", Size: 5, SHA256: blob.Hash([]byte("12345")), CreatedAt: c.Now().Truncate(time.Millisecond),
		Metadata: Metadata{Laterality: "left", BodySite: BodySite{System: "http://snomed.info/sct", Code: "1"}}, Commit: Commit{Status: CommitPending}}
	got, added, err := st.AddImage(ctx, s.ID, img, touchAt(c))
	must(t, "add", err)
	testutil.Equal(t, "add: added", true, added)
	again := img
	again.Metadata.Notes = "changed"
	got2, added, err := st.AddImage(ctx, s.ID, again, touchAt(c))
	must(t, "re-add", err)
	testutil.Check(t, "re-add: added", false, added)
	testutil.Check(t, "re-add: returned image", got, got2)
	stored, err := st.Get(ctx, s.ID, c.Now())
	must(t, "get", err)
	testutil.Equal(t, "stored images", []Image{img}, stored.Images)
}

func testUpdateRemove(t *testing.T, st Store, c *testutil.Clock) {
	ctx := context.Background()
	s := openTestSession(t, st, c, "enc-"+uuid.NewString())
	id := uuid.NewString()
	sum := blob.Hash([]byte("checked"))
	_, _, err := st.AddImage(ctx, s.ID, Image{ID: id, Key: blob.Key(s.ID, id), SHA256: sum, Commit: Commit{Status: CommitPending}}, touchAt(c))
	must(t, "add", err)
	img, err := st.UpdateImage(ctx, s.ID, id, touchAt(c), func(img *Image) error {
		img.Metadata.Notes = "n"
		img.Key = "tampered"
		img.SHA256 = blob.Hash([]byte("replaced"))
		return nil
	})
	must(t, "update", err)
	testutil.Check(t, "updated notes", "n", img.Metadata.Notes)
	testutil.Check(t, "updated key (must not change)", blob.Key(s.ID, id), img.Key)
	testutil.Check(t, "updated sha256 (must not change)", sum, img.SHA256)
	got, err := st.Get(ctx, s.ID, c.Now())
	must(t, "get", err)
	testutil.Check(t, "stored sha256", sum, got.Images[0].SHA256)
	_, err = st.UpdateImage(ctx, s.ID, uuid.NewString(), touchAt(c), func(*Image) error { return nil })
	wantErr(t, "update unknown", err, ErrImageNotFound)
	_, err = SetCommit(ctx, st, s.ID, id, Commit{Status: CommitFailed, Error: "ALEX 503"}, touchAt(c))
	must(t, "record failure", err)
	done := Commit{Status: CommitCommitted, AlexID: "m-1", CommittedAt: c.Now().Truncate(time.Millisecond)}
	_, err = SetCommit(ctx, st, s.ID, id, done, touchAt(c))
	must(t, "record commit", err)
	_, err = SetCommit(ctx, st, s.ID, id, Commit{Status: CommitFailed}, touchAt(c))
	wantErr(t, "commit over committed", err, ErrImageCommitted)
	_, err = st.RemoveImage(ctx, s.ID, id, touchAt(c))
	wantErr(t, "remove committed", err, ErrImageCommitted)
	got, err = st.Get(ctx, s.ID, c.Now())
	must(t, "get", err)
	testutil.Equal(t, "commit state", done, got.Images[0].Commit)
	id2 := uuid.NewString()
	_, _, err = st.AddImage(ctx, s.ID, Image{ID: id2, Key: blob.Key(s.ID, id2)}, touchAt(c))
	must(t, "add second", err)
	removed, err := st.RemoveImage(ctx, s.ID, id2, touchAt(c))
	must(t, "remove", err)
	testutil.Equal(t, "removed image id", id2, removed.ID)
	_, err = st.RemoveImage(ctx, s.ID, id2, touchAt(c))
	wantErr(t, "remove twice", err, ErrImageNotFound)
}

func testStatus(t *testing.T, st Store, c *testutil.Clock) {
	ctx := context.Background()
	enc := "enc-" + uuid.NewString()
	s := openTestSession(t, st, c, enc)
	must(t, "set status", st.SetStatus(ctx, s.ID, StatusCommitted, c.Now()))
	id := uuid.NewString()
	_, _, err := st.AddImage(ctx, s.ID, Image{ID: id, Key: blob.Key(s.ID, id)}, touchAt(c))
	wantErr(t, "add to committed session", err, ErrClosed)
	next := openTestSession(t, st, c, enc) // a new session for the encounter
	if next.ID == s.ID {
		t.Fatal("committed session was reopened")
	}
	wantErr(t, "status of unknown session", st.SetStatus(ctx, NewID(), StatusCommitted, c.Now()), ErrNotFound)
}

func testExpiry(t *testing.T, st Store, c *testutil.Clock) {
	ctx := context.Background()
	s := openTestSession(t, st, c, "enc-"+uuid.NewString())
	kept := openTestSession(t, st, c, "enc-"+uuid.NewString())
	c.Advance(DefaultTTL / 2)
	// A write refreshes kept's expiry without it being rescheduled anywhere.
	must(t, "reserve", st.Reserve(ctx, kept.ID, uuid.NewString(), PendingUpload{ExpiresAt: c.Now()}, touchAt(c)))
	c.Advance(DefaultTTL/2 + time.Second)
	_, err := st.Get(ctx, s.ID, c.Now())
	wantErr(t, "get expired", err, ErrNotFound)
	expired := func(what string) []string {
		t.Helper()
		ids, err := st.Expired(ctx, c.Now(), time.Minute, 100)
		must(t, what, err)
		return ids
	}
	testutil.Equal(t, "expired sessions", []string{s.ID}, expired("expired"))
	testutil.Equal(t, "leased sessions returned again", 0, len(expired("expired again")))
	c.Advance(time.Minute) // the lease ends without a Remove: it comes back
	testutil.Equal(t, "expired sessions after the lease", []string{s.ID}, expired("after lease"))
	must(t, "remove", st.Remove(ctx, s.ID))
	must(t, "remove twice", st.Remove(ctx, s.ID))
	_, err = st.Get(ctx, kept.ID, c.Now())
	must(t, "refreshed session", err)
	c.Advance(DefaultTTL)
	testutil.Equal(t, "refreshed session's expiry", []string{kept.ID}, expired("refreshed"))
}

// TestStoreConcurrentAdds races 30 AddImage calls on a session capped at 20
// straight at each store (no presign to hold slots): exactly 20 win, none
// is lost, and every loser gets ErrTooManyImages.
func TestStoreConcurrentAdds(t *testing.T) {
	t.Parallel()
	for _, impl := range storeImpls {
		t.Run(impl.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clock := testutil.NewClock()
			store := impl.start(t)(t)
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
			must(t, "get", err)
			testutil.Check(t, "added", 20, added)
			testutil.Check(t, "refused", 10, refused)
			testutil.Check(t, "stored images", 20, len(got.Images))
		})
	}
}
