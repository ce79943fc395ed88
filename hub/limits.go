package hub

import "time"

// Limits of the hub, gathered in one place with the reason for each.
const (
	// DefaultHistorySize is how many events a channel keeps for replay. A
	// capture session produces a few dozen events; 1000 leaves room for a
	// long session and for integrator channels without unbounded memory.
	DefaultHistorySize = 1000

	// DefaultHistoryTTL is how long a channel's history outlives its last
	// publish. It matches the capture session TTL: nobody resumes a session
	// that no longer exists.
	DefaultHistoryTTL = 2 * time.Hour

	// MaxChannelLen bounds channel names ("session:" + a UUID is 44).
	MaxChannelLen = 200

	// MaxTypeLen bounds an event type ("image.commit_failed" is 19).
	MaxTypeLen = 100

	// MaxDataBytes bounds one event's JSON payload. Events carry metadata and
	// URLs, never image bytes, so 64 KiB is generous; it also bounds what a
	// slow consumer's queue can pin in memory.
	MaxDataBytes = 64 << 10
)
