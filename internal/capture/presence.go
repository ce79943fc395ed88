package capture

import (
	"context"
	"errors"
	"time"

	"github.com/handoff-health/handoff/internal/httpx"
	"github.com/handoff-health/handoff/internal/session"
)

// ErrUnknownPhone answers PhoneSocket for a mobile token that names no
// live phone: never issued, revoked ("wrong patient"), or its session gone.
var ErrUnknownPhone = errors.New("capture: unknown or revoked mobile token")

// PhoneSocket is the realtime socket's hook for a phone's mobile token: the
// session channel the phone may be present on, its presence clientId, and
// when the session expires (the socket checks the token again then).
//
// The clientId is "phone:" and 12 hex digits of a hash of the token's
// hash: the same for every socket of one phone, different for each phone,
// and derived from nothing about the patient or the session. A store that
// cannot answer is an outage (httpx.IsUnavailable), which the socket
// closes with 1011 for the phone to retry.
func (a *API) PhoneSocket(ctx context.Context, token string) (channel, clientID string, expires time.Time, err error) {
	if !tokenShape(token, mobileTokenBytes) {
		return "", "", time.Time{}, ErrUnknownPhone
	}
	hash := session.HashToken(token)
	s, err := a.store.ByMobile(ctx, hash, a.now())
	switch {
	case errors.Is(err, session.ErrTokenNotFound), errors.Is(err, session.ErrPhoneRevoked), errors.Is(err, session.ErrNotFound):
		return "", "", time.Time{}, ErrUnknownPhone
	case err != nil:
		return "", "", time.Time{}, httpx.Unavailable(err)
	}
	expires = s.ExpiresAt
	if expires.IsZero() {
		expires = a.now().Add(a.cfg.SessionTTL)
	}
	return s.Channel(), "phone:" + session.HashToken("presence:" + hash)[:12], expires, nil
}
