package alex

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/handoff-health/handoff/internal/backoff"
)

// retryDelay is the wait after the given failed attempt (1-based): base
// doubled per attempt, capped at maxBackoff, with the equal jitter of
// internal/backoff so it never collapses to zero and many sessions failing
// together spread their retries.
func retryDelay(base time.Duration, attempt int) time.Duration {
	return backoff.Policy{Min: base, Max: maxBackoff}.Delay(attempt - 1)
}

// retryAfter parses a Retry-After header, delta-seconds or HTTP-date, into
// a wait from now. Absent or unparsable means no wait was asked for.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if secs, err := strconv.Atoi(h); err == nil {
		return time.Duration(max(secs, 0)) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// sleepCtx waits d or until ctx is done, returning ctx's error then.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if !backoff.Sleep(ctx, d) {
		return ctx.Err()
	}
	return nil
}
