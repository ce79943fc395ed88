// Package capture is the capture-session API: a desktop creates a session
// and shows its QR code, a phone claims it and uploads photos straight to the
// blob store, and every change is published on the session's hub channel
// ("session:{id}") for the desktop to see live. It is the HTTP layer only:
// the session itself (model, stores, the tenant rule) is package session.
//
// Who may do what:
//   - desktop calls carry the host application's JWT; a session belongs to
//     the JWT's facility and is 404 to every other facility (session.Lookup);
//   - the phone's only credential is the mobile token it gets by claiming a
//     QR token; it reaches that one session and nothing else;
//   - tokens are never stored (only SHA-256 hashes) and never logged; log
//     lines name sessions and images by id only, never patient data.
package capture

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/blob"
	"github.com/handoff-health/handoff/internal/httpx"
	"github.com/handoff-health/handoff/internal/session"
)

// Event types published on a session's channel.
const (
	EventMobileConnected = "mobile.connected"
	EventMobileRejected  = "mobile.rejected"
	EventImageAdded      = "image.added"
	EventImageRemoved    = "image.removed"
	EventSessionExpired  = "session.expired"
)

// Errors returned by Authorize; the realtime transport maps them to its
// "forbidden" and "not found" replies.
var (
	ErrChannelForbidden = errors.New("capture: channel is not a capture session channel")
	ErrChannelNotFound  = errors.New("capture: no such session for this facility")
)

// sideEffectTimeout bounds the publishes and blob deletions that follow a
// stored change; they run detached from the request so a phone that hangs
// up right after its upload still gets its image announced.
const sideEffectTimeout = 10 * time.Second

// API serves the capture-session endpoints.
type API struct {
	cfg      Config
	hub      *hub.Hub
	store    session.Store
	sessions *session.Lookup
	blobs    blob.Store
	verifier *auth.Verifier
	log      zerolog.Logger
	now      func() time.Time
	claims   *addrLimiter
}

// New checks cfg and deps and returns the API.
func New(cfg Config, deps Deps) (*API, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := deps.check(); err != nil {
		return nil, err
	}
	if qrDebugSet() {
		return nil, errors.New("capture: " + qrDebugEnv + " is set; the QR library would log token bytes, unset it")
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	return &API{
		cfg:      cfg,
		hub:      deps.Hub,
		store:    deps.Sessions,
		sessions: session.NewLookup(deps.Sessions, now),
		blobs:    deps.Blobs,
		verifier: deps.Verifier,
		log:      deps.Log,
		now:      now,
		claims:   newAddrLimiter(cfg.ClaimsPerMinute, cfg.ClaimBurst),
	}, nil
}

// Register mounts the endpoints on mux (Go 1.22 method + path patterns).
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/medtech/session/tokens", a.create)
	mux.HandleFunc("GET /api/medtech/session/tokens/{token}", a.claim)
	mux.HandleFunc("GET /api/medtech/session/tokens/{token}/qr.svg", a.qr)
	mux.HandleFunc("POST /api/medtech/session/presigned-url", a.presign)
	mux.HandleFunc("POST /api/medtech/session/images", a.register)
	mux.HandleFunc("GET /api/medtech/session/mobile", a.mobileView)
	mux.HandleFunc("POST /api/medtech/session/mobile/reject", a.mobileReject)
	mux.HandleFunc("GET /api/medtech/session/{sessionId}", a.snapshot)
	mux.HandleFunc("DELETE /api/medtech/session/{sessionId}/images/{imageId}", a.deleteImage)
	mux.HandleFunc("PATCH /api/medtech/session/{sessionId}/images/{imageId}", a.patchImage)
	mux.HandleFunc("GET /api/openapi.yaml", serveOpenAPI)
}

// Ready reports whether the session store and the blob store are reachable.
func (a *API) Ready(ctx context.Context) error {
	if err := a.store.Ping(ctx); err != nil {
		return err
	}
	return a.blobs.Ping(ctx)
}

