package session

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// qrError maps session.lua's QR states to errors.
func qrError(state string) error {
	switch state {
	case "ok":
		return nil
	case "expired":
		return ErrTokenExpired
	case "superseded":
		return ErrTokenSuperseded
	case "claimed":
		return ErrTokenClaimed
	case "phones":
		return ErrTooManyPhones
	default:
		return ErrTokenNotFound
	}
}

// qrSession resolves a QR hash to its session id.
func (r *RedisStore) qrSession(ctx context.Context, qrHash string) (string, error) {
	id, err := r.c.Get(ctx, r.qrKey(qrHash)).Result()
	if errors.Is(err, redis.Nil) {
		return "", ErrTokenNotFound
	}
	if err != nil {
		return "", fmt.Errorf("session: redis get QR token: %w", err)
	}
	return id, nil
}

// PeekQR implements Store.
func (r *RedisStore) PeekQR(ctx context.Context, qrHash string, now time.Time) (string, error) {
	id, err := r.qrSession(ctx, qrHash)
	if err != nil {
		return "", err
	}
	res, err := r.run(ctx, id, "peek", now, now, qrHash)
	if err != nil {
		return "", err
	}
	return id, qrError(res[0])
}

// Claim implements Store. The mobile index is written before the claim, so
// a claimed session is always reachable by its new token; if the claim then
// fails, the index points at a session that does not name this hash and is
// ignored until it expires.
func (r *RedisStore) Claim(ctx context.Context, qrHash, mobileHash string, at Touch) (Session, error) {
	id, err := r.qrSession(ctx, qrHash)
	if err != nil {
		return Session{}, err
	}
	// The index expires with the session from the start: a node that dies
	// before the claim finishes must not leave it in Redis forever.
	if err := r.c.SetArgs(ctx, r.mobKey(mobileHash), id, redis.SetArgs{ExpireAt: at.Expires.Add(r.retain)}).Err(); err != nil {
		return Session{}, fmt.Errorf("session: redis index mobile token: %w", err)
	}
	res, err := r.run(ctx, id, "claim", at.Now, at.Expires, qrHash, mobileHash, MaxPhones)
	if err == nil {
		err = qrError(res[0])
	}
	if err != nil {
		_ = r.c.Del(ctx, r.mobKey(mobileHash)).Err()
		return Session{}, err
	}
	r.afterTouch(ctx, res, at.Expires)
	// The claim is stored and the QR code spent: a failed reread must not
	// cost the phone its token, so it is tried again before giving up.
	for attempt := 1; ; attempt++ {
		s, err := r.Get(ctx, id, at.Now)
		if err == nil || attempt == claimRereads || errors.Is(err, ErrNotFound) || ctx.Err() != nil {
			return s, err
		}
	}
}

// claimRereads is how often Claim reads the session it has just claimed.
const claimRereads = 3

// ByMobile implements Store.
func (r *RedisStore) ByMobile(ctx context.Context, mobileHash string, now time.Time) (Session, error) {
	s, active, err := r.phone(ctx, mobileHash, now, true)
	if err == nil && !active {
		err = ErrPhoneRevoked
	}
	return s, err
}

// Phone implements Store.
func (r *RedisStore) Phone(ctx context.Context, mobileHash string, now time.Time) (Session, bool, error) {
	return r.phone(ctx, mobileHash, now, false)
}

// phone resolves a mobile token hash to its session (only a live one if
// live) and whether the phone still works. The session hash is the
// authority: an index entry whose session names neither list is unknown.
func (r *RedisStore) phone(ctx context.Context, mobileHash string, now time.Time, live bool) (Session, bool, error) {
	id, err := r.c.Get(ctx, r.mobKey(mobileHash)).Result()
	if errors.Is(err, redis.Nil) {
		return Session{}, false, ErrTokenNotFound
	}
	if err != nil {
		return Session{}, false, fmt.Errorf("session: redis get mobile token: %w", err)
	}
	s, f, err := r.loadAt(ctx, id, now, live)
	if errors.Is(err, ErrNotFound) {
		return Session{}, false, ErrTokenNotFound
	}
	if err != nil {
		return Session{}, false, err
	}
	switch {
	case slices.Contains(strings.Fields(f["mob"]), mobileHash):
		return s, true, nil
	case slices.Contains(strings.Fields(f["rev"]), mobileHash):
		return s, false, nil
	}
	return Session{}, false, ErrTokenNotFound
}

// RevokePhone implements Store.
func (r *RedisStore) RevokePhone(ctx context.Context, id, mobileHash string, now time.Time) error {
	res, err := r.run(ctx, id, "revoke", now, now, mobileHash)
	if err != nil {
		return err
	}
	switch res[0] {
	case "ok":
		return nil
	case "unknown":
		return ErrTokenNotFound
	}
	return ErrNotFound
}

// ProviderSession implements Store.
func (r *RedisStore) ProviderSession(ctx context.Context, facility, provider string) (string, error) {
	id, err := r.c.Get(ctx, r.provKey(encounterSuffix(facility, "provider\x00"+provider))).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("session: redis get provider's session: %w", err)
	}
	return id, nil
}

// markProvider records s as its provider's latest session. It is best
// effort, after the session is stored: a lost write only delays a phone
// of the provider's previous session learning that the desktop moved on.
func (r *RedisStore) markProvider(ctx context.Context, s Session) {
	until := s.Deadline
	if until.IsZero() {
		until = s.ExpiresAt
	}
	key := r.provKey(encounterSuffix(s.Facility, "provider\x00"+s.ProviderID))
	_ = r.c.SetArgs(ctx, key, s.ID, redis.SetArgs{ExpireAt: until.Add(r.retain)}).Err()
}
