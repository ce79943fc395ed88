package commit

import (
	"context"
	"strings"

	"github.com/handoff-health/handoff/internal/session"
)

// finish closes the session once every image in it is filed: the status
// becomes committed (no more uploads; a new session for the encounter starts
// fresh), the temporary blobs are deleted and session.committed is
// announced. It returns the session's status as the reply shows it:
// committed as soon as every image is filed.
//
// Exactly one request closes a session: the one that filed the image
// committed last. Concurrent requests each file some images, and every
// image is recorded committed by exactly one of them (session.SetCommit),
// so they agree on who that is without talking to each other. A re-run that
// filed nothing changes nothing, unless the last commit is older than
// recordTimeout and the session is still open: then its request died
// before closing it, and this one does it instead.
//
// Blobs are deleted one by one, by the keys of the committed images, rather
// than by prefix: an image a phone registered in the moment before the
// status changed keeps its blob and can still be committed. A blob that
// cannot be deleted is left to the expiry sweep.
func (r *run) finish(ctx context.Context) session.Status {
	now := r.a.now()
	s, err := r.a.store.Get(ctx, r.session.ID, now)
	if err != nil {
		r.a.log.Warn().Err(err).Str("session", r.session.ID).Msg("session not reread after commit")
		return r.session.Status
	}
	last, ok := lastCommitted(s)
	if !ok {
		return s.Status
	}
	mine := r.filedHere(last.ID)
	orphaned := s.Status != session.StatusCommitted && now.Sub(last.Commit.CommittedAt) > recordTimeout
	if !mine && !orphaned {
		return session.StatusCommitted
	}
	if err := r.a.store.SetStatus(ctx, s.ID, session.StatusCommitted, now); err != nil {
		r.a.log.Error().Err(err).Str("session", s.ID).Msg("committed session not closed")
		return s.Status
	}
	for _, img := range s.Images {
		if err := r.a.blobs.Delete(ctx, img.Key); err != nil {
			r.a.log.Warn().Err(err).Str("session", s.ID).Msg("committed image blob not deleted; the expiry sweep will remove it")
		}
	}
	r.a.publish(ctx, s.ID, EventSessionCommitted, sessionCommittedEvent{
		SessionID: s.ID, ImageCount: len(s.Images), Committed: len(s.Images)})
	return session.StatusCommitted
}

// lastCommitted returns the image committed last (ties broken by id), if
// every image of s is committed.
func lastCommitted(s session.Session) (session.Image, bool) {
	var last session.Image
	for i, img := range s.Images {
		if img.Commit.Status != session.CommitCommitted {
			return session.Image{}, false
		}
		c := img.Commit.CommittedAt.Compare(last.Commit.CommittedAt)
		if i == 0 || c > 0 || c == 0 && strings.Compare(img.ID, last.ID) > 0 {
			last = img
		}
	}
	return last, len(s.Images) > 0
}

// filedHere reports whether this request recorded the image committed.
func (r *run) filedHere(imageID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	o, ok := r.outcomes[imageID]
	return ok && o.kind == kindFiled
}
