package ablybridge

import (
	"context"
	"errors"
	"time"

	"github.com/ably/ably-go/ably"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/backoff"
)

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return permanentError{err} }

// retry runs op until it succeeds, fails permanently, the channel lock is
// lost or ctx ends, sleeping retryPolicy's jittered delay between attempts
// so a fleet of nodes does not retry in lockstep after an outage. Events
// wait in the hub's history meanwhile; nothing is dropped by waiting.
func (b *Bridge) retry(ctx context.Context, r *run, kind string, op func(context.Context) error) error {
	for attempt := 0; ; attempt++ {
		err := b.keepLease(ctx, r)
		if err == nil {
			err = op(ctx)
		}
		var perm permanentError
		switch {
		case err == nil:
			b.recovered(r)
			return nil
		case errors.As(err, &perm), errors.Is(err, errLeaseLost):
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		}
		b.failed(r, kind, err)
		if !backoff.Sleep(ctx, b.retryPolicy().Delay(attempt)) {
			return ctx.Err()
		}
		b.m.retries.Inc()
	}
}

// retryPolicy is the delay between attempts: BackoffMin doubling up to
// BackoffMax, jittered.
func (b *Bridge) retryPolicy() backoff.Policy {
	return backoff.Policy{Min: b.cfg.BackoffMin, Max: b.cfg.BackoffMax}
}

// leaseTTL outlasts the longest pause between two refreshes (a backoff
// sleep plus a publish attempt), so a live worker never loses its lock.
func (b *Bridge) leaseTTL() time.Duration {
	return b.cfg.BackoffMax + b.cfg.PublishTimeout + 5*time.Second
}

// keepLease extends the channel lock when a third of it has passed.
func (b *Bridge) keepLease(ctx context.Context, r *run) error {
	ttl := b.leaseTTL()
	if time.Since(r.leaseAt) < ttl/3 {
		return nil
	}
	held, err := b.progress.Lock(ctx, r.channel, b.owner, ttl)
	if err != nil {
		return err
	}
	if !held {
		return errLeaseLost
	}
	r.leaseAt = time.Now()
	return nil
}

// failed counts a failed attempt and logs, rate-limited across the node,
// that mirroring is failing. The error text never carries the key or
// event data: ably-go errors name the status, Ably's code and the URL.
func (b *Bridge) failed(r *run, kind string, err error) {
	r.failing++
	b.m.failures.WithLabelValues(kind).Inc()
	b.failLog.Do(func() {
		b.mu.Lock()
		lag, lagging := b.lagTotal, b.lagging
		b.mu.Unlock()
		b.log.Error().Str("channel", r.channel).Str("kind", kind).Int("attempt", r.failing).
			Uint64("lag_events", lag).Int("lagging_channels", lagging).
			Str("error", errText(err)).
			Msg("ably bridge: mirroring is failing; events wait in the hub history and will be retried")
	})
}

// recovered logs, rate-limited, that a failing run got through.
func (b *Bridge) recovered(r *run) {
	if r.failing == 0 {
		return
	}
	n := r.failing
	r.failing = 0
	b.okLog.Do(func() {
		b.log.Info().Str("channel", r.channel).Int("failed_attempts", n).
			Msg("ably bridge: mirroring recovered")
	})
}

func errText(err error) string {
	var ei *ably.ErrorInfo
	if errors.As(err, &ei) {
		return ei.Error()
	}
	return err.Error()
}

// setLag records how far r's channel is behind top.
func (b *Bridge) setLag(r *run, top hub.Cursor) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r.w.cursor = r.cursor
	if !r.w.known || r.w.top.Epoch != top.Epoch || r.w.top.Offset < top.Offset {
		r.w.top = top
	}
	b.setLagLocked(r.w, true, lagOf(r.w.cursor, r.w.top))
}

// noteTop raises the known top of a channel being mirrored when a new
// event is published, so the lag grows during an outage.
func (b *Bridge) noteTop(channel string, c hub.Cursor) {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.workers[channel]
	if w == nil || !w.known || w.top.Epoch != c.Epoch || w.top.Offset >= c.Offset {
		return
	}
	w.top = c
	b.setLagLocked(w, true, lagOf(w.cursor, w.top))
}

// setLagLocked updates w's lag and the gauges; known=false forgets it
// (the worker stopped). Called with b.mu held.
func (b *Bridge) setLagLocked(w *worker, known bool, lag uint64) {
	if !known {
		lag = 0
	}
	if w.lag > 0 {
		b.lagging--
	}
	if lag > 0 {
		b.lagging++
	}
	b.lagTotal = b.lagTotal - w.lag + lag
	w.known, w.lag = known, lag
	b.m.lag.Set(float64(b.lagTotal))
	b.m.lagChannels.Set(float64(b.lagging))
}

func lagOf(cursor, top hub.Cursor) uint64 {
	if cursor.Epoch == top.Epoch && cursor.Offset <= top.Offset {
		return top.Offset - cursor.Offset
	}
	return top.Offset
}
