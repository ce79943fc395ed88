package commit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/handoff-health/handoff/internal/alex"
	"github.com/handoff-health/handoff/internal/session"
)

// run is one commit request at work: the session as loaded, the desktop's
// overrides and, as images finish, their outcomes.
type run struct {
	a         *API
	session   session.Session
	overrides map[string]MetadataOverride

	mu       sync.Mutex
	outcomes map[string]outcome
	// aborted is set by a failure every image would meet (see abortsAll):
	// the images not yet sent fail with it instead of being sent.
	aborted *ErrorInfo
	// sessionStatus is the session's status for the reply: as loaded, then
	// as finish left it.
	sessionStatus session.Status
}

// outcome is an image's Result and how this request came by it.
type outcome struct {
	Result
	kind outcomeKind
}

type outcomeKind int

const (
	kindFiled      outcomeKind = iota // filed by this request
	kindSkipped                       // committed already, or by a concurrent request
	kindFailed                        // not filed; see Result.Error
	kindInProgress                    // still claimed by a concurrent request at the deadline
)

func newRun(a *API, s session.Session, overrides map[string]MetadataOverride) *run {
	return &run{a: a, session: s, overrides: overrides, outcomes: make(map[string]outcome), sessionStatus: s.Status}
}

func (r *run) setSessionStatus(st session.Status) {
	r.mu.Lock()
	r.sessionStatus = st
	r.mu.Unlock()
}

func (r *run) set(id string, o outcome) {
	o.ImageID = id
	r.mu.Lock()
	r.outcomes[id] = o
	r.mu.Unlock()
}

func (r *run) fail(id string, f ErrorInfo) {
	r.set(id, outcome{Result{Status: session.CommitFailed, Error: &f}, kindFailed})
}

func (r *run) skip(img session.Image) {
	r.set(img.ID, outcome{Result{Status: session.CommitCommitted, AlexID: img.Commit.AlexID}, kindSkipped})
}

func (r *run) abort(f ErrorInfo) {
	r.mu.Lock()
	if r.aborted == nil {
		r.aborted = &f
	}
	r.mu.Unlock()
}

func (r *run) abortedWith() *ErrorInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.aborted
}

// commitAll files imgs: first those it can claim, then, as their claims
// end, those a concurrent request was filing, until ctx ends.
func (r *run) commitAll(ctx context.Context, imgs []session.Image) {
	busy := r.claimAndFile(ctx, imgs)
	r.awaitOthers(ctx, busy)
}

// claimAndFile claims each image (session order) and files the claimed ones,
// Concurrency at a time. It returns the ids claimed by another request.
func (r *run) claimAndFile(ctx context.Context, imgs []session.Image) (busy []string) {
	var mine []session.Image
	at := r.a.touch()
	// Claims are written detached from ctx's deadline, so a deadline cannot
	// cut one off after the store took it; none is started once it passed.
	sctx, cancel := detached(ctx)
	defer cancel()
	for _, img := range imgs {
		var o *MetadataOverride
		if m, ok := r.overrides[img.ID]; ok {
			o = &m
		}
		if ctx.Err() != nil {
			r.fail(img.ID, errTimedOut)
			continue
		}
		got, state, err := r.a.claim(sctx, r.session.ID, img.ID, o, at)
		switch {
		case err != nil:
			r.fail(img.ID, storeFailure(err))
		case state == alreadyCommitted:
			r.skip(got)
		case state == claimedElsewhere:
			busy = append(busy, img.ID)
		default:
			mine = append(mine, got)
		}
	}
	// Every claimed image is cancellable from now on, queued or sent, and
	// its claim is renewed until its outcome is recorded.
	rn := r.renewClaims(mine)
	defer rn.close()
	ctxs := make([]context.Context, len(mine))
	for i, img := range mine {
		var stop func()
		ctxs[i], stop = r.a.filing.add(ctx, r.session.ID, img.ID)
		defer stop()
	}
	sem := make(chan struct{}, r.a.cfg.Concurrency)
	var wg sync.WaitGroup
	for i, img := range mine {
		sem <- struct{}{} // images start in session order
		wg.Go(func() {
			defer func() { <-sem }()
			// Waiting here is bounded: every holder finishes within Timeout.
			r.a.inflight <- struct{}{}
			defer func() { <-r.a.inflight }()
			r.file(ctxs[i], img)
			rn.done(img.ID)
		})
	}
	wg.Wait()
	return busy
}

