package session

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/testutil"
)

// brokenStore is a Store whose reads fail as when Redis is down.
type brokenStore struct{ Store }

var errStoreDown = errors.New("injected: store unreachable")

func (brokenStore) Get(context.Context, string, time.Time) (Session, error) {
	return Session{}, errStoreDown
}

// TestLookupTenantRule is the tenant rule, on every store: a session is
// found only by its own facility while it lives; a malformed id, a missing
// or expired session and another facility's session are all the same
// ErrNotFound; a store failure is an error but never ErrNotFound.
func TestLookupTenantRule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		facility string
		id       func(s Session) string
		advance  time.Duration // clock moved after the session is opened
		broken   bool          // the store's reads fail
		want     error         // nil: the session is returned
	}{
		{name: "own facility", facility: "fac-a", id: idOf},
		{name: "other facility", facility: "fac-b", id: idOf, want: ErrNotFound},
		{name: "facility differing only in case", facility: "FAC-A", id: idOf, want: ErrNotFound},
		{name: "no facility", facility: "", id: idOf, want: ErrNotFound},
		{name: "missing", facility: "fac-a", id: func(Session) string { return NewID() }, want: ErrNotFound},
		{name: "malformed id", facility: "fac-a", id: func(Session) string { return "../../etc" }, want: ErrNotFound},
		{name: "upper-case id", facility: "fac-a", id: func(s Session) string { return strings.ToUpper(s.ID) }, want: ErrNotFound},
		{name: "empty id", facility: "fac-a", id: func(Session) string { return "" }, want: ErrNotFound},
		{name: "expired", facility: "fac-a", id: idOf, advance: DefaultTTL, want: ErrNotFound},
		{name: "expired, other facility", facility: "fac-b", id: idOf, advance: DefaultTTL, want: ErrNotFound},
		{name: "just before expiry", facility: "fac-a", id: idOf, advance: DefaultTTL - time.Millisecond},
		{name: "store error", facility: "fac-a", id: idOf, broken: true, want: errStoreDown},
	}
	for _, impl := range storeImpls {
		t.Run(impl.name, func(t *testing.T) {
			fresh := impl.start(t)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					st, clock := fresh(t), testutil.NewClock()
					s := openTestSession(t, st, clock, "enc-lookup")
					clock.Advance(tt.advance)
					if tt.broken {
						st = brokenStore{st}
					}
					got, err := NewLookup(st, clock.Now).Session(context.Background(), tt.facility, tt.id(s))
					if tt.want == nil {
						must(t, "lookup", err)
						testutil.Equal(t, "session found", s.ID, got.ID)
						return
					}
					wantErr(t, "lookup", err, tt.want)
					if tt.want != ErrNotFound && errors.Is(err, ErrNotFound) {
						t.Fatalf("a store failure reads as not found: %v", err)
					}
					testutil.Equal(t, "session returned with the error", Session{}, got)
				})
			}
		})
	}
}

func idOf(s Session) string { return s.ID }
