package session

import (
	"context"
	"errors"
	"fmt"
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
	res, err := r.run(ctx, id, "claim", at.Now, at.Expires, qrHash, mobileHash)
	if err == nil {
		err = qrError(res[0])
	}
	if err != nil {
		_ = r.c.Del(ctx, r.mobKey(mobileHash)).Err()
		return Session{}, err
	}
	r.afterTouch(ctx, res, at.Expires)
	if len(res) > 3 && res[3] != "" {
		_ = r.c.Del(ctx, r.mobKey(res[3])).Err()
	}
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
	id, err := r.c.Get(ctx, r.mobKey(mobileHash)).Result()
	if errors.Is(err, redis.Nil) {
		return Session{}, ErrTokenNotFound
	}
	if err != nil {
		return Session{}, fmt.Errorf("session: redis get mobile token: %w", err)
	}
	s, f, err := r.load(ctx, id, now)
	if errors.Is(err, ErrNotFound) || (err == nil && f["mob"] != mobileHash) {
		return Session{}, ErrTokenNotFound
	}
	return s, err
}
