// Package commit files a capture session's photos into the patient's
// Medtech record: POST /api/medtech/session/commit sends each selected,
// not yet committed image to ALEX as a FHIR Media (alex.Committer), records
// each outcome on the image in the session store, announces it on the
// session's channel (image.committed, image.commit_failed) and, once every
// image of the session is filed, closes the session, deletes its temporary
// blobs and announces session.committed.
//
// A request answers within Config.Wait: images still being filed then are
// reported "committing" and go on in the background (bounded by
// Config.Timeout and the ALEX client's retry policy), reporting by events;
// POST /api/medtech/session/commit/cancel stops them (cancel.go).
//
// Re-running a commit files only what is not yet committed. Concurrent
// commits of one session, on any nodes, file each image once: see claim.go.
//
// Logging: one audit line per request (provider, facility, session id,
// counts, result, duration). Nothing logged names a patient, holds a token,
// notes, ALEX's diagnostics or image bytes.
package commit

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/alex"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/blob"
	"github.com/handoff-health/handoff/internal/session"
)

// API serves the commit endpoint.
type API struct {
	cfg      Config
	store    session.Store
	sessions *session.Lookup
	blobs    blob.Store
	hub      *hub.Hub
	alex     alex.Committer
	verifier *auth.Verifier
	images   ImageViewer
	log      zerolog.Logger
	now      func() time.Time
	// inflight holds one token per image being filed on this node.
	inflight chan struct{}
	// filing holds the images this node is filing, for cancel.
	filing *registry
	// background counts commits still running after their reply.
	background sync.WaitGroup
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
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	return &API{
		cfg:      cfg,
		store:    deps.Sessions,
		sessions: session.NewLookup(deps.Sessions, now),
		blobs:    deps.Blobs,
		hub:      deps.Hub,
		alex:     deps.ALEX,
		verifier: deps.Verifier,
		images:   deps.Images,
		log:      deps.Log,
		now:      now,
		inflight: make(chan struct{}, cfg.NodeConcurrency),
		filing:   newRegistry(),
	}, nil
}

// Register mounts POST /api/medtech/session/commit on mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/medtech/session/commit", a.serveCommit)
	mux.HandleFunc("POST /api/medtech/session/commit/cancel", a.serveCancel)
}

// Shutdown waits, until ctx ends, for commits still filing in the
// background, so a graceful stop does not cut an image off mid-record.
func (a *API) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() { a.background.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Commit files the images req selects for the desktop user c and reports
// each outcome. Bad input (unknown session or image, invalid metadata) is an
// *httpx.Error and changes nothing; any other error is a server fault.
//
// The work is detached from ctx's cancellation and bounded by
// Config.Timeout instead: a GP who closes the widget mid-commit must not
// leave images half-filed; the outcomes still reach the store and the
// channel. The reply comes within Config.Wait; images still in flight are
// reported committing and finish in the background.
func (a *API) Commit(ctx context.Context, c auth.Claims, req Request) (Reply, error) {
	start := a.now()
	reply, t, bg, err := a.commit(ctx, c, req)
	a.audit(c, req.SessionID, t, reply.Status, err, a.now().Sub(start))
	if bg != nil {
		go func() {
			<-bg.done
			_, t := bg.run.reply(bg.imgs)
			a.auditBackground(c, req.SessionID, t, a.now().Sub(start))
		}()
	}
	return reply, err
}

// backgroundRun is a commit that outlived its reply.
type backgroundRun struct {
	run  *run
	imgs []session.Image
	done chan struct{}
}

func (a *API) commit(ctx context.Context, c auth.Claims, req Request) (Reply, tally, *backgroundRun, error) {
	if err := req.check(); err != nil {
		return Reply{}, tally{}, nil, err
	}
	req.ImageIDs = slices.Compact(slices.Sorted(slices.Values(req.ImageIDs)))
	s, err := a.facilitySession(ctx, c, req.SessionID)
	if err != nil {
		return Reply{}, tally{}, nil, err
	}
	imgs, err := selectImages(s, req)
	if err != nil {
		return Reply{}, tally{}, nil, err
	}
	r := newRun(a, s, req.Metadata)
	done := make(chan struct{})
	a.background.Add(1)
	go func() {
		defer a.background.Done()
		defer close(done)
		work, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.Timeout)
		defer cancel()
		r.commitAll(work, imgs)
		fctx, fcancel := detached(work)
		defer fcancel()
		r.setSessionStatus(r.finish(fctx))
	}()
	wait := time.NewTimer(a.cfg.Wait)
	defer wait.Stop()
	var bg *backgroundRun
	select {
	case <-done:
	case <-wait.C:
		bg = &backgroundRun{run: r, imgs: imgs, done: done}
	}
	reply, t := r.reply(imgs)
	return reply, t, bg, nil
}

// facilitySession returns a live session of the caller's facility, through
// session.Lookup: another facility's session is a 404 like a missing one.
func (a *API) facilitySession(ctx context.Context, c auth.Claims, id string) (session.Session, error) {
	s, err := a.sessions.Session(ctx, c.Facility, id)
	if errors.Is(err, session.ErrNotFound) {
		return session.Session{}, errSessionNotFound
	}
	return s, err
}

// tally counts a request's outcomes for the audit line.
type tally struct {
	requested, filed, skipped, failed, inProgress int
}

// reply lists the outcomes of imgs in session order.
func (r *run) reply(imgs []session.Image) (Reply, tally) {
	r.mu.Lock()
	defer r.mu.Unlock()
	reply := Reply{SessionID: r.session.ID, SessionStatus: r.sessionStatus, Results: make([]Result, 0, len(imgs))}
	t := tally{requested: len(imgs)}
	for _, img := range imgs {
		o, ok := r.outcomes[img.ID]
		if !ok { // still being filed, in the background now
			o = outcome{Result{ImageID: img.ID, Status: CommitCommitting}, kindInProgress}
		}
		switch o.kind {
		case kindFiled:
			t.filed++
		case kindSkipped:
			t.skipped++
		case kindFailed:
			t.failed++
		case kindInProgress:
			t.inProgress++
		}
		reply.Results = append(reply.Results, o.Result)
	}
	reply.summarize()
	return reply, t
}

// touch is the time of a store write now and the expiry it gives the
// session. The monotonic reading is dropped so a claim time compares equal
// to itself after a round trip through the store.
func (a *API) touch() session.Touch {
	now := a.now().UTC().Round(0)
	return session.Touch{Now: now, Expires: now.Add(a.cfg.SessionTTL)}
}

// detached returns a context for recording outcomes: free of ctx's deadline
// and cancellation, bounded by recordTimeout.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
}
