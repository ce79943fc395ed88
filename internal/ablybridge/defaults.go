package ablybridge

import "time"

// Defaults of the bridge and the token endpoint, gathered in one place with
// the reason for each. Config fields left at zero take these values.
const (
	// DefaultChannelTemplate mirrors hub channel session:{id} to the Ably
	// channel of the same name, which is what the seed's ably-js widget
	// subscribes to.
	DefaultChannelTemplate = "session:{sessionId}"

	// DefaultBackoffMin is the first retry delay after a failed publish:
	// long enough not to hammer a struggling Ably, short enough that a
	// blip costs the GP well under a second.
	DefaultBackoffMin = 250 * time.Millisecond

	// DefaultBackoffMax caps the retry delay during a long outage, so the
	// backlog starts draining within half a minute of Ably coming back.
	DefaultBackoffMax = 30 * time.Second

	// DefaultPublishTimeout bounds one publish attempt. It matches
	// ably-go's own HTTP request timeout; a hung Ably answer then counts
	// as a failure and is retried with the same message id.
	DefaultPublishTimeout = 10 * time.Second

	// DefaultConcurrency is how many channels are mirrored at once. After a
	// restart or an outage hundreds of sessions may have a backlog; this
	// keeps the node from opening hundreds of requests to Ably at once.
	DefaultConcurrency = 32

	// DefaultSettleGrace is how old a channel's pending mark must be before
	// a drained channel may be taken off the pending set. A mark is written
	// before its event is published; the grace must exceed the longest a
	// hub publish can take, so a mark is never removed while the event it
	// announces is still on its way into the history.
	DefaultSettleGrace = 30 * time.Second

	// DefaultRescanInterval is how often the whole pending set is read
	// again. It picks up channels whose worker died with another node and
	// marks whose publish failed; normal traffic never waits for it.
	DefaultRescanInterval = time.Minute

	// DefaultCursorTTL is how long a stored cursor outlives its last
	// update. It is far longer than a session's history (2 h), so a cursor
	// never expires while the events it points into still exist, even
	// through a long Ably outage.
	DefaultCursorTTL = 24 * time.Hour

	// DefaultTokenTTL is the lifetime of the Ably tokens the token endpoint
	// lets a desktop obtain: a capture session lasts at most 2 h and ably-js
	// renews a token through the endpoint when it expires.
	DefaultTokenTTL = time.Hour

	// MaxTokenTTL is Ably's own upper bound on token lifetime.
	MaxTokenTTL = 24 * time.Hour
)

// Internal timings that need no configuration.
const (
	// lockRetry is how soon a channel whose lock another node holds is
	// tried again, so events published through this node while the other
	// node finishes are not left waiting for a rescan.
	lockRetry = 500 * time.Millisecond

	// failLogInterval rate-limits the "still failing" log line: loud enough
	// that an operator sees an outage, quiet enough not to flood the log.
	failLogInterval = 30 * time.Second

	// progressTimeout bounds one Progress call made where the caller's
	// context is already over (releasing a lock at shutdown).
	progressTimeout = 2 * time.Second
)
