package hub

import (
	"time"

	"github.com/handoff-health/handoff/internal/backoff"
)

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

	// MaxOriginIDLen bounds each field of an event's Origin. Ably's own ids
	// are short (a REST id "<12 base64>:<index>", a connectionId of about
	// ten characters); 256 leaves room for an integrator's own message ids
	// and clientIds without letting them rival the event's data.
	MaxOriginIDLen = 256

	// MaxHeadersBytes bounds an event's Origin.Headers (Ably's
	// extras.headers as compact JSON): a few filterable attributes.
	MaxHeadersBytes = 2048

	// DefaultDedupeWindow is how long a channel remembers the message ids
	// (Origin.MsgID) published on it, so a retry within it gets the first
	// publish's event instead of a second one. It is Ably's idempotency
	// window: the SDKs retry well within it.
	DefaultDedupeWindow = 2 * time.Minute

	// DefaultDedupeIDs bounds the ids one channel remembers (the oldest go
	// first), so a channel flooded with ids keeps bounded memory: 10,000 is
	// over 80 publishes a second for the whole window, far beyond a capture
	// session. Each costs its id and cursor, never the event's data.
	DefaultDedupeIDs = 10_000
)

// Limits of live delivery and repair.
const (
	// defaultShards is the number of delivery goroutines of a backend. A
	// shard delivers one event at a time, and HandleEvent never waits for
	// the backend, so a few shards keep a node's cores busy without one
	// goroutine per channel.
	defaultShards = 4

	// repairTimeout bounds one history read made to close a gap in live
	// delivery. It runs off the delivery goroutines, so it only bounds how
	// long the channel's behind subscribers wait before a retry.
	repairTimeout = 5 * time.Second

	// maxBacklog bounds the live events a subscriber keeps while it is
	// catching up from history. Beyond it the events are dropped and read
	// from history instead, where they are anyway: a subscriber stuck
	// behind a slow read must not pin a busy channel's stream in memory.
	maxBacklog = 1024

	// memorySweepInterval is how often the memory backend frees histories
	// that expired without being read; reads drop them anyway, so this
	// only bounds the memory of idle channels.
	memorySweepInterval = time.Minute
)

// repairRetry spaces out a channel's repair attempts while the backend is
// unreachable: a quiet channel may get neither a live event nor a Resync,
// and its subscribers must not stay behind, but a thousand channels must
// not hammer a Redis that is down either. Resync repairs every channel as
// soon as the link is back, so the cap only matters for a flaky link.
var repairRetry = backoff.Policy{Min: time.Second, Max: 8 * time.Second}

// republishRetry spaces out the republisher's passes while the backend
// refuses them (see Hub.Announce): quick at first, since most faults (a
// restart, a failover) heal within seconds, and capped so a long outage
// costs one history read per kept channel every few seconds.
var republishRetry = backoff.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second}

// MaxRepublishPending caps the events one node keeps for republishing. Each
// is at most MaxDataBytes; past the cap Announce refuses with ErrUnavailable
// (the caller answers 503 and its client retries), rather than the node
// growing without bound through a long outage.
const MaxRepublishPending = 10000
