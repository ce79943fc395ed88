package realtime

import (
	"context"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/handoff-health/handoff/internal/backoff"
)

// sendQueue holds the encoded frames waiting for one socket's writer.
// It is bounded in frames and bytes (Config.SendQueueMessages/Bytes);
// overflowing either closes the socket as a slow consumer, so a client
// that stops reading costs a bounded amount of memory.
//
// At most one writer goroutine runs per socket, and only while frames are
// waiting: it exits when the queue drains, so an idle socket holds no
// writer stack and no queue buffer.
type sendQueue struct {
	mu sync.Mutex
	// drained is signalled (with mu) whenever frames leave the queue or it
	// shuts, for enqueueWait.
	drained sync.Cond
	frames  [][]byte
	// pending and pendingBytes count frames queued or being written; they
	// are what the limits apply to.
	pending      int
	pendingBytes int
	peak         int // this socket's largest pending, to raise the metric rarely
	writing      bool
	closed       bool
}

// shut stops the queue: later frames are dropped (the socket is closing;
// the client resumes from its cursor) and the writer stops.
func (q *sendQueue) shut() {
	q.mu.Lock()
	q.closed = true
	q.frames = nil
	q.mu.Unlock()
	q.drained.Broadcast()
}

// enqueue queues b for the writer, starting one if none runs. It never
// blocks. It returns false when the queue is full, after starting the
// slow-consumer close; frames offered to a closing socket are dropped and
// reported as accepted so the hub does not count them as refusals.
func (c *conn) enqueue(b []byte) bool {
	q := &c.q
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return true
	}
	if q.pending+1 > c.s.cfg.SendQueueMessages || q.pendingBytes+len(b) > c.s.cfg.SendQueueBytes {
		q.mu.Unlock()
		if c.closeWith(CloseSlowConsumer, "slow consumer: send queue full") {
			c.s.metrics.slowConsumers.Inc()
		}
		return false
	}
	q.frames = append(q.frames, b)
	q.pending++
	q.pendingBytes += len(b)
	if q.pending > q.peak {
		q.peak = q.pending
		c.s.metrics.observeQueue(q.pending, q.pendingBytes)
	}
	start := !q.writing
	q.writing = true
	q.mu.Unlock()
	if start {
		go c.writeLoop()
	}
	return true
}

// enqueueWait is enqueue for the replay stream: it first waits, on the
// reader goroutine, until the queue is under half its bounds, so a replay
// moves at the writer's pace and leaves the other half for live frames.
// It returns false once the socket is closing.
func (c *conn) enqueueWait(b []byte) bool {
	q := &c.q
	q.mu.Lock()
	for !q.closed && q.pending > 0 &&
		(q.pending >= c.s.cfg.SendQueueMessages/2 || q.pendingBytes+len(b) > c.s.cfg.SendQueueBytes/2) {
		q.drained.Wait()
	}
	closed := q.closed
	q.mu.Unlock()
	return !closed && c.enqueue(b)
}

// writeLoop writes queued frames in order until the queue is empty or
// closed. Frames are taken in batches so the lock is held once per batch,
// not once per frame.
func (c *conn) writeLoop() {
	q := &c.q
	var batch [][]byte
	for {
		q.mu.Lock()
		if q.closed || len(q.frames) == 0 {
			q.writing = false
			q.frames = nil // an idle socket keeps no buffer
			q.mu.Unlock()
			return
		}
		batch, q.frames = q.frames, batch[:0]
		q.mu.Unlock()

		n, size, err := c.writeBatch(batch)
		clear(batch)
		c.s.metrics.framesOut.Add(float64(n))
		q.mu.Lock()
		q.pending -= len(batch)
		q.pendingBytes -= size
		q.mu.Unlock()
		q.drained.Broadcast()
		if err != nil {
			// A write that fails or times out has already killed the
			// socket (coder/websocket closes it on any write error).
			c.closeWith(closeAbnormalLocal, "")
		}
	}
}

// writeBatch writes frames until one fails or the socket starts closing.
// It returns how many were written and the bytes of the whole batch.
func (c *conn) writeBatch(batch [][]byte) (written, size int, err error) {
	for _, b := range batch {
		size += len(b)
	}
	// One timer per batch bounds each frame's write. A context with a
	// deadline per frame cost ~800 B of garbage per delivered frame (the
	// context and coder/websocket's own timer), which made GC the main
	// source of fan-out tail latency. Firing kills the socket, as a write
	// timeout always did.
	timer := time.AfterFunc(c.s.cfg.WriteTimeout, func() { _ = c.ws.CloseNow() })
	defer timer.Stop()
	for _, b := range batch {
		if c.closing.Load() {
			return written, size, nil
		}
		timer.Reset(c.s.cfg.WriteTimeout)
		err = c.ws.Write(context.Background(), websocket.MessageText, b)
		if err != nil {
			return written, size, err
		}
		written++
	}
	return written, size, nil
}

// ping is the heartbeat timer's callback: a WebSocket ping that must be
// answered within HeartbeatTimeout, or the peer is dead and its socket is
// dropped without a handshake (there is nobody to shake hands with). It
// runs on the timer's own goroutine, which exists only while it waits.
func (c *conn) ping() {
	if c.closing.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.HeartbeatTimeout)
	err := c.ws.Ping(ctx)
	cancel()
	if err != nil {
		c.closeWith(closeAbnormalLocal, "")
		return
	}
	c.scheduleHeartbeat()
}

// scheduleHeartbeat arms the next ping. A fresh timer per beat (rather than
// Reset) keeps the timer handoff race-free; the pointer lets finish stop
// whichever timer is current.
func (c *conn) scheduleHeartbeat() {
	if !c.closing.Load() {
		c.heartbeat.Store(time.AfterFunc(backoff.Spread(c.s.cfg.HeartbeatInterval), c.ping))
	}
}