// awaitOthers follows images claimed by a concurrent request until that
// request records them, taking over any whose claim lapses, so both
// requests can report every image. Images still claimed when ctx ends are
// reported in progress.
func (r *run) awaitOthers(ctx context.Context, busy []string) {
	timer := time.NewTimer(pollInterval)
	defer timer.Stop()
	for len(busy) > 0 {
		select {
		case <-ctx.Done():
			for _, id := range busy {
				f := errInProgress
				r.set(id, outcome{Result{Status: CommitCommitting, Error: &f}, kindInProgress})
			}
			return
		case <-timer.C:
			timer.Reset(pollInterval)
		}
		now := r.a.now()
		s, err := r.get(ctx, now)
		if err != nil {
			for _, id := range busy {
				r.fail(id, storeFailure(err))
			}
			return
		}
		var waiting []string
		var lapsed []session.Image
		for _, id := range busy {
			img, ok := s.Image(id)
			switch {
			case !ok:
				r.fail(id, errImageRemoved)
			case img.Commit.Status == session.CommitCommitted:
				r.skip(img)
			case r.a.claimLive(img.Commit, now):
				waiting = append(waiting, id)
			case img.Commit.Status == session.CommitFailed:
				r.fail(id, storedFailure(img.Commit))
			default:
				lapsed = append(lapsed, img)
			}
		}
		busy = append(waiting, r.claimAndFile(ctx, lapsed)...)
	}
}

// get rereads the session, detached from ctx's deadline like the writes,
// so a read cut off by the deadline is not mistaken for a store failure.
func (r *run) get(ctx context.Context, now time.Time) (session.Session, error) {
	ctx, cancel := detached(ctx)
	defer cancel()
	return r.a.store.Get(ctx, r.session.ID, now)
}

// file sends one claimed image to ALEX and records the outcome.
func (r *run) file(ctx context.Context, img session.Image) {
	claimedAt := img.Commit.ClaimedAt
	res, f := r.send(ctx, img)
	// Recording must happen even if ctx has just run out: the image may be
	// filed, and its claim must end either way.
	rctx, cancel := detached(ctx)
	defer cancel()
	if f != nil {
		r.recordFailed(rctx, img, claimedAt, *f)
		return
	}
	r.recordFiled(rctx, img, res)
}

// send reads the image's bytes and files them; a failure is what to tell
// the desktop.
func (r *run) send(ctx context.Context, img session.Image) (alex.Result, *ErrorInfo) {
	if f := r.abortedWith(); f != nil {
		return alex.Result{}, f
	}
	if ctx.Err() != nil {
		if cancelled(ctx) {
			return alex.Result{}, &errCancelled
		}
		return alex.Result{}, &errTimedOut
	}
	data, err := r.a.readImage(ctx, img)
	if err != nil {
		f := blobFailure(err)
		return alex.Result{}, &f
	}
	res, err := r.a.alex.CreateMedia(ctx, r.mediaInput(img, data))
	if err != nil && cancelled(ctx) {
		return alex.Result{}, &errCancelledInFlight
	}
	if err != nil {
		if errors.Is(err, alex.ErrOutboxWrite) {
			// The GP is told "disk error"; the log says which (the error
			// names the OS's reason, never the file's path).
			r.a.log.Error().Err(err).Str("session", r.session.ID).Msg("ALEX outbox write failed")
		}
		f := alexFailure(err)
		if abortsAll(f) {
			r.abort(f)
		}
		return alex.Result{}, &f
	}
	return res, nil
}

// mediaInput maps a stored image to what ALEX files. The title numbers the
// photo within the session and carries no patient data.
func (r *run) mediaInput(img session.Image, data []byte) alex.MediaInput {
	in := alex.MediaInput{
		FacilityID:  r.session.Facility,
		PatientID:   r.session.PatientID,
		EncounterID: r.session.EncounterID,
		ProviderID:  r.session.ProviderID,
		SessionID:   r.session.ID,
		ImageID:     img.ID,
		ContentType: img.ContentType,
		Title:       r.title(img.ID),
		Notes:       img.Metadata.Notes,
		Laterality:  img.Metadata.Laterality,
		Data:        data,
		CreatedAt:   img.CreatedAt,
	}
	if bs := img.Metadata.BodySite; bs.Code != "" {
		in.BodySite = &alex.Coding{System: bs.System, Code: bs.Code, Display: bs.Display}
	}
	return in
}

func (r *run) title(imageID string) string {
	for i, img := range r.session.Images {
		if img.ID == imageID {
			return fmt.Sprintf("Clinical photo %d of %d", i+1, len(r.session.Images))
		}
	}
	return "Clinical photo"
}
