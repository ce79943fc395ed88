package session

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Lookup answers the one question every entry point asks before acting on a
// session a caller names: "is this a live session of the caller's
// facility?" It is the product's tenant rule, and the only code that
// compares a session's Facility with a caller's.
//
// A malformed id, a session that is missing or expired, and another
// facility's session all get the same ErrNotFound, so a caller cannot learn
// that a session exists elsewhere. Any other store error is an outage, not
// an answer: it is returned wrapped, never as ErrNotFound.
type Lookup struct {
	store Store
	now   func() time.Time
}

// NewLookup returns a Lookup over store whose expiry checks use now (nil:
// time.Now).
func NewLookup(store Store, now func() time.Time) *Lookup {
	if now == nil {
		now = time.Now
	}
	return &Lookup{store: store, now: now}
}

// Session returns the live session id if it belongs to facility; see
// Lookup for the errors.
func (l *Lookup) Session(ctx context.Context, facility, id string) (Session, error) {
	if !ValidID(id) {
		return Session{}, ErrNotFound
	}
	s, err := l.store.Get(ctx, id, l.now())
	switch {
	case errors.Is(err, ErrNotFound):
		return Session{}, ErrNotFound
	case err != nil:
		return Session{}, fmt.Errorf("session: look up %s: %w", id, err)
	case facility == "" || s.Facility != facility:
		// Another facility's session is answered exactly like a missing one.
		// An empty facility (verified callers always have one) matches none.
		return Session{}, ErrNotFound
	}
	return s, nil
}
