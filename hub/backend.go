package hub

import (
	"context"
	"errors"
)

// ErrUnrecoverable is returned by Backend.History when the events after a
// cursor can no longer be replayed: they were trimmed from the bounded
// history, the history expired, or the epoch changed because the backend
// lost its data. The caller must treat its state as stale (recovered:false).
var ErrUnrecoverable = errors.New("hub: history cannot be recovered from this cursor")

// ErrUnavailable wraps backend failures (e.g. Redis unreachable). A publish
// that returns it was not accepted; nothing is retried behind the caller's back.
// It says so to code that cannot import hub through an Unavailable() bool
// method (internal/httpx answers such errors 503 "unavailable").
var ErrUnavailable error = unavailable{}

type unavailable struct{}

func (unavailable) Error() string     { return "hub: backend unavailable" }
func (unavailable) Unavailable() bool { return true }

// Backend stores channel histories and carries events between the nodes of
// a deployment. The hub owns subscribers and fan-out on its node; a backend
// only has to get each event, once and in order, to every node that asked
// for the channel.
//
// Ordering and atomicity: Publish assigns the next offset of the channel,
// appends the event to the bounded history (trimming the oldest beyond the
// size limit and refreshing the TTL) and announces it to subscribed nodes
// as one atomic step, so offsets within an epoch are dense (1, 2, 3, …) and
// history and live delivery agree. The event is stored whole, its Origin
// included: Publish's result, live delivery and History return the same
// ID, Type, Data, TS and Origin. Events of one channel reach the Handler
// in offset order; events of different channels have no relative order.
//
// Deduplication (dedupe.go): a publication whose Origin.MsgID was
// published on the channel within the dedupe window is not stored or
// announced; Publish returns the first event, with Duplicate set. The check
// is part of the same atomic step, so of concurrent publishes of one id,
// on any nodes, exactly one stores it.
//
// Unavailability: when the backend cannot be reached, Publish, History and
// Top return an error wrapping ErrUnavailable and nothing is stored. Live
// delivery may miss events while the link is down; once it is back the
// backend calls Handler.Resync so the hub can repair every subscriber from
// history (or tell it recovered:false). A backend never drops an accepted
// event silently: either it is in history, or its Publish returned an error.
type Backend interface {
	// Publish atomically appends an event to channel's history and announces
	// it to every node subscribed to channel. It returns the stored event,
	// or the first one when p's MsgID is a duplicate (Event.Duplicate).
	Publish(ctx context.Context, channel string, p Publication) (Event, error)

	// History returns, in order, the events of channel after since and the
	// channel's current top position. The zero cursor means "from the first
	// event of the current epoch". It returns ErrUnrecoverable (with the
	// current top) when since is from another epoch, is ahead of the top, or
	// points before the oldest retained event.
	History(ctx context.Context, channel string, since Cursor) ([]Event, Cursor, error)

	// Top returns the position of the channel's newest event, or the zero
	// cursor for a channel with no history.
	Top(ctx context.Context, channel string) (Cursor, error)

	// Subscribe makes this node receive channel's live events. It returns
	// only once the subscription is in effect, so a History or Top read
	// after it cannot miss an event that is neither in the result nor
	// delivered live. Calls are counted by the hub: one per channel per node.
	Subscribe(ctx context.Context, channel string) error

	// Unsubscribe stops live delivery of channel to this node.
	Unsubscribe(ctx context.Context, channel string) error

	// Run delivers live events to h until ctx ends or Close is called.
	// It is started once, by Hub.Run.
	Run(ctx context.Context, h Handler) error

	// Ping reports whether the backend can take a publish now (for
	// /readyz): reachable, and for Redis a writable master in a healthy
	// cluster, not merely a server that answers.
	Ping(ctx context.Context) error

	// Close releases the backend's resources.
	Close() error
}

// Handler receives what a Backend delivers.
type Handler interface {
	// HandleEvent is called for every live event of a subscribed channel,
	// from the backend's delivery goroutines (one channel's events from one
	// goroutine, in offset order). It must not block for long: the other
	// channels of that goroutine wait for it.
	HandleEvent(ev Event)
	// Resync is called after live delivery was interrupted (e.g. Redis
	// reconnected): events may have been missed and must be recovered. It
	// is called from a goroutine other than the delivery goroutines, with
	// no backend lock held, and may take as long as reading history does.
	Resync()
}
