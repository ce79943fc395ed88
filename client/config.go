package client

import (
	"context"
	"net/http"
	"time"

	"github.com/handoff-health/handoff/internal/backoff"
)

// Config configures a Client. Zero fields take the defaults noted.
type Config struct {
	// URL is the realtime socket, e.g. "wss://handoff.example/realtime".
	URL string
	// Token returns the bearer JWT to connect with. It is called for every
	// connection attempt and before the current token expires, so it
	// should return a fresh token each time. Required.
	Token func(ctx context.Context) (string, error)

	// HTTPClient carries the WebSocket handshake. Nil means
	// http.DefaultClient.
	HTTPClient *http.Client

	// MinBackoff and MaxBackoff bound the jittered exponential delay between
	// reconnect attempts. Zero means 250 ms and 30 s.
	MinBackoff time.Duration
	MaxBackoff time.Duration

	// EventBuffer is the capacity of the Events channel. Zero means 256.
	// A caller that stops reading stalls the client, and the server then
	// disconnects it as a slow consumer; it resumes without loss.
	EventBuffer int

	// MaxAuthFailures is how many connection attempts in a row may be
	// refused for their token (close 4001, or 4009 before connecting)
	// before Run gives up. Zero means 3.
	MaxAuthFailures int
}

// Defaults for Config's zero fields.
const (
	defaultMinBackoff      = 250 * time.Millisecond
	defaultMaxBackoff      = 30 * time.Second
	defaultEventBuffer     = 256
	defaultMaxAuthFailures = 3

	// readLimit bounds one server frame: event data is at most 64 KiB
	// (hub.MaxDataBytes) plus a small envelope.
	readLimit = 256 << 10
	// writeTimeout bounds one client frame write.
	writeTimeout = 10 * time.Second
	// deadServerBeats is how many server heartbeat intervals may pass
	// without a frame or ping before the server is considered dead: one
	// ping may be late or in flight, two missed means it is gone.
	deadServerBeats = 2
)

// backoff is the reconnect delay policy the bounds make.
func (cfg Config) backoff() backoff.Policy {
	return backoff.Policy{Min: cfg.MinBackoff, Max: cfg.MaxBackoff}
}

func (cfg Config) withDefaults() Config {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = defaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = defaultMaxBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = cfg.MinBackoff
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = defaultEventBuffer
	}
	if cfg.MaxAuthFailures <= 0 {
		cfg.MaxAuthFailures = defaultMaxAuthFailures
	}
	return cfg
}
