package capture

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/handoff-health/handoff/internal/blob"
	"github.com/handoff-health/handoff/internal/testutil"
)

type storeImpl struct {
	name string
	// fresh returns an empty store: memory, or Redis under a new key prefix.
	fresh func(t *testing.T) Store
}

// storeImpls returns both stores; Redis runs on a redis-server started for
// the calling test.
func storeImpls(t *testing.T) []storeImpl {
	r := testutil.StartRedis(t)
	return []storeImpl{
		{"memory", func(*testing.T) Store { return NewMemoryStore() }},
		{"redis", func(t *testing.T) Store { return newRedisStoreForTest(t, r.Addr) }},
	}
}

func touchAt(c *fakeClock) Touch {
	now := c.Now().Truncate(time.Millisecond)
	return Touch{Now: now, Expires: now.Add(DefaultSessionTTL)}
}

func newTestSession(c *fakeClock, encounter, patient string) Session {
	t := touchAt(c)
	return Session{
		ID: uuid.NewString(), Facility: "fac-a", EncounterID: encounter, PatientID: patient,
		MaxImages: 20, CreatedAt: t.Now, ExpiresAt: t.Expires,
	}
}

func qrAt(c *fakeClock) (string, QRToken) {
	tok := newToken(qrTokenBytes)
	return tok, QRToken{Hash: hashToken(tok), ExpiresAt: c.Now().Add(DefaultQRTokenTTL)}
}

func openTestSession(t *testing.T, st Store, c *fakeClock, encounter string) Session {
	t.Helper()
	_, qr := qrAt(c)
	s, created, err := st.Open(context.Background(), newTestSession(c, encounter, "pat-1"), qr)
	if err != nil || !created {
		t.Fatalf("Open: %v created=%v", err, created)
	}
	return s
}

// TestStoreContract runs the Store semantics both implementations promise.
func TestStoreContract(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fn   func(t *testing.T, st Store, c *fakeClock)
	}{
		{"open reuses the encounter's session", testOpenReuse},
		{"claim once and supersede", testClaim},
		{"reserve holds slots until the URL expires", testReserve},
		{"add is idempotent", testAddIdempotent},
		{"update, commit and remove", testUpdateRemove},
		{"status closes the session", testStatus},
		{"expiry, lease and removal", testExpiry},
	}
	for _, impl := range storeImpls(t) {
		t.Run(impl.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) { tt.fn(t, impl.fresh(t), newClock()) })
			}
		})
	}
}

func testOpenReuse(t *testing.T, st Store, c *fakeClock) {
	ctx := context.Background()
	enc := "enc-" + uuid.NewString()
	first := openTestSession(t, st, c, enc)
	c.Advance(time.Minute)
	_, qr := qrAt(c)
	again, created, err := st.Open(ctx, newTestSession(c, enc, "pat-1"), qr)
	if err != nil || created || again.ID != first.ID || !again.ExpiresAt.After(first.ExpiresAt) {
		t.Fatalf("reopen: %v created=%v id %s/%s", err, created, again.ID, first.ID)
	}
	if _, _, err := st.Open(ctx, newTestSession(c, enc, "pat-2"), qr); !errors.Is(err, ErrPatientMismatch) {
		t.Fatalf("other patient: %v", err)
	}
	other := newTestSession(c, enc, "pat-1")
	other.Facility = "fac-b"
	if s, created, err := st.Open(ctx, other, qr); err != nil || !created || s.ID == first.ID {
		t.Fatalf("same encounter id in another facility: %v %v", err, created)
	}
}

func testClaim(t *testing.T, st Store, c *fakeClock) {
	ctx := context.Background()
	enc := "enc-" + uuid.NewString()
	tok1, qr1 := qrAt(c)
	s, _, err := st.Open(ctx, newTestSession(c, enc, "pat-1"), qr1)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := st.PeekQR(ctx, hashToken(tok1), c.Now()); err != nil || id != s.ID {
		t.Fatalf("peek: %v", err)
	}
	mob1 := hashToken(newToken(mobileTokenBytes))
	got, err := st.Claim(ctx, qr1.Hash, mob1, touchAt(c))
	if err != nil || got.MobileConnectedAt.IsZero() {
		t.Fatalf("claim: %v", err)
	}
	if _, err := st.Claim(ctx, qr1.Hash, hashToken(newToken(mobileTokenBytes)), touchAt(c)); !errors.Is(err, ErrTokenClaimed) {
		t.Fatalf("second claim: %v", err)
	}
	// A new QR for the encounter supersedes the first; claiming it replaces
	// the mobile token.
	_, qr2 := qrAt(c)
	if _, _, err := st.Open(ctx, newTestSession(c, enc, "pat-1"), qr2); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PeekQR(ctx, qr1.Hash, c.Now()); !errors.Is(err, ErrTokenSuperseded) {
		t.Fatalf("old QR: %v", err)
	}
	mob2 := hashToken(newToken(mobileTokenBytes))
	if _, err := st.Claim(ctx, qr2.Hash, mob2, touchAt(c)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ByMobile(ctx, mob1, c.Now()); !errors.Is(err, ErrTokenNotFound) {
		t.Fatalf("replaced mobile token: %v", err)
	}
	if got, err := st.ByMobile(ctx, mob2, c.Now()); err != nil || got.ID != s.ID {
		t.Fatalf("mobile token: %v", err)
	}
	if _, err := st.PeekQR(ctx, hashToken(newToken(qrTokenBytes)), c.Now()); !errors.Is(err, ErrTokenNotFound) {
		t.Fatalf("unknown QR: %v", err)
	}
	_, qr3 := qrAt(c)
	if _, _, err := st.Open(ctx, newTestSession(c, enc, "pat-1"), qr3); err != nil {
		t.Fatal(err)
	}
	c.Advance(DefaultQRTokenTTL)
	if _, err := st.Claim(ctx, qr3.Hash, hashToken(newToken(mobileTokenBytes)), touchAt(c)); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("expired QR: %v", err)
	}
}

