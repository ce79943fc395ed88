package commit

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/handoff-health/handoff/internal/session"
)

// renewer keeps one request's claims live while it files their images: every
// ClaimLease/claimRenewals it moves each unfinished claim's RenewedAt to now,
// as long as the claim is still this request's (same ClaimedAt, still
// committing). A claim another request took over, or one already recorded,
// is left alone and no longer renewed. A renewal that fails (store down) is
// tried again at the next tick; the claim lapses only if renewals fail for
// a whole lease, and then ALEX's conditional create and the outbox's
// identifier check still keep the image from being filed twice.
type renewer struct {
	a         *API
	sessionID string

	mu      sync.Mutex
	claims  map[string]time.Time // image id -> ClaimedAt, while filing
	stop    chan struct{}
	stopped sync.WaitGroup
}

// renewClaims starts renewing the claims of imgs (as returned by claim).
// Call done for each image once its outcome is recorded, and close when
// the request has finished filing.
func (r *run) renewClaims(imgs []session.Image) *renewer {
	rn := &renewer{a: r.a, sessionID: r.session.ID, claims: make(map[string]time.Time, len(imgs)), stop: make(chan struct{})}
	for _, img := range imgs {
		rn.claims[img.ID] = img.Commit.ClaimedAt
	}
	if len(imgs) > 0 {
		rn.stopped.Add(1)
		go rn.loop()
	}
	return rn
}

// done stops renewing imageID's claim: its outcome is recorded.
func (rn *renewer) done(imageID string) {
	rn.mu.Lock()
	delete(rn.claims, imageID)
	rn.mu.Unlock()
}

// close stops renewing and waits for a renewal in progress.
func (rn *renewer) close() {
	close(rn.stop)
	rn.stopped.Wait()
}

func (rn *renewer) loop() {
	defer rn.stopped.Done()
	t := time.NewTicker(max(rn.a.cfg.ClaimLease/claimRenewals, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-rn.stop:
			return
		case <-t.C:
			rn.renewAll()
		}
	}
}

func (rn *renewer) renewAll() {
	rn.mu.Lock()
	claims := make(map[string]time.Time, len(rn.claims))
	for id, at := range rn.claims {
		claims[id] = at
	}
	rn.mu.Unlock()
	for id, claimedAt := range claims {
		err := rn.renew(id, claimedAt)
		switch {
		case errors.Is(err, errNotOurs), errors.Is(err, errCommitted), errors.Is(err, session.ErrImageNotFound), errors.Is(err, session.ErrNotFound):
			rn.done(id)
		case err != nil:
			rn.a.log.Warn().Err(err).Str("session", rn.sessionID).Msg("commit claim not renewed; will retry")
		}
	}
}

// renew moves one claim's RenewedAt to now if it is still ours.
func (rn *renewer) renew(imageID string, claimedAt time.Time) error {
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	at := rn.a.touch()
	_, err := rn.a.store.UpdateImage(ctx, rn.sessionID, imageID, at, func(img *session.Image) error {
		switch {
		case img.Commit.Status == session.CommitCommitted:
			return errCommitted
		case img.Commit.Status != CommitCommitting || !img.Commit.ClaimedAt.Equal(claimedAt):
			return errNotOurs
		}
		img.Commit.RenewedAt = at.Now
		return nil
	})
	return err
}
