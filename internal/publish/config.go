package publish

import (
	"time"

	"github.com/handoff-health/handoff/presence"
)

// Config configures the publish endpoint. Zero fields take the defaults
// below, each with its reason.
type Config struct {
	// MaxBodyBytes bounds a request body. Zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxMessages bounds the messages of one request. Zero means
	// DefaultMaxMessages.
	MaxMessages int
	// IdempotencyWindow is how long a message id is remembered per channel:
	// a message whose id was published on the channel within it is not
	// published again. Zero means DefaultIdempotencyWindow.
	IdempotencyWindow time.Duration
	// IdempotencyEntries bounds the ids remembered by this node (oldest
	// forgotten first). Zero means DefaultIdempotencyEntries.
	IdempotencyEntries int
	// Now is the clock, for tests. Nil means time.Now.
	Now func() time.Time
	// ChannelPrefix, when set, maps a key name to the hub-channel prefix
	// of its app (the test-app provisioner's isolation; scope.go). Nil:
	// Ably channel names are hub channel names.
	ChannelPrefix func(keyName string) string
	// Presence is the presence registry GET …/presence[/history] read.
	// Nil: both answer an empty list.
	Presence presence.Registry
	// BatchWorkers is how many channels of one batch publish (POST
	// /messages) are published at once. Zero means DefaultBatchWorkers,
	// for a backend with a round trip per publish (Redis: concurrent
	// publishes share its round trips). On the in-process backend a publish
	// takes microseconds and 1 is best: more workers only add goroutines
	// that contend for the same cores.
	BatchWorkers int
}

const (
	// DefaultMaxBodyBytes fits 16 messages at the hub's largest payload
	// (64 KiB): batches are for many small events, not a few huge ones.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultMaxMessages matches the batch sizes Ably's REST API takes
	// comfortably; a request is published message by message, so it also
	// bounds how long one request holds the backend.
	DefaultMaxMessages = 100
	// DefaultIdempotencyWindow is Ably's own deduplication window for
	// idempotent REST publishing: ably-go retries a failed request with the
	// same ids well within it.
	DefaultIdempotencyWindow = 2 * time.Minute
	// DefaultIdempotencyEntries bounds the memory of remembered ids (about
	// 200 bytes each): 10,000 covers 80 publishes a second for the whole
	// window, far beyond a clinic's integrator traffic.
	DefaultIdempotencyEntries = 10_000
	// DefaultBatchWorkers: concurrent publishes to Redis are grouped into
	// one script call (hub/backend_redis_batch.go); more would only queue.
	DefaultBatchWorkers = 32
	// maxIDLen bounds a message id; ably-go's are about 14 characters.
	maxIDLen = 256
)

func (cfg Config) withDefaults() Config {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.BatchWorkers <= 0 {
		cfg.BatchWorkers = DefaultBatchWorkers
	}
	if cfg.MaxMessages <= 0 {
		cfg.MaxMessages = DefaultMaxMessages
	}
	if cfg.IdempotencyWindow <= 0 {
		cfg.IdempotencyWindow = DefaultIdempotencyWindow
	}
	if cfg.IdempotencyEntries <= 0 {
		cfg.IdempotencyEntries = DefaultIdempotencyEntries
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg
}
