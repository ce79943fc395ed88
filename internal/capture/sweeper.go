package capture

import (
	"context"
	"time"

	"github.com/handoff-health/handoff/internal/blob"
)

// RunSweeper removes expired sessions every SweepInterval until ctx ends:
// it deletes their blobs, publishes session.expired and drops their records.
// Every node may run one; the store leases each expired session to one
// sweeper at a time. It returns ctx's error.
func (a *API) RunSweeper(ctx context.Context) error {
	t := time.NewTicker(a.cfg.SweepInterval)
	defer t.Stop()
	for {
		a.sweep(ctx)
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

// expire removes one expired session: its stored images and its uploads.
func (a *API) expire(ctx context.Context, id string) bool {
	for _, prefix := range []string{blob.SessionPrefix(id), blob.UploadPrefix(id)} {
		if err := a.blobs.DeletePrefix(ctx, prefix); err != nil {
			a.log.Warn().Err(err).Str("session", id).Msg("capture sweep: blobs not deleted; will retry")
			return false
		}
	}
	a.publish(ctx, id, EventSessionExpired, sessionExpiredEvent{SessionID: id})
	if err := a.store.Remove(ctx, id); err != nil {
		a.log.Warn().Err(err).Str("session", id).Msg("capture sweep: session records not removed; will retry")
		return false
	}
	a.log.Info().Str("session", id).Msg("capture session expired")
	return true
}
