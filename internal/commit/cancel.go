package commit

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"

	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/httpx"
)

// errCancelledByGP is the cause of an image's context when the desktop
// cancelled its filing.
var errCancelledByGP = errors.New("commit: filing cancelled by the desktop")

// cancelled reports whether ctx ended because the desktop cancelled it.
func cancelled(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), errCancelledByGP)
}

// registry is the images this node is filing, each with the cancel of its
// context. Cancel reaches only this node's filings: in a multi-node
// deployment a cancel that lands on another node finds nothing, and the
// filing ends by itself within Config.Timeout (docs/api.md says so).
type registry struct {
	mu     sync.Mutex
	cancel map[string][]context.CancelCauseFunc
}

func newRegistry() *registry {
	return &registry{cancel: make(map[string][]context.CancelCauseFunc)}
}

func filingKey(sessionID, imageID string) string { return sessionID + "/" + imageID }

// add derives a cancellable context for filing one image and registers it;
// stop unregisters it and releases the context.
func (g *registry) add(ctx context.Context, sessionID, imageID string) (context.Context, func()) {
	ictx, cancel := context.WithCancelCause(ctx)
	k := filingKey(sessionID, imageID)
	g.mu.Lock()
	g.cancel[k] = append(g.cancel[k], cancel)
	n := len(g.cancel[k]) - 1
	g.mu.Unlock()
	return ictx, func() {
		g.mu.Lock()
		list := g.cancel[k]
		list[n] = nil
		if !slices.ContainsFunc(list, func(c context.CancelCauseFunc) bool { return c != nil }) {
			delete(g.cancel, k)
		}
		g.mu.Unlock()
		cancel(nil)
	}
}

// stop cancels the filing of one image, if this node is filing it.
func (g *registry) stop(sessionID, imageID string) bool {
	g.mu.Lock()
	list := g.cancel[filingKey(sessionID, imageID)]
	g.mu.Unlock()
	found := false
	for _, c := range list {
		if c != nil {
			c(errCancelledByGP)
			found = true
		}
	}
	return found
}

// CancelRequest is the body of POST /api/medtech/session/commit/cancel.
type CancelRequest struct {
	SessionID string `json:"sessionId"`
	// ImageIDs selects the images whose filing stops; absent or empty
	// means every image of the session.
	ImageIDs []string `json:"imageIds,omitempty"`
}

// CancelReply says which filings stopped. An image in Cancelled reports
// image.commit_failed with code commit_cancelled (or image.committed, if
// its attempt had already landed). NotRunning lists selected images this
// node was not filing: already filed or failed, never started, or being
// filed by another node.
type CancelReply struct {
	SessionID  string   `json:"sessionId"`
	Cancelled  []string `json:"cancelled"`
	NotRunning []string `json:"notRunning"`
}

// Cancel stops the background filing of the images req selects.
func (a *API) Cancel(ctx context.Context, c auth.Claims, req CancelRequest) (CancelReply, error) {
	if req.SessionID == "" {
		return CancelReply{}, httpx.Errorf(http.StatusBadRequest, "invalid_field", "sessionId is required")
	}
	s, err := a.facilitySession(ctx, c, req.SessionID)
	if err != nil {
		return CancelReply{}, err
	}
	ids := slices.Compact(slices.Sorted(slices.Values(req.ImageIDs)))
	for _, id := range ids {
		if _, ok := s.Image(id); !ok {
			return CancelReply{}, errImageNotFound
		}
	}
	if len(ids) == 0 {
		for _, img := range s.Images {
			ids = append(ids, img.ID)
		}
	}
	reply := CancelReply{SessionID: s.ID, Cancelled: []string{}, NotRunning: []string{}}
	for _, id := range ids {
		if a.filing.stop(s.ID, id) {
			reply.Cancelled = append(reply.Cancelled, id)
		} else {
			reply.NotRunning = append(reply.NotRunning, id)
		}
	}
	a.log.Info().Str("audit", "commit_cancel").Str("provider", c.Provider).Str("facility", c.Facility).
		Str("session", s.ID).Int("cancelled", len(reply.Cancelled)).Int("not_running", len(reply.NotRunning)).
		Msg("commit cancel")
	return reply, nil
}

// serveCancel is POST /api/medtech/session/commit/cancel.
func (a *API) serveCancel(w http.ResponseWriter, r *http.Request) {
	c, err := a.desktop(r)
	var req CancelRequest
	if err == nil {
		err = httpx.DecodeJSON(w, r, &req, maxBody)
	}
	var reply CancelReply
	if err == nil {
		reply, err = a.Cancel(r.Context(), c, req)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, reply)
}