func testReserve(t *testing.T, st Store, c *fakeClock) {
	ctx := context.Background()
	s := newTestSession(c, "enc-"+uuid.NewString(), "pat-1")
	s.MaxImages = 2
	_, qr := qrAt(c)
	s, _, err := st.Open(ctx, s, qr)
	if err != nil {
		t.Fatal(err)
	}
	p := PendingUpload{ContentType: "image/jpeg", Size: 10, ExpiresAt: c.Now().Add(DefaultUploadURLTTL)}
	a, b := uuid.NewString(), uuid.NewString()
	for _, id := range []string{a, b, a} { // re-reserving a pending image takes no new slot
		if err := st.Reserve(ctx, s.ID, id, p, touchAt(c)); err != nil {
			t.Fatalf("reserve: %v", err)
		}
	}
	if err := st.Reserve(ctx, s.ID, uuid.NewString(), p, touchAt(c)); !errors.Is(err, ErrTooManyImages) {
		t.Fatalf("third reserve: %v", err)
	}
	got, _ := st.Get(ctx, s.ID, c.Now())
	if len(got.Pending) != 2 || got.Pending[a].Size != 10 || got.Pending[a].ContentType != "image/jpeg" {
		t.Fatalf("pending %+v", got.Pending)
	}
	if _, _, err := st.AddImage(ctx, s.ID, Image{ID: a, Key: blob.Key(s.ID, a), CreatedAt: c.Now()}, touchAt(c)); err != nil {
		t.Fatal(err)
	}
	if err := st.Reserve(ctx, s.ID, a, p, touchAt(c)); !errors.Is(err, ErrImageExists) {
		t.Fatalf("reserve registered image: %v", err)
	}
	c.Advance(DefaultUploadURLTTL) // b's URL expired: its slot is free again
	if err := st.Reserve(ctx, s.ID, uuid.NewString(), p, touchAt(c)); err != nil {
		t.Fatalf("reserve after URL expiry: %v", err)
	}
}

func testAddIdempotent(t *testing.T, st Store, c *fakeClock) {
	ctx := context.Background()
	s := openTestSession(t, st, c, "enc-"+uuid.NewString())
	id := uuid.NewString()
	img := Image{ID: id, Key: blob.Key(s.ID, id), ContentType: "image/png", Size: 5, CreatedAt: c.Now().Truncate(time.Millisecond),
		Metadata: Metadata{Laterality: "left", BodySite: BodySite{System: "http://snomed.info/sct", Code: "1"}}, Commit: Commit{Status: CommitPending}}
	got, added, err := st.AddImage(ctx, s.ID, img, touchAt(c))
	if err != nil || !added {
		t.Fatalf("add: %v %v", err, added)
	}
	again := img
	again.Metadata.Notes = "changed"
	got2, added, err := st.AddImage(ctx, s.ID, again, touchAt(c))
	if err != nil || added || got2.Metadata.Notes != "" || !got2.CreatedAt.Equal(got.CreatedAt) {
		t.Fatalf("re-add: %v added=%v %+v", err, added, got2)
	}
	stored, _ := st.Get(ctx, s.ID, c.Now())
	if len(stored.Images) != 1 || stored.Images[0].Metadata != img.Metadata {
		t.Fatalf("stored %+v", stored.Images)
	}
}

