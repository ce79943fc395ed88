package realtime

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/presence"
)

// Config configures the WebSocket transport. Every field's zero value is a
// working default (see limits.go for the reasons behind the numbers).
type Config struct {
	// Authorize decides whether the holder of c may subscribe to channel.
	// An error refuses the subscription with an error frame; if it is an
	// *httpx.Error its Code and Message are sent (so a caller can answer
	// "not_found" and not leak that the channel exists, or
	// httpx.ErrUnavailable when it could not decide), an outage
	// (httpx.IsUnavailable) is sent as "unavailable", and otherwise the
	// client sees "forbidden". Nil allows every valid channel name to any
	// valid token.
	Authorize func(ctx context.Context, c auth.Claims, channel string) error

	// Phone authenticates a token that is not a JWT (no two dots): a
	// phone's mobile token. It returns the one channel the phone may use
	// and its presence clientId; a phone's socket may only enter presence
	// on that channel (it cannot subscribe). An error refuses the socket:
	// ErrPhoneUnknown closes it with 4001, an outage (httpx.IsUnavailable)
	// with 1011, which clients retry. Nil: only JWTs are accepted.
	Phone func(ctx context.Context, token string) (PhoneGrant, error)
	// PhoneRecheck is how often an open phone socket's token is checked
	// again, so a phone revoked while connected ("wrong patient") leaves
	// presence: the socket closes with 4001. Zero means
	// DefaultPhoneRecheck.
	PhoneRecheck time.Duration

	// Presence is the registry of who is present on channels (the presence
	// frames). Nil: presence ops and subscribe's presence option are
	// refused with "forbidden".
	Presence presence.Registry

	// HeartbeatInterval is how often the server pings a socket. Zero means
	// DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// HeartbeatTimeout is how long a ping may go unanswered before the
	// socket is dropped. Zero means DefaultHeartbeatTimeout.
	HeartbeatTimeout time.Duration
	// WriteTimeout bounds one frame write. Zero means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// AuthTimeout is how long a socket opened without a token has to send
	// its auth frame. Zero means DefaultAuthTimeout.
	AuthTimeout time.Duration

	// SendQueueMessages and SendQueueBytes bound the frames waiting for one
	// socket's writer; overflowing either closes the socket with
	// CloseSlowConsumer. Zero means DefaultSendQueueMessages and
	// DefaultSendQueueBytes.
	SendQueueMessages int
	SendQueueBytes    int

	// MaxFrameBytes bounds one inbound frame; larger closes with 1009.
	// Zero means DefaultMaxFrameBytes.
	MaxFrameBytes int64
	// MaxChannels bounds the subscriptions of one socket. Zero means
	// DefaultMaxChannels.
	MaxChannels int
	// MaxBadFrames is how many malformed frames a socket may send before it
	// is closed with CloseBadRequest. Zero means DefaultMaxBadFrames.
	MaxBadFrames int
	// MaxUnauthPerAddr caps the sockets one client address (the edge's
	// httpx.ClientAddr) may hold before they authenticate; more are refused
	// with 429 before the upgrade. Zero means DefaultMaxUnauthPerAddr.
	MaxUnauthPerAddr int

	// OriginPatterns lists the browser origins (host patterns, see
	// websocket.AcceptOptions) allowed besides the server's own host. Nil
	// allows same-origin pages and non-browser clients only, which is what
	// the embedded webui needs.
	OriginPatterns []string

	// Registerer receives the transport's Prometheus metrics. Nil keeps the
	// metrics (they are still counted) but registers them nowhere, so tests
	// and several servers in one process do not collide. `handoff serve`
	// passes its node's own registry (a prometheus.Registry made per
	// server.Server and served at /metrics), never the global default one.
	Registerer prometheus.Registerer
}

// PhoneGrant is what a phone's mobile token grants on the socket.
type PhoneGrant struct {
	// Channel is the phone's session channel, the only one it may use.
	Channel string
	// ClientID is its presence clientId ("phone:…"): stable for one
	// phone's claim and free of anything about the patient.
	ClientID string
	// Expires is when the grant must be checked again (the session's
	// expiry): the socket closes with 4009 then, and the phone reconnects
	// with the same token if the session still lives.
	Expires time.Time
}

// ErrPhoneUnknown is Config.Phone's answer for a token that names no
// live, unrevoked phone.
var ErrPhoneUnknown = errors.New("realtime: unknown or revoked mobile token")

// withDefaults returns cfg with zero fields set to their defaults.
func (cfg Config) withDefaults() Config {
	setDur := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	setInt := func(n *int, def int) {
		if *n <= 0 {
			*n = def
		}
	}
	setDur(&cfg.HeartbeatInterval, DefaultHeartbeatInterval)
	setDur(&cfg.HeartbeatTimeout, DefaultHeartbeatTimeout)
	setDur(&cfg.WriteTimeout, DefaultWriteTimeout)
	setDur(&cfg.AuthTimeout, DefaultAuthTimeout)
	setDur(&cfg.PhoneRecheck, DefaultPhoneRecheck)
	setInt(&cfg.SendQueueMessages, DefaultSendQueueMessages)
	setInt(&cfg.SendQueueBytes, DefaultSendQueueBytes)
	setInt(&cfg.MaxChannels, DefaultMaxChannels)
	setInt(&cfg.MaxBadFrames, DefaultMaxBadFrames)
	setInt(&cfg.MaxUnauthPerAddr, DefaultMaxUnauthPerAddr)
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = DefaultMaxFrameBytes
	}
	return cfg
}
