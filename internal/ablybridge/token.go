package ablybridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ably/ably-go/ably"

	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/httpx"
)

// tokenBodyLimit bounds the token request body: {"sessionId": "<uuid>"}.
const tokenBodyLimit = 4 << 10

// maxSessionIDLen bounds a session id in a token request (a UUID is 36).
const maxSessionIDLen = 128

type tokenRequestBody struct {
	SessionID string `json:"sessionId"`
}

// TokenHandler serves POST /api/medtech/session/ably-token: a desktop
// holding a valid JWT gets an Ably TokenRequest, signed here with key,
// that lets it subscribe to its session's Ably channel and nothing else.
// The desktop's ably-js exchanges it with Ably for a token; the key secret
// never leaves the server.
//
// authorize maps the caller and session to the session's Ably channel
// (handoff's: session.Lookup for c.Facility, then Bridge.AblyChannel); the
// handler itself checks no tenancy. It returns an error wrapping
// ErrUnknownSession for a session that does not exist or is another
// facility's (404), or an *httpx.Error to answer with. ttl is the token lifetime; zero means
// DefaultTokenTTL.
func TokenHandler(key string, verifier *auth.Verifier, authorize func(ctx context.Context, c auth.Claims, sessionID string) (ablyChannel string, err error), ttl time.Duration) (http.Handler, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if verifier == nil || authorize == nil {
		return nil, errors.New("ably: TokenHandler needs a verifier and an authorize function")
	}
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	if ttl > MaxTokenTTL {
		return nil, fmt.Errorf("ably: token TTL %v exceeds Ably's maximum of %v", ttl, MaxTokenTTL)
	}
	// The client only signs locally: CreateTokenRequest makes no request.
	rest, err := ably.NewREST(ably.WithKey(key), ably.WithLogLevel(ably.LogNone))
	if err != nil {
		return nil, fmt.Errorf("ably: token signer: %w", err)
	}
	return &tokenHandler{rest: rest, verifier: verifier, authorize: authorize, ttl: ttl}, nil
}

type tokenHandler struct {
	rest      *ably.REST
	verifier  *auth.Verifier
	authorize func(ctx context.Context, c auth.Claims, sessionID string) (string, error)
	ttl       time.Duration
}

func (h *tokenHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tr, err := h.serve(w, r)
	if err != nil {
		if e := (*httpx.Error)(nil); errors.As(err, &e) && e.Status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="handoff"`)
		}
		httpx.WriteError(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, tr)
}

// serve authenticates the desktop first, so a caller without a valid JWT
// learns nothing about sessions, then validates the body and signs.
func (h *tokenHandler) serve(w http.ResponseWriter, r *http.Request) (*ably.TokenRequest, error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, httpx.Errorf(http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
	}
	claims, err := h.verifier.Desktop(r)
	if err != nil {
		return nil, err
	}
	var body tokenRequestBody
	if err := httpx.DecodeJSON(w, r, &body, tokenBodyLimit); err != nil {
		return nil, err
	}
	id := strings.TrimSpace(body.SessionID)
	if id == "" || len(id) > maxSessionIDLen {
		return nil, httpx.Errorf(http.StatusBadRequest, "invalid_session_id", "sessionId is required")
	}
	channel, err := h.authorize(r.Context(), claims, id)
	switch e := (*httpx.Error)(nil); {
	case errors.Is(err, ErrUnknownSession):
		return nil, httpx.Errorf(http.StatusNotFound, "session_not_found", "no such capture session")
	case errors.As(err, &e):
		return nil, e
	case err != nil:
		return nil, fmt.Errorf("ably token: authorize: %w", err)
	}
	if channel == "" || strings.ContainsAny(channel, "*") || strings.HasPrefix(channel, "[") {
		// A wildcard or qualifier would grant more than this one channel.
		return nil, fmt.Errorf("ably token: authorize returned an unusable channel name")
	}
	capability, err := json.Marshal(map[string][]string{channel: {"subscribe"}})
	if err != nil {
		return nil, err
	}
	return h.rest.Auth.CreateTokenRequest(&ably.TokenParams{
		TTL:        h.ttl.Milliseconds(),
		Capability: string(capability),
	})
}
