package realtime

import (
	"errors"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/protocol"
)

// Resuming deep in a channel's history is streamed with backpressure
// before the hub subscription starts. hub.Subscribe replays synchronously
// into the sink, which must not block, so a resume from 1,000 events back
// would land in the send queue in one burst and overflow it: the client
// would be cut as a slow consumer on every attempt. Instead the reader
// copies history to the socket at the writer's pace, in rounds, until the
// remainder is small, and only then subscribes from where it got to; the
// hub replays that remainder and goes live with no gap and no duplicate.

// replayResult says how the streamed replay ended.
type replayResult int

const (
	// replayDone: history up to the returned cursor was queued and the
	// subscribed frame has been sent.
	replayDone replayResult = iota
	// replayUnrecoverable: since cannot be replayed; hub.Subscribe will say
	// recovered:false itself.
	replayUnrecoverable
	// replayFailed: the backend failed (an error frame was sent) or the
	// socket is closing.
	replayFailed
)

const (
	// replayTail is the remainder left for hub.Subscribe to replay: small
	// enough to sit in the send queue at once next to live traffic.
	replayTail = 32
	// maxReplayRounds stops chasing a channel that grows faster than the
	// client reads; the hub subscription then decides, and a client that
	// truly cannot keep up is cut as a slow consumer.
	maxReplayRounds = 8
)

// replay streams the history of f.Channel after f.since and returns the
// cursor of the last event queued. members, when not nil, go in the
// subscribed frame.
func (c *conn) replay(f clientFrame, members []protocol.PresenceMember) (hub.Cursor, replayResult) {
	pos := *f.since
	for round := 0; round < maxReplayRounds; round++ {
		ctx, cancel := opContext()
		evs, _, err := c.s.hub.History(ctx, f.Channel, pos)
		cancel()
		switch {
		case errors.Is(err, hub.ErrUnrecoverable) && round == 0:
			return pos, replayUnrecoverable
		case errors.Is(err, hub.ErrUnrecoverable):
			// Trimmed while we streamed: hub.Subscribe from pos reports it,
			// and the sink turns that into a resync frame.
			return pos, replayDone
		case err != nil:
			c.sendError(f.ID, f.Channel, protocol.CodeUnavailable, "the realtime backend is unavailable; retry")
			return pos, replayFailed
		}
		if round == 0 {
			recovered := true
			c.send(protocol.ServerFrame{Type: protocol.FrameSubscribed, Ref: f.ID, Channel: f.Channel, Recovered: &recovered, Cursor: pos.String(), Presence: members})
		}
		for _, ev := range evs {
			b, err := c.s.frames.event(ev)
			if err != nil {
				c.encodeFailed()
				return pos, replayFailed
			}
			if !c.enqueueWait(b) {
				return pos, replayFailed
			}
			pos = ev.Cursor
		}
		if len(evs) <= replayTail {
			break
		}
	}
	return pos, replayDone
}
