package presence

import (
	"time"

	"github.com/handoff-health/handoff/hub"
)

// Limits of the registry, with the reason for each. The lifetimes a client
// can observe (Grace, NodeTimeout, SweepInterval, history) are the Default…
// constants in presence.go.
const (
	// MaxDataBytes bounds one member's data: the same 64 KiB as a hub
	// event, since both travel in the same frames and queues.
	MaxDataBytes = hub.MaxDataBytes

	// MaxIDLen bounds a clientId, connectionId, message id and encoding, as
	// the hub bounds an event's origin ids.
	MaxIDLen = hub.MaxOriginIDLen

	// DefaultLostTTL is how long a registry remembers a connection whose
	// members it removed because it was gone too long, so that a late
	// Claim reports lost=true. It is twice Ably's connectionStateTtl (two
	// minutes): no SDK resumes a connection after that, it starts a new one.
	DefaultLostTTL = 4 * time.Minute

	// maxLost bounds the memory registry's remembered lost connections: at
	// a thousand disconnects a minute for four minutes there are 4000, so a
	// hundred thousand is never reached by a clinic, and bounds the map if
	// something misbehaves. Past it the oldest are forgotten (their Claim
	// says lost=false, as after DefaultLostTTL).
	maxLost = 100_000

	// defaultHistoryLimit and maxHistoryLimit are Ably's REST presence
	// history defaults (limit 100, at most 1000).
	defaultHistoryLimit = 100
	maxHistoryLimit     = 1000

	// defaultMemorySweep is how often the memory registry looks for
	// detached connections whose Grace ended. A second is well under Grace
	// (15 s), so a LEAVE comes at most a second late.
	defaultMemorySweep = time.Second
)
