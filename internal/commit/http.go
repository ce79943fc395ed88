package commit

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/httpx"
	"github.com/handoff-health/handoff/internal/session"
)

// serveCommit is POST /api/medtech/session/commit.
func (a *API) serveCommit(w http.ResponseWriter, r *http.Request) {
	start := a.now()
	c, err := a.desktop(r)
	var req Request
	if err == nil {
		req, err = decodeRequest(w, r)
	}
	if err != nil {
		// Refused before reaching Commit, which audits everything else.
		a.audit(c, "", tally{}, "", err, a.now().Sub(start))
		writeError(w, err)
		return
	}
	reply, err := a.Commit(r.Context(), c, req)
	if err != nil {
		writeError(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, reply)
}

// decodeRequest reads the body strictly. Metadata entries are decoded
// one by one after the body, so a bad entry gets its own message rather
// than httpx's generic "could not be decoded".
func decodeRequest(w http.ResponseWriter, r *http.Request) (Request, error) {
	var wire struct {
		SessionID string                     `json:"sessionId"`
		ImageIDs  []string                   `json:"imageIds"`
		Metadata  map[string]json.RawMessage `json:"metadata"`
	}
	if err := httpx.DecodeJSON(w, r, &wire, maxBody); err != nil {
		return Request{}, err
	}
	req := Request{SessionID: wire.SessionID, ImageIDs: wire.ImageIDs}
	for id, raw := range wire.Metadata {
		var o MetadataOverride
		if err := json.Unmarshal(raw, &o); err != nil {
			return Request{}, err
		}
		if req.Metadata == nil {
			req.Metadata = make(map[string]MetadataOverride, len(wire.Metadata))
		}
		req.Metadata[id] = o
	}
	return req, nil
}

// desktop authenticates a desktop call.
func (a *API) desktop(r *http.Request) (auth.Claims, error) { return a.verifier.Desktop(r) }

func writeError(w http.ResponseWriter, err error) {
	var he *httpx.Error
	if errors.As(err, &he) && he.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	httpx.WriteError(w, err)
}

// audit writes the request's one log line. It names who committed what
// session and how it went, by ids and counts only: the session id is logged
// only if it has the shape of one, since a client could send anything there.
func (a *API) audit(c auth.Claims, sessionID string, t tally, result string, err error, d time.Duration) {
	ev := a.log.Info()
	var he *httpx.Error
	switch {
	case errors.As(err, &he):
		result = "rejected"
		ev = ev.Int("status", he.Status).Str("code", he.Code)
	case err != nil:
		// Store and blob errors name ids only, never patient data.
		result = "error"
		ev = a.log.Error().Err(err)
	}
	if c.Provider != "" {
		ev = ev.Str("provider", c.Provider).Str("facility", c.Facility)
	}
	auditLine(ev, "commit", sessionID, t, result, d, "commit")
}

// auditLine finishes an audit line: the session (only if it has the shape
// of one, since a client could send anything there), the counts, the
// result and the duration. Ids and counts only, never patient data.
func auditLine(ev *zerolog.Event, kind, sessionID string, t tally, result string, d time.Duration, msg string) {
	if session.ValidID(sessionID) {
		ev = ev.Str("session", sessionID)
	}
	ev.Str("audit", kind).
		Int("requested", t.requested).
		Int("committed", t.filed).
		Int("failed", t.failed).
		Int("skipped", t.skipped).
		Int("in_progress", t.inProgress).
		Str("result", result).
		Dur("duration_ms", d).
		Msg(msg)
}

// auditBackground writes the line of a commit that finished after its
// reply: its final counts, by ids and counts only, like audit.
func (a *API) auditBackground(c auth.Claims, sessionID string, t tally, d time.Duration) {
	result := "committed"
	switch {
	case t.filed+t.skipped == 0:
		result = "failed"
	case t.failed > 0 || t.inProgress > 0:
		result = "partial"
	}
	ev := a.log.Info().Str("provider", c.Provider).Str("facility", c.Facility)
	auditLine(ev, "commit_background", sessionID, t, result, d, "commit finished in the background")
}