func testUpdateRemove(t *testing.T, st Store, c *fakeClock) {
	ctx := context.Background()
	s := openTestSession(t, st, c, "enc-"+uuid.NewString())
	id := uuid.NewString()
	if _, _, err := st.AddImage(ctx, s.ID, Image{ID: id, Key: blob.Key(s.ID, id), Commit: Commit{Status: CommitPending}}, touchAt(c)); err != nil {
		t.Fatal(err)
	}
	img, err := st.UpdateImage(ctx, s.ID, id, touchAt(c), func(img *Image) error {
		img.Metadata.Notes = "n"
		img.Key = "tampered"
		return nil
	})
	if err != nil || img.Metadata.Notes != "n" || img.Key != blob.Key(s.ID, id) {
		t.Fatalf("update: %v %+v", err, img)
	}
	if _, err := st.UpdateImage(ctx, s.ID, uuid.NewString(), touchAt(c), func(*Image) error { return nil }); !errors.Is(err, ErrImageNotFound) {
		t.Fatalf("update unknown: %v", err)
	}
	if _, err := SetCommit(ctx, st, s.ID, id, Commit{Status: CommitFailed, Error: "ALEX 503"}, touchAt(c)); err != nil {
		t.Fatal(err)
	}
	done := Commit{Status: CommitCommitted, AlexID: "m-1", CommittedAt: c.Now().Truncate(time.Millisecond)}
	if _, err := SetCommit(ctx, st, s.ID, id, done, touchAt(c)); err != nil {
		t.Fatal(err)
	}
	if _, err := SetCommit(ctx, st, s.ID, id, Commit{Status: CommitFailed}, touchAt(c)); !errors.Is(err, ErrImageCommitted) {
		t.Fatalf("commit over committed: %v", err)
	}
	if _, err := st.RemoveImage(ctx, s.ID, id, touchAt(c)); !errors.Is(err, ErrImageCommitted) {
		t.Fatalf("remove committed: %v", err)
	}
	got, _ := st.Get(ctx, s.ID, c.Now())
	if got.Images[0].Commit != done {
		t.Fatalf("commit state %+v", got.Images[0].Commit)
	}
	id2 := uuid.NewString()
	if _, _, err := st.AddImage(ctx, s.ID, Image{ID: id2, Key: blob.Key(s.ID, id2)}, touchAt(c)); err != nil {
		t.Fatal(err)
	}
	if img, err := st.RemoveImage(ctx, s.ID, id2, touchAt(c)); err != nil || img.ID != id2 {
		t.Fatalf("remove: %v", err)
	}
	if _, err := st.RemoveImage(ctx, s.ID, id2, touchAt(c)); !errors.Is(err, ErrImageNotFound) {
		t.Fatalf("remove twice: %v", err)
	}
}

func testStatus(t *testing.T, st Store, c *fakeClock) {
	ctx := context.Background()
	enc := "enc-" + uuid.NewString()
	s := openTestSession(t, st, c, enc)
	if err := st.SetStatus(ctx, s.ID, StatusCommitted, c.Now()); err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	if _, _, err := st.AddImage(ctx, s.ID, Image{ID: id, Key: blob.Key(s.ID, id)}, touchAt(c)); !errors.Is(err, ErrClosed) {
		t.Fatalf("add to committed session: %v", err)
	}
	next := openTestSession(t, st, c, enc) // a new session for the encounter
	if next.ID == s.ID {
		t.Fatal("committed session was reopened")
	}
	if err := st.SetStatus(ctx, uuid.NewString(), StatusCommitted, c.Now()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("status of unknown session: %v", err)
	}
}

func testExpiry(t *testing.T, st Store, c *fakeClock) {
	ctx := context.Background()
	s := openTestSession(t, st, c, "enc-"+uuid.NewString())
	kept := openTestSession(t, st, c, "enc-"+uuid.NewString())
	c.Advance(DefaultSessionTTL / 2)
	// A write refreshes kept's expiry without it being rescheduled anywhere.
	if err := st.Reserve(ctx, kept.ID, uuid.NewString(), PendingUpload{ExpiresAt: c.Now()}, touchAt(c)); err != nil {
		t.Fatal(err)
	}
	c.Advance(DefaultSessionTTL/2 + time.Second)
	if _, err := st.Get(ctx, s.ID, c.Now()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get expired: %v", err)
	}
	ids, err := st.Expired(ctx, c.Now(), time.Minute, 100)
	if err != nil || len(ids) != 1 || ids[0] != s.ID {
		t.Fatalf("expired: %v %v", ids, err)
	}
	if ids, _ := st.Expired(ctx, c.Now(), time.Minute, 100); len(ids) != 0 {
		t.Fatalf("leased session returned again: %v", ids)
	}
	c.Advance(time.Minute) // the lease ends without a Remove: it comes back
	if ids, _ := st.Expired(ctx, c.Now(), time.Minute, 100); len(ids) != 1 {
		t.Fatalf("after lease: %v", ids)
	}
	if err := st.Remove(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if err := st.Remove(ctx, s.ID); err != nil {
		t.Fatalf("remove twice: %v", err)
	}
	if _, err := st.Get(ctx, kept.ID, c.Now()); err != nil {
		t.Fatalf("refreshed session: %v", err)
	}
	c.Advance(DefaultSessionTTL)
	if ids, _ := st.Expired(ctx, c.Now(), time.Minute, 100); len(ids) != 1 || ids[0] != kept.ID {
		t.Fatalf("refreshed session's expiry: %v", ids)
	}
}
