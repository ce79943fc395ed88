package session

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/handoff-health/handoff/internal/blob"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestStoreLimits runs the storage bounds of issue 13 on every store: the
// byte quota, stale uploads, the absolute deadline and the open-session cap.
func TestStoreLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fn   func(t *testing.T, st Store, c *testutil.Clock)
	}{
		{"byte quota counts pending uploads until swept", testQuota},
		{"stale uploads are leased and dropped", testStaleUploads},
		{"writes never extend a session past its deadline", testDeadline},
		{"open sessions per facility are capped", testOpenCap},
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

func pendingAt(c *testutil.Clock, sessionID, imageID string, size int64) PendingUpload {
	return PendingUpload{Key: blob.Key(sessionID, imageID), ContentType: "image/jpeg", Size: size,
		ExpiresAt: c.Now().Truncate(time.Millisecond).Add(uploadTTL)}
}

// testQuota is the reproduction of "one phone token added 61 MB in 10
// minutes by presigning repeatedly", scaled down: uploads whose URL expired
// still hold their bytes until the sweeper drops them.
func testQuota(t *testing.T, st Store, c *testutil.Clock) {
	ctx := context.Background()
	s := newTestSession(c, "enc-"+uuid.NewString(), "pat-1")
	s.MaxBytes = 25
	s, _, err := st.Open(ctx, s, qrAt(c), 0)
	must(t, "open", err)
	a, b, d := uuid.NewString(), uuid.NewString(), uuid.NewString()
	must(t, "reserve a", st.Reserve(ctx, s.ID, a, pendingAt(c, s.ID, a, 10), touchAt(c)))
	must(t, "reserve b", st.Reserve(ctx, s.ID, b, pendingAt(c, s.ID, b, 10), touchAt(c)))
	must(t, "re-reserve a (replaces its bytes)", st.Reserve(ctx, s.ID, a, pendingAt(c, s.ID, a, 15), touchAt(c)))
	wantErr(t, "reserve past the quota", st.Reserve(ctx, s.ID, d, pendingAt(c, s.ID, d, 1), touchAt(c)), ErrQuotaExceeded)
	_, _, err = st.AddImage(ctx, s.ID, Image{ID: a, Key: blob.Key(s.ID, a), Size: 15, CreatedAt: c.Now()}, touchAt(c))
	must(t, "register a", err)
	c.Advance(uploadTTL + time.Second) // b's URL expired; its blob may exist
	wantErr(t, "reserve while an expired upload is unswept", st.Reserve(ctx, s.ID, d, pendingAt(c, s.ID, d, 1), touchAt(c)), ErrQuotaExceeded)
	stale, err := st.StaleUploads(ctx, c.Now(), c.Now(), time.Minute, 10)
	must(t, "stale uploads", err)
	testutil.Equal(t, "stale uploads", []string{b}, staleIDs(stale))
	must(t, "drop b", st.DropUpload(ctx, s.ID, b, stale[0].ExpiresAt))
	must(t, "reserve after the sweep freed b", st.Reserve(ctx, s.ID, d, pendingAt(c, s.ID, d, 10), touchAt(c)))
	got, err := st.Get(ctx, s.ID, c.Now())
	must(t, "get", err)
	testutil.Equal(t, "pending after the sweep", []string{d}, pendingIDs(got))
}

func testStaleUploads(t *testing.T, st Store, c *testutil.Clock) {
	ctx := context.Background()
	s := openTestSession(t, st, c, "enc-"+uuid.NewString())
	a, b := uuid.NewString(), uuid.NewString()
	pa := pendingAt(c, s.ID, a, 1)
	must(t, "reserve a", st.Reserve(ctx, s.ID, a, pa, touchAt(c)))
	must(t, "reserve b", st.Reserve(ctx, s.ID, b, pendingAt(c, s.ID, b, 1), touchAt(c)))
	stale := func(what string) []StaleUpload {
		t.Helper()
		ups, err := st.StaleUploads(ctx, c.Now(), c.Now(), time.Minute, 10)
		must(t, what, err)
		return ups
	}
	testutil.Equal(t, "stale before expiry", 0, len(stale("before expiry")))
	c.Advance(uploadTTL)
	first := stale("after expiry")
	testutil.Equal(t, "stale after expiry", sorted(a, b), staleIDs(first))
	byID := map[string]PendingUpload{}
	for _, u := range first {
		byID[u.ImageID] = u.PendingUpload
	}
	testutil.Equal(t, "stale upload a as reserved", pa, byID[a])
	testutil.Equal(t, "leased uploads returned again", 0, len(stale("leased")))
	c.Advance(time.Minute) // the lease ends without a drop: they come back
	testutil.Equal(t, "stale after the lease", sorted(a, b), staleIDs(stale("after lease")))
	// b is re-signed: the old reservation's drop must keep the new one.
	pb := pendingAt(c, s.ID, b, 1)
	must(t, "re-reserve b", st.Reserve(ctx, s.ID, b, pb, touchAt(c)))
	must(t, "drop a", st.DropUpload(ctx, s.ID, a, pa.ExpiresAt))
	must(t, "drop b's old reservation", st.DropUpload(ctx, s.ID, b, byID[b].ExpiresAt))
	must(t, "drop a twice", st.DropUpload(ctx, s.ID, a, pa.ExpiresAt))
	got, err := st.Get(ctx, s.ID, c.Now())
	must(t, "get", err)
	testutil.Equal(t, "pending after drops", map[string]PendingUpload{b: pb}, got.Pending)
	keys, err := st.PendingKeys(ctx, s.ID)
	must(t, "pending keys", err)
	testutil.Equal(t, "pending keys", []string{pb.Key}, keys)
	c.Advance(DefaultTTL) // the session expired: its keys are still readable for the sweep
	keys, err = st.PendingKeys(ctx, s.ID)
	must(t, "pending keys of an expired session", err)
	testutil.Equal(t, "pending keys of an expired session", []string{pb.Key}, keys)
	must(t, "remove", st.Remove(ctx, s.ID))
	keys, err = st.PendingKeys(ctx, s.ID)
	must(t, "pending keys of a removed session", err)
	testutil.Equal(t, "pending keys of a removed session", 0, len(keys))
}

// testDeadline: "each presign extends the session by 2 h, so cleanup never
// comes". With a deadline, writes stop extending it there.
func testDeadline(t *testing.T, st Store, c *testutil.Clock) {
	ctx := context.Background()
	s := newTestSession(c, "enc-"+uuid.NewString(), "pat-1")
	s.Deadline = s.CreatedAt.Add(3 * time.Hour)
	s, _, err := st.Open(ctx, s, qrAt(c), 0)
	must(t, "open", err)
	for range 4 { // a write every 90 minutes would keep it alive forever
		c.Advance(90 * time.Minute)
		id := uuid.NewString()
		err := st.Reserve(ctx, s.ID, id, pendingAt(c, s.ID, id, 1), touchAt(c))
		if c.Now().Before(s.Deadline) {
			must(t, "reserve before the deadline", err)
			got, err := st.Get(ctx, s.ID, c.Now())
			must(t, "get", err)
			if got.ExpiresAt.After(s.Deadline) {
				t.Fatalf("expiresAt %v passes the deadline %v", got.ExpiresAt, s.Deadline)
			}
		} else {
			wantErr(t, "reserve after the deadline", err, ErrNotFound)
		}
	}
	ids, err := st.Expired(ctx, c.Now(), time.Minute, 100)
	must(t, "expired", err)
	testutil.Equal(t, "expired at the deadline", []string{s.ID}, ids)
}

// testOpenCap is the reproduction of "65 open sessions in one second",
// with a cap of 50: the creates race and exactly 50 win.
func testOpenCap(t *testing.T, st Store, c *testutil.Clock) {
	ctx := context.Background()
	const cap, tries = 50, 65
	var mu sync.Mutex
	var opened []Session
	refused := 0
	var wg sync.WaitGroup
	for i := range tries {
		wg.Go(func() {
			s, _, err := st.Open(ctx, newTestSession(c, fmt.Sprintf("enc-%d", i), "pat-1"), qrAt(c), cap)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				opened = append(opened, s)
			case errors.Is(err, ErrTooManySessions):
				refused++
			default:
				t.Errorf("open: %v", err)
			}
		})
	}
	wg.Wait()
	testutil.Check(t, "sessions opened", cap, len(opened))
	testutil.Check(t, "sessions refused", tries-cap, refused)
	if t.Failed() {
		t.FailNow()
	}
	_, created, err := st.Open(ctx, newTestSession(c, opened[0].EncounterID, "pat-1"), qrAt(c), cap)
	must(t, "reopen an open encounter at the cap", err)
	testutil.Check(t, "reopen: created", false, created)
	other := newTestSession(c, "enc-other", "pat-1")
	other.Facility = "fac-b"
	_, _, err = st.Open(ctx, other, qrAt(c), cap)
	must(t, "another facility at fac-a's cap", err)
	_, _, err = st.Open(ctx, newTestSession(c, "enc-new", "pat-1"), qrAt(c), cap)
	wantErr(t, "one more at the cap", err, ErrTooManySessions)
	must(t, "commit one", st.SetStatus(ctx, opened[0].ID, StatusCommitted, c.Now()))
	_, _, err = st.Open(ctx, newTestSession(c, "enc-new", "pat-1"), qrAt(c), cap)
	must(t, "open after one closed", err)
	must(t, "remove one", st.Remove(ctx, opened[1].ID))
	_, _, err = st.Open(ctx, newTestSession(c, "enc-new-2", "pat-1"), qrAt(c), cap)
	must(t, "open after one was removed", err)
	// Slots of sessions whose deadline passed free themselves, even if no
	// sweeper removed them (a crashed node's slot is not held forever).
	c.Advance(DefaultTTL)
	_, _, err = st.Open(ctx, newTestSession(c, "enc-later", "pat-1"), qrAt(c), cap)
	must(t, "open after the others expired", err)
}

func staleIDs(ups []StaleUpload) []string {
	ids := make([]string, 0, len(ups))
	for _, u := range ups {
		ids = append(ids, u.ImageID)
	}
	slices.Sort(ids)
	return ids
}

func pendingIDs(s Session) []string {
	ids := slices.Collect(maps.Keys(s.Pending))
	slices.Sort(ids)
	return ids
}

func sorted(ids ...string) []string { slices.Sort(ids); return ids }
