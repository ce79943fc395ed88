package ablybridge

import (
	"context"
	"time"

	"github.com/handoff-health/handoff/hub"
)

// Progress is the bridge's durable state: which channels may have events
// not yet mirrored (the pending set), how far each channel has been
// mirrored (its cursor), and which node is mirroring a channel right now
// (a short lock). Use the memory implementation with the memory hub and the
// Redis one with the Redis hub, so the state lives exactly as long as the
// histories it points into.
//
// Crash safety rests on one ordering: MarkPending succeeds before the event
// it announces is published, and SetCursor is called only after Ably
// acknowledged the event. A node that dies anywhere in between leaves the
// channel pending with its cursor behind the event, and whoever loads the
// pending set next publishes it again under the same message id.
type Progress interface {
	// MarkPending adds channel to the pending set, or refreshes its mark,
	// with the store's current time. The hub aborts the publish if it fails.
	MarkPending(ctx context.Context, channel string) error

	// Pending lists every channel in the pending set, in no order.
	Pending(ctx context.Context) ([]string, error)

	// Mark returns channel's current mark, or ok=false if it is not pending.
	Mark(ctx context.Context, channel string) (m Mark, ok bool, err error)

	// Settle removes channel from the pending set if its mark is still m,
	// i.e. nothing was published to it since m was read. It reports whether
	// it removed it.
	Settle(ctx context.Context, channel string, m Mark) (bool, error)

	// Cursor returns the position up to which channel has been mirrored, or
	// the zero cursor if nothing has been.
	Cursor(ctx context.Context, channel string) (hub.Cursor, error)

	// SetCursor records that everything up to c has been mirrored. It never
	// moves a cursor backwards within one epoch (a slower node finishing
	// late must not undo a faster one); a cursor of another epoch replaces
	// the stored one, which is how the bridge follows a lost history.
	SetCursor(ctx context.Context, channel string, c hub.Cursor) error

	// Lock takes, or extends when owner already holds it, the right to
	// mirror channel for ttl. It reports false when another owner holds it.
	// The lock keeps two nodes from publishing the same events at once; it
	// is not needed for correctness (message ids are idempotent).
	Lock(ctx context.Context, channel, owner string, ttl time.Duration) (bool, error)

	// Unlock releases channel's lock if owner holds it.
	Unlock(ctx context.Context, channel, owner string) error
}

// Mark is the time, by the store's clock, of a channel's latest
// MarkPending, and how long ago that was when it was read.
type Mark struct {
	// At is the mark's time in Unix milliseconds of the store's clock.
	At int64
	// Age is how old the mark was when read.
	Age time.Duration
}
