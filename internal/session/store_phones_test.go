package session

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/handoff-health/handoff/internal/testutil"
)

// TestStorePhones runs the phone rules every Store promises: several phones
// at once, revoking one, the phone's own status read, and the provider's
// latest session.
func TestStorePhones(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fn   func(t *testing.T, st Store, c *testutil.Clock)
	}{
		{"revoking one phone leaves the others", testRevokePhone},
		{"phone status outlives expiry", testPhoneStatus},
		{"phones are bounded", testMaxPhones},
		{"provider's latest session", testProviderSession},
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

// claimPhone mints a QR code for the encounter's session and claims it.
func claimPhone(t *testing.T, st Store, c *testutil.Clock, s Session) string {
	t.Helper()
	qr := qrAt(c)
	_, _, err := st.Open(context.Background(), newTestSession(c, s.EncounterID, s.PatientID), qr, 0)
	must(t, "reopen", err)
	mob := newHash()
	_, err = st.Claim(context.Background(), qr.Hash, mob, touchAt(c))
	must(t, "claim", err)
	return mob
}

func testRevokePhone(t *testing.T, st Store, c *testutil.Clock) {
	ctx := context.Background()
	s := openTestSession(t, st, c, "enc-"+uuid.NewString())
	mob1, mob2 := claimPhone(t, st, c, s), claimPhone(t, st, c, s)
	must(t, "revoke", st.RevokePhone(ctx, s.ID, mob2, c.Now()))
	must(t, "revoke again", st.RevokePhone(ctx, s.ID, mob2, c.Now()))
	_, err := st.ByMobile(ctx, mob2, c.Now())
	wantErr(t, "revoked phone", err, ErrPhoneRevoked)
	got, err := st.ByMobile(ctx, mob1, c.Now())
	must(t, "other phone", err)
	testutil.Equal(t, "working phones", 1, got.Phones)
	_, active, err := st.Phone(ctx, mob2, c.Now())
	must(t, "revoked phone's status", err)
	testutil.Equal(t, "revoked phone active", false, active)
	wantErr(t, "revoke a stranger", st.RevokePhone(ctx, s.ID, newHash(), c.Now()), ErrTokenNotFound)
	wantErr(t, "revoke in a missing session", st.RevokePhone(ctx, NewID(), mob1, c.Now()), ErrNotFound)
}

func testPhoneStatus(t *testing.T, st Store, c *testutil.Clock) {
	ctx := context.Background()
	s := openTestSession(t, st, c, "enc-"+uuid.NewString())
	mob := claimPhone(t, st, c, s)
	got, active, err := st.Phone(ctx, mob, c.Now())
	must(t, "phone", err)
	testutil.Equal(t, "active", true, active)
	testutil.Equal(t, "status", StatusOpen, got.Status)
	must(t, "commit", st.SetStatus(ctx, s.ID, StatusCommitted, c.Now()))
	got, _, err = st.Phone(ctx, mob, c.Now())
	must(t, "phone after commit", err)
	testutil.Equal(t, "status after commit", StatusCommitted, got.Status)
	c.Advance(DefaultTTL + time.Minute)
	got, _, err = st.Phone(ctx, mob, c.Now())
	must(t, "phone after expiry", err)
	testutil.Equal(t, "status after expiry", StatusExpired, got.Status)
	_, err = st.ByMobile(ctx, mob, c.Now())
	wantErr(t, "upload after expiry", err, ErrTokenNotFound)
	must(t, "remove", st.Remove(ctx, s.ID))
	_, _, err = st.Phone(ctx, mob, c.Now())
	wantErr(t, "phone after removal", err, ErrTokenNotFound)
}

func testMaxPhones(t *testing.T, st Store, c *testutil.Clock) {
	s := openTestSession(t, st, c, "enc-"+uuid.NewString())
	for range MaxPhones {
		claimPhone(t, st, c, s)
	}
	qr := qrAt(c)
	_, _, err := st.Open(context.Background(), newTestSession(c, s.EncounterID, s.PatientID), qr, 0)
	must(t, "reopen", err)
	_, err = st.Claim(context.Background(), qr.Hash, newHash(), touchAt(c))
	wantErr(t, "one phone too many", err, ErrTooManyPhones)
}

func testProviderSession(t *testing.T, st Store, c *testutil.Clock) {
	ctx := context.Background()
	open := func(enc, provider string) Session {
		s := newTestSession(c, enc, "pat-1")
		s.ProviderID = provider
		got, _, err := st.Open(ctx, s, qrAt(c), 0)
		must(t, "open", err)
		return got
	}
	encA, encB := "enc-"+uuid.NewString(), "enc-"+uuid.NewString()
	a := open(encA, "gp-1")
	open("enc-"+uuid.NewString(), "gp-2")
	id, err := st.ProviderSession(ctx, "fac-a", "gp-1")
	must(t, "provider session", err)
	testutil.Equal(t, "gp-1's session", a.ID, id)
	b := open(encB, "gp-1")
	id, _ = st.ProviderSession(ctx, "fac-a", "gp-1")
	testutil.Equal(t, "gp-1 moved on", b.ID, id)
	open(encA, "gp-1") // back to the first patient: a new code for it
	id, _ = st.ProviderSession(ctx, "fac-a", "gp-1")
	testutil.Equal(t, "gp-1 back", a.ID, id)
	id, _ = st.ProviderSession(ctx, "fac-b", "gp-1")
	testutil.Equal(t, "another facility", "", id)
}
