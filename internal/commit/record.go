package commit

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"time"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/alex"
	"github.com/handoff-health/handoff/internal/blob"
	"github.com/handoff-health/handoff/internal/session"
)

// Event types the committer publishes on a session's channel.
const (
	EventImageCommitted    = "image.committed"
	EventImageCommitFailed = "image.commit_failed"
	EventSessionCommitted  = "session.committed"
)

// Event payloads. Image is the image as the session snapshot shows it, when
// Deps.Images is set and can render it.
type (
	imageCommittedEvent struct {
		SessionID string             `json:"sessionId"`
		ImageID   string             `json:"imageId"`
		AlexID    string             `json:"alexId"`
		Image     *session.ImageView `json:"image,omitempty"`
	}
	imageCommitFailedEvent struct {
		SessionID string             `json:"sessionId"`
		ImageID   string             `json:"imageId"`
		Error     ErrorInfo          `json:"error"`
		Image     *session.ImageView `json:"image,omitempty"`
	}
	sessionCommittedEvent struct {
		SessionID  string `json:"sessionId"`
		ImageCount int    `json:"imageCount"`
		Committed  int    `json:"committed"`
	}
)

// errBytesChanged: the stored bytes are not the bytes register checked
// (their size or SHA-256 differs from the recorded one).
var errBytesChanged = errors.New("commit: stored image differs from the one checked at register")

// errNoHash: the image has no recorded SHA-256 (registered by a version
// that did not record one), so its bytes cannot be shown to be the checked ones.
var errNoHash = errors.New("commit: image has no recorded SHA-256")

// readImage reads an image's bytes and returns them only if they are the
// bytes register checked: the registered size and the recorded SHA-256. No
// upload URL can write the stored key, so a mismatch means the store itself
// was changed; the image is then not filed, and its blob is kept.
func (a *API) readImage(ctx context.Context, img session.Image) ([]byte, error) {
	if img.SHA256 == "" {
		return nil, errNoHash
	}
	rc, err := a.blobs.Open(ctx, img.Key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// One buffer of the recorded size plus one byte (to notice a longer
	// object): io.ReadAll would grow and copy its way to ~2× the image.
	if img.Size < 0 {
		return nil, errBytesChanged
	}
	buf := make([]byte, img.Size+1)
	n, err := io.ReadFull(rc, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	data := buf[:n]
	var sum string
	if int64(n) == img.Size {
		blob.ImageWork(func() { sum = blob.Hash(data) })
	}
	if int64(n) != img.Size || sum != img.SHA256 {
		return nil, errBytesChanged
	}
	return data, nil
}

// recordFiled stores that ALEX filed img as res and announces it.
func (r *run) recordFiled(ctx context.Context, img session.Image, res alex.Result) {
	at := r.a.touch()
	c := session.Commit{Status: session.CommitCommitted, AlexID: res.ID, CommittedAt: at.Now}
	stored, err := session.SetCommit(ctx, r.a.store, r.session.ID, img.ID, c, at)
	switch {
	case errors.Is(err, session.ErrImageCommitted):
		// A request that took over our lapsed claim recorded it first. Both
		// filed through the same conditional create: one Media.
		r.set(img.ID, outcome{Result{Status: session.CommitCommitted, AlexID: res.ID}, kindSkipped})
		return
	case err != nil:
		// The image is in the record but the store does not say so. Our
		// claim lapses, and the next commit re-files it, which ALEX answers
		// with the same Media. The desktop is told the truth now.
		r.a.log.Error().Err(err).Str("session", r.session.ID).Msg("image filed to ALEX but its commit was not recorded")
		stored = img
		stored.Commit = c
	}
	r.set(img.ID, outcome{Result{Status: session.CommitCommitted, AlexID: res.ID}, kindFiled})
	r.a.publish(ctx, r.session.ID, EventImageCommitted, imageCommittedEvent{
		SessionID: r.session.ID, ImageID: img.ID, AlexID: res.ID, Image: r.a.view(ctx, stored)})
}

// recordFailed stores that img was not filed, over our claim, and announces
// it; see recordFailure for when it stores nothing.
func (r *run) recordFailed(ctx context.Context, img session.Image, claimedAt time.Time, f ErrorInfo) {
	stored, err := r.a.recordFailure(ctx, r.session.ID, img.ID, claimedAt, failedCommit(f), r.a.touch())
	switch {
	case errors.Is(err, errCommitted):
		r.skip(stored)
		return
	case errors.Is(err, errNotOurs):
		// The request now holding the image reports and announces it.
		r.fail(img.ID, f)
		return
	case err != nil:
		// Our claim stays until it lapses; then a commit retries the image.
		r.a.log.Error().Err(err).Str("session", r.session.ID).Msg("failed image commit not recorded")
		stored = img
		stored.Commit = failedCommit(f)
	}
	r.fail(img.ID, f)
	r.a.publish(ctx, r.session.ID, EventImageCommitFailed, imageCommitFailedEvent{
		SessionID: r.session.ID, ImageID: img.ID, Error: f, Image: r.a.view(ctx, stored)})
}

// view renders img for an event, or nil when no viewer is configured or it
// fails (the event still names the image; a snapshot shows the rest).
func (a *API) view(ctx context.Context, img session.Image) *session.ImageView {
	if a.images == nil {
		return nil
	}
	v, err := a.images.ImageView(ctx, img)
	if err != nil {
		a.log.Warn().Err(err).Msg("image view for commit event failed")
		return nil
	}
	return &v
}

// publish announces a stored change on the session's channel through
// hub.Announce: when the publish fails, the hub keeps the event and
// republishes it until it is in history. The commit's reply is not failed
// for it: the reply itself carries every outcome these events do, to the
// desktop that asked, which is the client that must not miss them (other
// subscribers get the kept event). See docs/reliability.md.
func (a *API) publish(ctx context.Context, sessionID, typ string, data any) {
	b, err := json.Marshal(data)
	if err == nil {
		_, err = a.hub.Announce(ctx, session.Channel(sessionID), hub.Publication{Type: typ, Data: b})
	}
	if err != nil {
		a.log.Warn().Err(err).Str("session", sessionID).Str("event", typ).Msg("commit event not published yet; kept for republishing")
	}
}
