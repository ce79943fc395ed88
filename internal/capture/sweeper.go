package capture

import (
	"context"
	"time"

	"github.com/handoff-health/handoff/internal/blob"
	"github.com/handoff-health/handoff/internal/session"
)

// RunSweeper removes expired sessions every SweepInterval until ctx ends:
// it deletes their blobs, publishes session.expired and drops their records.
// It also deletes the blobs of uploads whose URL expired without a register
// and drops their records, which frees their bytes of the session's quota.
// Every node may run one; the store leases each expired session to one
// sweeper at a time. It returns ctx's error.
func (a *API) RunSweeper(ctx context.Context) error {
	t := time.NewTicker(a.cfg.SweepInterval)
	defer t.Stop()
	for {
		a.sweep(ctx)
		a.sweepUploads(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// sweep handles every session expired by now and returns how many it
// removed. A session whose blobs cannot be deleted is left leased and is
// retried after the lease, so blobs are never orphaned by a passing fault.
func (a *API) sweep(ctx context.Context) int {
	removed := 0
	for ctx.Err() == nil {
		ids, err := a.store.Expired(ctx, a.now(), sweepLease, sweepBatch)
		if err != nil {
			a.log.Error().Err(err).Msg("capture sweep: listing expired sessions failed")
			return removed
		}
		for _, id := range ids {
			if a.expire(ctx, id) {
				removed++
			}
		}
		if len(ids) < sweepBatch {
			break
		}
	}
	return removed
}

// expire removes one expired session: the blobs its pending uploads were
// signed for (wherever their keys point), then everything under its stored
// and upload prefixes.
func (a *API) expire(ctx context.Context, id string) bool {
	keys, err := a.store.PendingKeys(ctx, id)
	if err != nil {
		a.log.Warn().Err(err).Str("session", id).Msg("capture sweep: pending uploads not read; will retry")
		return false
	}
	for _, key := range keys {
		if err := a.blobs.Delete(ctx, key); err != nil {
			a.log.Warn().Err(err).Str("session", id).Msg("capture sweep: upload blob not deleted; will retry")
			return false
		}
	}
	for _, prefix := range []string{blob.SessionPrefix(id), blob.UploadPrefix(id)} {
		if err := a.blobs.DeletePrefix(ctx, prefix); err != nil {
			a.log.Warn().Err(err).Str("session", id).Msg("capture sweep: blobs not deleted; will retry")
			return false
		}
	}
	if err := a.publish(ctx, id, EventSessionExpired, sessionExpiredEvent{SessionID: id}); err != nil {
		// Kept by the hub; the records stay until it is announced, so a
		// node that dies now leaves the session to the next sweep.
		return false
	}
	if err := a.store.Remove(ctx, id); err != nil {
		a.log.Warn().Err(err).Str("session", id).Msg("capture sweep: session records not removed; will retry")
		return false
	}
	a.log.Info().Str("session", id).Msg("capture session expired")
	return true
}

// sweepUploads deletes the blobs of uploads whose URL expired more than
// uploadSweepGrace ago without a register, and drops their records, and
// returns how many it dropped. The blob goes first: a record is dropped
// (and its bytes leave the quota) only once its blob is gone; one whose
// blob cannot be deleted stays leased and is retried after the lease.
func (a *API) sweepUploads(ctx context.Context) int {
	dropped := 0
	for ctx.Err() == nil {
		now := a.now()
		ups, err := a.store.StaleUploads(ctx, now.Add(-uploadSweepGrace), now, sweepLease, sweepBatch)
		if err != nil {
			a.log.Error().Err(err).Msg("capture sweep: listing stale uploads failed")
			return dropped
		}
		for _, up := range ups {
			if a.dropUpload(ctx, up) {
				dropped++
			}
		}
		if len(ups) < sweepBatch {
			break
		}
	}
	return dropped
}

// dropUpload deletes one stale upload's blob and record.
func (a *API) dropUpload(ctx context.Context, up session.StaleUpload) bool {
	key := up.Key
	if key == "" { // signed before keys were recorded
		key = blob.Key(up.SessionID, up.ImageID)
	}
	if err := a.blobs.Delete(ctx, key); err != nil {
		a.log.Warn().Err(err).Str("session", up.SessionID).Msg("capture sweep: stale upload not deleted; will retry")
		return false
	}
	if err := a.store.DropUpload(ctx, up.SessionID, up.ImageID, up.ExpiresAt); err != nil {
		a.log.Warn().Err(err).Str("session", up.SessionID).Msg("capture sweep: stale upload record not dropped; will retry")
		return false
	}
	a.log.Info().Str("session", up.SessionID).Str("image", up.ImageID).Msg("stale upload deleted")
	return true
}
