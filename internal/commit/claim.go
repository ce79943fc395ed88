package commit

import (
	"context"
	"errors"
	"time"

	"github.com/handoff-health/handoff/internal/session"
)

// CommitCommitting is the commit status of an image a request has claimed
// and is filing to ALEX. Snapshots may show it; it never lasts longer than
// Config.ClaimLease without renewal.
const CommitCommitting = session.CommitCommitting

// Claims keep two concurrent commits of one session, on one node or on
// several, from filing the same image at the same time.
//
// A request claims an image by setting its Commit to
// {Status: committing, ClaimedAt: claim time} in one atomic
// Store.UpdateImage, which refuses an image already committed or holding a
// live claim. While claimed, the capture API refuses edits and deletes of
// the image (409 image_committing). A claim is live for ClaimLease from
// its time or its last renewal (RenewedAt). The request holding it renews
// it every ClaimLease/3 while it files (renew.go), so it only lapses when
// its node died mid-commit (or lost the store for a whole lease), and then
// the next commit takes the image over within seconds.
//
// A request ends its claim by recording the image committed
// (session.SetCommit: committed always wins) or failed (recordFailure: only
// over its own claim, so it cannot hide another request's success or cut
// short another request's claim).
//
// Claims are an efficiency and clarity measure, not what prevents
// duplicates in the record: ALEX creates are conditional on the image's
// identifier, session and image id (If-None-Exist on Media.identifier), so even two requests filing one image
// at once, after a lapsed claim, produce one Media.

// claimState is what claiming an image found.
type claimState int

const (
	claimed          claimState = iota // the image is ours to file
	alreadyCommitted                   // filed before: nothing to do
	claimedElsewhere                   // another request holds a live claim
)

var (
	errCommitted = errors.New("commit: image already committed")
	errBusy      = errors.New("commit: image claimed by another request")
	errNotOurs   = errors.New("commit: image claimed by another request since")
)

// claimLive reports whether c is a claim whose request may still be acting
// on the image at now.
func (a *API) claimLive(c session.Commit, now time.Time) bool {
	last := c.ClaimedAt
	if c.RenewedAt.After(last) {
		last = c.RenewedAt
	}
	return c.Status == CommitCommitting && now.Before(last.Add(a.cfg.ClaimLease))
}

// claim applies the desktop's metadata override (o, may be nil) and
// claims the image, in one atomic step, unless the image is committed or
// claimed by a live request; then it returns the stored image unchanged.
func (a *API) claim(ctx context.Context, sessionID, imageID string, o *MetadataOverride, at session.Touch) (session.Image, claimState, error) {
	var seen session.Image
	img, err := a.store.UpdateImage(ctx, sessionID, imageID, at, func(img *session.Image) error {
		seen = *img
		switch {
		case img.Commit.Status == session.CommitCommitted:
			return errCommitted
		case a.claimLive(img.Commit, at.Now):
			return errBusy
		}
		if o != nil {
			o.apply(&img.Metadata)
		}
		img.Commit = session.Commit{Status: CommitCommitting, ClaimedAt: at.Now}
		return nil
	})
	switch {
	case errors.Is(err, errCommitted):
		return seen, alreadyCommitted, nil
	case errors.Is(err, errBusy):
		return seen, claimedElsewhere, nil
	case err != nil:
		return session.Image{}, 0, err
	}
	return img, claimed, nil
}

// recordFailure stores c (a failed commit) over the claim this request took
// at claimedAt. If the image was committed meanwhile it returns errCommitted
// and the stored image; if another request claimed it since (ours lapsed),
// errNotOurs, leaving that request to record its own outcome.
func (a *API) recordFailure(ctx context.Context, sessionID, imageID string, claimedAt time.Time, c session.Commit, at session.Touch) (session.Image, error) {
	var seen session.Image
	img, err := a.store.UpdateImage(ctx, sessionID, imageID, at, func(img *session.Image) error {
		seen = *img
		switch {
		case img.Commit.Status == session.CommitCommitted:
			return errCommitted
		case img.Commit.Status == CommitCommitting && !img.Commit.ClaimedAt.Equal(claimedAt):
			return errNotOurs
		}
		img.Commit = c
		return nil
	})
	if errors.Is(err, errCommitted) {
		return seen, err
	}
	return img, err
}
