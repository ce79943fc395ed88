package capture

import (
	"errors"
	"net/http"
	"time"

	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/httpx"
	"github.com/handoff-health/handoff/internal/session"
)

// Statuses of a session as its phone sees them (mobileViewReply.Status):
// the session's own status, or phoneClosed when the GP's desktop has since
// opened a session for another encounter. The session itself stays open
// for the desktop to come back to; only the phone is told to stop, so it
// never claims its photos are "on the GP's desktop now" while the desktop
// shows another patient.
const phoneClosed = "closed"

// mobileView answers the phone's status check: which session and patient
// it is connected to, whether that session still takes photos, and how
// many more. A revoked phone gets 410 phone_revoked; a session removed
// after its expiry, 401 invalid_token.
func (a *API) mobileView(w http.ResponseWriter, r *http.Request) {
	s, err := a.phoneStatus(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	status := string(s.Status)
	if s.Status == session.StatusOpen {
		moved, err := a.desktopMovedOn(r, s)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if moved {
			status = phoneClosed
		}
	}
	now := a.now()
	reply := mobileViewReply{
		SessionID:      s.ID,
		Status:         status,
		PatientDisplay: s.PatientDisplay,
		PatientNHI:     s.PatientNHI,
		PatientDOB:     s.PatientDOB,
		ImageCount:     len(s.Images),
		MaxImages:      s.MaxImages,
		ExpiresAt:      s.ExpiresAt.UTC(),
		PhoneActive:    status == string(session.StatusOpen),
	}
	if reply.PhoneActive {
		reply.Remaining = s.Remaining(now)
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, reply)
}

// phoneStatus authenticates the phone like phone does, but also finds a
// session past its expiry that the sweeper has not removed yet (status
// expired). A revoked phone is errPhoneRevoked.
func (a *API) phoneStatus(r *http.Request) (session.Session, error) {
	tok := auth.BearerToken(r)
	if tok == "" {
		return session.Session{}, httpx.Errorf(http.StatusUnauthorized, "unauthorized", "a mobile token is required")
	}
	if !tokenShape(tok, mobileTokenBytes) {
		return session.Session{}, errBadMobileToken
	}
	s, active, err := a.store.Phone(r.Context(), session.HashToken(tok), a.now())
	switch {
	case errors.Is(err, session.ErrTokenNotFound):
		return session.Session{}, errBadMobileToken
	case err != nil:
		return session.Session{}, err
	case !active:
		return session.Session{}, errPhoneRevoked
	}
	return s, nil
}

// desktopMovedOn reports whether the provider who opened s has since
// opened or reopened a session for another encounter: the GP's desktop
// now shows another patient.
func (a *API) desktopMovedOn(r *http.Request, s session.Session) (bool, error) {
	if s.ProviderID == "" {
		return false, nil
	}
	cur, err := a.store.ProviderSession(r.Context(), s.Facility, s.ProviderID)
	return cur != "" && cur != s.ID, err
}

// mobileReject is the phone's "this is not the patient": it disconnects
// that phone for good (its token is revoked, so nothing more can be sent
// from it) and tells the desktop at once with mobile.rejected. Saying it
// twice is not an error.
func (a *API) mobileReject(w http.ResponseWriter, r *http.Request) {
	s, err := a.phoneStatus(r)
	if errors.Is(err, errPhoneRevoked) {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// The body is optional, but any body sent (chunked too) must be an
	// empty JSON object, refused before the phone is disconnected.
	if r.ContentLength != 0 && r.Body != http.NoBody {
		if err := httpx.DecodeJSON(w, r, &struct{}{}, maxBody); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	now := a.now().UTC()
	if err := a.store.RevokePhone(r.Context(), s.ID, session.HashToken(auth.BearerToken(r)), now); err != nil {
		a.fail(w, r, apiError(err))
		return
	}
	ctx, cancel := detached(r)
	defer cancel()
	if err := a.publish(ctx, s.ID, EventMobileRejected, mobileRejectedEvent{SessionID: s.ID, At: now.Truncate(time.Millisecond)}); err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info().Str("session", s.ID).Msg("phone said wrong patient; phone disconnected")
	w.WriteHeader(http.StatusNoContent)
}