// Authorize is the realtime socket's hook: a desktop may subscribe to
// "session:{id}" only if session.Lookup finds the session for its facility.
// Other channels are not the capture API's to grant (ErrChannelForbidden).
// A store that cannot answer is httpx.ErrUnavailable, which the socket
// sends as "unavailable" and clients retry.
func (a *API) Authorize(ctx context.Context, claims auth.Claims, channel string) error {
	id, ok := strings.CutPrefix(channel, session.ChannelPrefix)
	if !ok {
		return ErrChannelForbidden
	}
	_, err := a.sessions.Session(ctx, claims.Facility, id)
	switch {
	case errors.Is(err, session.ErrNotFound):
		return ErrChannelNotFound
	case err != nil:
		// Lookup returns nothing else but an outage: the subscriber is
		// told to retry, never that its session is gone.
		return httpx.Unavailable(err)
	}
	return nil
}

// Touch returns the time of a write now and the session expiry it grants,
// for this API's Store writes. Times are cut to milliseconds,
// the precision the Redis store keeps, so both stores return equal times.
func (a *API) Touch() session.Touch {
	now := a.now().UTC().Truncate(time.Millisecond)
	return session.Touch{Now: now, Expires: now.Add(a.cfg.SessionTTL)}
}

// desktop authenticates a desktop call.
func (a *API) desktop(r *http.Request) (auth.Claims, error) { return a.verifier.Desktop(r) }

// facilitySession returns a live session of the caller's facility, through
// session.Lookup: another facility's session is a 404 like a missing one.
func (a *API) facilitySession(ctx context.Context, c auth.Claims, id string) (session.Session, error) {
	s, err := a.sessions.Session(ctx, c.Facility, id)
	return s, apiError(err)
}

// phone authenticates a phone call by its mobile token.
func (a *API) phone(r *http.Request) (session.Session, error) {
	tok := auth.BearerToken(r)
	if tok == "" {
		return session.Session{}, httpx.Errorf(http.StatusUnauthorized, "unauthorized", "a mobile token is required")
	}
	if !tokenShape(tok, mobileTokenBytes) {
		return session.Session{}, errBadMobileToken
	}
	s, err := a.store.ByMobile(r.Context(), session.HashToken(tok), a.now())
	if errors.Is(err, session.ErrTokenNotFound) {
		return session.Session{}, errBadMobileToken
	}
	if errors.Is(err, session.ErrPhoneRevoked) {
		return session.Session{}, errPhoneRevoked
	}
	return s, apiError(err)
}

var (
	// errPhoneRevoked answers every call of a phone that said "not this
	// patient", or was otherwise disconnected: final, unlike a token that
	// may just be mistyped.
	errPhoneRevoked = httpx.Errorf(http.StatusGone, "phone_revoked",
		"this phone has been disconnected from the photo session; scan a new code on the desktop to connect again")
	errSessionNotFound = httpx.Errorf(http.StatusNotFound, "session_not_found", "no such capture session")
	errBadMobileToken  = httpx.Errorf(http.StatusUnauthorized, "invalid_token",
		"the mobile token is not valid; the session may have ended or been claimed by another phone")
)

