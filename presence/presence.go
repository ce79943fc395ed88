// Package presence keeps who is present on a hub channel: the members
// that entered it over a realtime connection (Ably PRESENCE, or the native
// protocol's presence frames), their data, and the ENTER/UPDATE/LEAVE
// events between them. It is protocol-neutral, like the hub: internal/ablyrt
// maps it onto Ably's PRESENCE/SYNC frames and REST presence, the native
// realtime server onto its own frames, and the phone page uses it so the
// desktop widget can show that the phone is really connected.
//
// A member is identified on a channel by (ConnectionID, ClientID), as in
// Ably (spec RTP2d). An ENTER from a member already present is stored as an
// UPDATE's change of data but published as the action the client sent
// (Ably delivers ENTER again; the SDKs treat it as an update).
//
// Lifetime of a member (DESIGN: "never silence, never a lie"):
//   - it leaves when its client sends LEAVE, or when the connection closes
//     cleanly (CLOSE) — immediately, with a synthesized LEAVE;
//   - when the transport drops without CLOSE, the connection's members stay
//     for Grace (the connection may resume, on any node: Claim moves them to
//     the resuming node), then a synthesized LEAVE removes them;
//   - when a node dies, its members are removed by the other nodes within
//     NodeTimeout + SweepInterval (Redis registry), each with a synthesized
//     LEAVE. A connection that resumes after its members were removed learns
//     it from Claim, so the transport can make the client re-enter.
//
// Synthesized LEAVEs carry an ID that does not start with the member's
// connectionId (spec RTP2b1): clients then order them by Timestamp.
//
// Implementations: registry_memory.go (one node) and registry_redis.go
// (every node on one Redis); docs/presence.md has the lifetimes and keys.
//
// # Locks
//
// Memory.mu guards the memory registry's state; Apply queues its event on
// the fanout while holding it, so queue order is apply order: Memory.mu →
// fanout.mu. fanout.mu (local subscribers and their queues) and serials.mu
// (the Redis registry's delivery positions) are leaves. No lock is held
// while a subscriber's fn runs or while Redis is called.
package presence

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Action is a presence action; the numbers are Ably's (spec TP2).
type Action int

const (
	Absent  Action = 0
	Present Action = 1 // a member as listed by Members / a SYNC
	Enter   Action = 2
	Leave   Action = 3
	Update  Action = 4
)

// Member is one present member of a channel, or, inside an Event, the
// member as the event left it.
type Member struct {
	Channel      string `json:"channel"`
	ClientID     string `json:"clientId"`
	ConnectionID string `json:"connectionId"`
	// ID is the message id of the event that last changed the member:
	// "<connectionId>:<msgSerial>:<index>" for a client's own action (so
	// clients can order them, spec RTP2b2), or "<other>:…" when synthesized.
	ID string `json:"id"`
	// Data is the member's data as JSON (a JSON string, object, array…);
	// Encoding is what the client sent with it ("json" for an object it
	// encoded). Binary/encrypted data is refused by the transports before it
	// gets here, as for messages.
	Data      json.RawMessage `json:"data,omitempty"`
	Encoding  string          `json:"encoding,omitempty"`
	Timestamp time.Time       `json:"timestamp"`
}

// Event is one presence change, as fanned out to every node's subscribers
// and kept in the channel's presence history.
type Event struct {
	Action Action `json:"action"`
	Member
	// Synthesized is true for a LEAVE the server made (connection closed or
	// gone for good, node dead), false for one the client sent.
	Synthesized bool `json:"synthesized,omitempty"`
}

// Change is what a transport asks for on behalf of its client.
type Change struct {
	Action       Action // Enter, Update or Leave
	Channel      string
	ClientID     string // from the token/connection, never empty
	ConnectionID string
	ID           string // "<connectionId>:<msgSerial>:<index>"
	Data         json.RawMessage
	Encoding     string
}

// HistoryQuery selects presence history, newest first unless Forwards.
type HistoryQuery struct {
	Start, End time.Time // zero: unbounded
	Limit      int       // 0: 100; at most 1000
	Forwards   bool
}

// Registry is the presence store. Implementations: NewMemory (one node) and
// NewRedis (every node sharing one Redis). All methods are safe for
// concurrent use.
type Registry interface {
	// Apply records a change and publishes its event to Subscribe'rs on
	// every node; it returns once the change is durable where the registry
	// keeps state. A LEAVE for a member that is not present is a no-op that
	// publishes nothing (ok=false); other errors are ErrBad… or backend
	// failures (the transport NACKs them).
	Apply(ctx context.Context, c Change) (ev Event, ok bool, err error)

	// Members lists a channel's present members (action Present), in a
	// stable order (by ClientID, then ConnectionID).
	Members(ctx context.Context, channel string) ([]Member, error)

	// History lists the channel's presence events (bounded: the newest
	// HistorySize per channel, for HistoryTTL).
	History(ctx context.Context, channel string, q HistoryQuery) ([]Event, error)

	// Subscribe calls fn with every event of the channel published after
	// Subscribe returns, on any node, in the order the registry applied
	// them. fn must not block (queue and return). Cancel stops it.
	Subscribe(channel string, fn func(Event)) (cancel func())

	// CloseConnection removes every member of the connection now, each with a
	// synthesized LEAVE (the client sent CLOSE, or a token/capability
	// change took its channels away).
	CloseConnection(ctx context.Context, connectionID string) error
	// DetachConnection says the connection's transport dropped without CLOSE: its
	// members leave (synthesized) after Grace unless Claim is called for it
	// first, on any node. A node's Detach leaves alone members that another
	// node claimed meanwhile (the old transport noticed the drop late); on
	// one node, the transport calls it only while the dropped transport
	// still owns the connection.
	DetachConnection(ctx context.Context, connectionID string) error
	// Claim says the connection is live on this node (new, or resumed here,
	// possibly from another node). lost is true when the connection had
	// members that were already removed because it was gone too long: the
	// transport must then not report its channels as resumed, so clients
	// re-enter (spec RTP17i).
	Claim(ctx context.Context, connectionID string) (lost bool, err error)

	// Stop ends background work (timers, sweeper, subscriptions). Members
	// of this node's live connections are not removed by Stop: on shutdown
	// the transports Detach their connections first.
	Stop()
}

// Defaults.
const (
	DefaultGrace         = 15 * time.Second // Ably's presence leave delay after a disconnect
	DefaultNodeTimeout   = 15 * time.Second // a node silent this long is dead
	DefaultSweepInterval = 5 * time.Second
	DefaultHistorySize   = 100
	DefaultHistoryTTL    = 24 * time.Hour
)

// Errors for bad input; transports map them to 4xx/40000.
var (
	ErrBadChange  = errors.New("presence: invalid change")
	ErrNoClientID = errors.New("presence: a member needs a clientId")
	ErrTooLarge   = errors.New("presence: member data too large")
	ErrBadChannel = errors.New("presence: invalid channel name")
)