// apiError maps session errors (Store errors and broken model rules) to API
// errors; anything else stays an internal error (a 500 whose cause is
// logged, not shown).
func apiError(err error) error {
	var invalidErr *session.InvalidError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &invalidErr):
		// Its text names the field and rule, never the value: safe to show.
		return invalid("%s", invalidErr.Error())
	case errors.Is(err, session.ErrNotFound):
		return errSessionNotFound
	case errors.Is(err, session.ErrClosed):
		return httpx.Errorf(http.StatusConflict, "session_closed", "the session no longer accepts images")
	case errors.Is(err, session.ErrPatientMismatch):
		return httpx.Errorf(http.StatusConflict, "patient_mismatch",
			"this encounter already has an open capture session for another patient")
	case errors.Is(err, session.ErrTokenNotFound):
		return httpx.Errorf(http.StatusNotFound, "token_not_found", "no such QR code")
	case errors.Is(err, session.ErrTokenExpired):
		return httpx.Errorf(http.StatusGone, "token_expired", "this QR code has expired; ask for a new one")
	case errors.Is(err, session.ErrTokenClaimed):
		return httpx.Errorf(http.StatusGone, "token_claimed", "this QR code has already been used")
	case errors.Is(err, session.ErrTooManyPhones):
		return httpx.Errorf(http.StatusConflict, "too_many_phones",
			"this photo session already has its maximum number of phones connected")
	case errors.Is(err, session.ErrTokenSuperseded):
		return httpx.Errorf(http.StatusGone, "token_superseded", "this QR code was replaced by a newer one")
	case errors.Is(err, session.ErrImageExists):
		return httpx.Errorf(http.StatusConflict, "image_exists", "an image with this imageId is already registered")
	case errors.Is(err, session.ErrImageNotFound):
		return httpx.Errorf(http.StatusNotFound, "image_not_found", "no such image in this session")
	case errors.Is(err, session.ErrTooManyImages):
		return httpx.Errorf(http.StatusConflict, "too_many_images", "the session already has its maximum number of images")
	case errors.Is(err, session.ErrQuotaExceeded):
		return httpx.Errorf(http.StatusConflict, "quota_exceeded",
			"the session has used its storage quota; delete a photo, or wait a few minutes for unfinished uploads to be cleared")
	case errors.Is(err, session.ErrTooManySessions):
		return httpx.Errorf(http.StatusTooManyRequests, "too_many_open_sessions",
			"this practice has its maximum number of open capture sessions; commit some, or wait for idle ones to expire")
	case errors.Is(err, session.ErrImageCommitting):
		return httpx.Errorf(http.StatusConflict, "image_committing", "the image is being filed to the patient record right now")
	case errors.Is(err, session.ErrImageCommitted):
		return httpx.Errorf(http.StatusConflict, "image_committed", "the image has already been filed to the patient record")
	}
	return err
}

// fail writes err. Internal errors are logged with the route template only:
// store and blob errors name ids, never tokens or patient data.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpx.Error
	if !errors.As(err, &he) {
		a.log.Error().Err(err).Str("route", r.Pattern).Msg("capture request failed")
	} else if he.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	httpx.WriteError(w, err)
}

// detached returns a context for work that must finish even if the client
// hangs up once its change is stored.
func detached(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), sideEffectTimeout)
}

// publish announces a stored change on the session's channel through
// hub.Announce. An error means the event is not in history yet: the hub
// keeps it and republishes it until it is, and the caller answers 503
// unavailable instead of success, so its client retries (every announcing
// request is idempotent or re-readable) rather than trusting an
// announcement that may only exist in this node's memory. See
// docs/reliability.md, "A stored change is announced".
func (a *API) publish(ctx context.Context, sessionID, typ string, data any) error {
	b, err := json.Marshal(data)
	if err == nil {
		_, err = a.hub.Announce(ctx, session.Channel(sessionID), hub.Publication{Type: typ, Data: b})
	}
	if err != nil {
		a.log.Warn().Err(err).Str("session", sessionID).Str("event", typ).Msg("capture event not published yet; kept for republishing")
	}
	return err
}

// reannounce publishes image.added again for a register retried after an
// answer the phone did not get or was told 503: the first attempt's event
// may be kept only in the memory of a node that has since died. It does so
// only when the channel's history holds no image.added of this image, so a
// retry after a delivered event adds nothing. (An event from before a
// Redis data loss is gone from history too; the desktop then gets it
// again, which it applies idempotently, after its resync.)
func (a *API) reannounce(ctx context.Context, sessionID string, view session.ImageView) error {
	evs, _, err := a.hub.History(ctx, session.Channel(sessionID), hub.Cursor{})
	if err != nil && !errors.Is(err, hub.ErrUnrecoverable) {
		return err
	}
	for _, ev := range evs {
		var seen struct {
			ID string `json:"id"`
		}
		if ev.Type == EventImageAdded && json.Unmarshal(ev.Data, &seen) == nil && seen.ID == view.ID {
			return nil
		}
	}
	return a.publish(ctx, sessionID, EventImageAdded, view)
}

// deleteBlob removes an object the API refused or removed; a failure only
// delays the deletion until the session's sweep.
func (a *API) deleteBlob(ctx context.Context, sessionID, key string) {
	if err := a.blobs.Delete(ctx, key); err != nil {
		a.log.Warn().Err(err).Str("session", sessionID).Msg("blob not deleted; the session sweep will remove it")
	}
}
