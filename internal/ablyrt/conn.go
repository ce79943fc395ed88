package ablyrt

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/backoff"
)

// conn is one Ably connection's transport. The reader goroutine runs
// every client frame to completion before reading the next, so the fields
// marked "reader" need no lock. Hub sinks and timers only enqueue.
type conn struct {
	s      *Server
	ws     *websocket.Conn
	format ablyproto.Format
	echo   bool
	done   chan struct{} // closed when the reader has finished

	id       string // reader (set once, before CONNECTED)
	keyName  string // reader
	prefix   string // hub-channel prefix of the key's app; set once at connect (scope.go)
	clientID string // reader
	// wildcard: the token allows any clientId ("*") and the client named
	// none, so CONNECTED says "*" (RSA7b2), not "" (reader).
	wildcard bool
	// anyClient (reader): the credentials may act for any clientId, so a
	// presence item names its own (auth.go identity).
	anyClient bool
	cap       auth.Capability // reader
	expiry    *time.Timer     // reader
	authAsk   *time.Timer     // reader: sends AUTH ahead of expiry
	channels  map[string]*channelState
	closed    bool // reader: the client sent CLOSE; forget the state
	// mayResend (reader) is set on a transport that resumed its
	// connection, until a msgSerial the store has no answer for: only
	// until then can a MESSAGE be a resend of one answered earlier. A new
	// connection's id is fresh, so the store holds nothing for it.
	mayResend bool
	// answered (reader) is the highest msgSerial this transport has
	// answered, -1 before the first. The SDKs may send one serial twice
	// on one transport (ably-go: a message flushed from a channel queue
	// on CONNECTED, then resent by resendAcks after the resume); the copy
	// gets no second answer, since ably-go panics on an ACK with nothing
	// pending ("never ACK a serial twice", ABLY-PROTOCOL.md).
	answered int64
	// resumed (reader, set once) says this transport resumed an existing
	// connection; presenceLost that the connection's presence members
	// were removed while it was gone, so no ATTACHED on this transport
	// says RESUMED and the SDKs re-enter (RTP17i).
	resumed      bool
	presenceLost atomic.Bool
	started      time.Time

	q outQueue
	// beatTimer is the armed heartbeat (beat); lastKeep is when the
	// connection's state was last kept fresh in the store (beat only).
	beatTimer atomic.Pointer[time.Timer]
	lastKeep  atomic.Int64  // unix ns
	beats     atomic.Uint32 // beats so far: every pingEvery-th pings
	endOnce   sync.Once
	ending    atomic.Bool
	// keyNonce is the nonce of the connectionKey this transport issued
	// last (connectionKey): only that key resumes the connection while
	// this transport holds it (Server.superseded).
	keyNonce atomic.Pointer[string]
	// holdMu keeps a new key's nonce and the store's record of it in step:
	// an in-band AUTH issues a key and records it under holdMu, and the
	// beat's Refresh reads the nonce and asks under it, so a beat never
	// mistakes the transport's own new key for another node's takeover.
	holdMu sync.Mutex
}

func newConn(s *Server, ws *websocket.Conn) *conn {
	return &conn{s: s, ws: ws, done: make(chan struct{}), channels: make(map[string]*channelState), started: time.Now(), answered: -1}
}

// serve checks the query and credentials, sends CONNECTED, then reads
// frames until the socket ends.
func (c *conn) serve(r *http.Request) {
	defer close(c.done)
	defer c.finish()
	q := r.URL.Query() // parsed once: the connect path reads it too
	c.echo = q.Get("echo") != "false"
	f, ok := ablyproto.ParseFormat(q.Get("format"))
	if !ok {
		c.fatal(errorInfo(400, ablyproto.CodeBadRequest, "format must be json or msgpack"))
		c.drain()
		return
	}
	c.format = f
	if v, err := strconv.ParseFloat(q.Get("v"), 64); err != nil || v < 2 || v >= 7 {
		c.fatal(errorInfo(400, ablyproto.CodeProtocolVersion, "unsupported protocol version: v must be 2 to 6"))
		c.drain()
		return
	}
	var connected bool
	onShortStack(func() { connected = c.connect(r, q) })
	if !connected {
		c.drain()
		return
	}
	c.lastKeep.Store(time.Now().UnixNano())
	c.scheduleBeat()
	for {
		typ, b, err := c.ws.Read(context.Background())
		if err != nil {
			return
		}
		_ = typ // each SDK frames by the format it asked for
		onShortStack(func() { c.handle(b) })
	}
}

// onShortStack runs f on a short-lived goroutine and waits for it. The
// reader goroutine lives as long as its socket, and a goroutine's stack
// keeps the size of its deepest call: running the deep work (decoding,
// hub and store calls, encoding) elsewhere keeps an idle socket's stack
// at what a blocked read needs. Client frames are rare next to
// deliveries, so the extra goroutine per frame costs little.
func onShortStack(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

// handle runs one client frame.
func (c *conn) handle(b []byte) {
	if c.ending.Load() {
		return
	}
	pm, err := ablyproto.Decode(c.format, b)
	if err != nil {
		c.fatal(errorInfo(400, ablyproto.CodeBadRequest, "malformed protocol message"))
		return
	}
	switch pm.Action {
	case ablyproto.ActionHeartbeat:
		if pm.ID != "" {
			c.send(&ablyproto.ProtocolMessage{Action: ablyproto.ActionHeartbeat, ID: pm.ID})
		}
	case ablyproto.ActionAttach:
		c.attach(pm)
	case ablyproto.ActionDetach:
		c.detach(pm)
	case ablyproto.ActionMessage:
		c.publish(pm)
	case ablyproto.ActionPresence:
		c.presence(pm)
	case ablyproto.ActionObject, ablyproto.ActionAnnotation:
		if pm.MsgSerial != nil {
			c.nack(*pm.MsgSerial, errorInfo(400, ablyproto.CodeBadRequest, "objects and annotations are not supported by handoff"))
		}
	case ablyproto.ActionAuth:
		c.reauth(pm)
	case ablyproto.ActionClose:
		// Forgotten before CLOSED goes out, so no resume can follow it.
		c.closed = true
		ctx, cancel := opContext()
		_ = c.s.store.Forget(ctx, c.id)
		cancel()
		c.closePresence()
		c.end(&ablyproto.ProtocolMessage{Action: ablyproto.ActionClosed}, false)
	case ablyproto.ActionDisconnect:
		c.end(nil, false)
	}
}

func errorInfo(status, code int, msg string) *ablyproto.ErrorInfo {
	return &ablyproto.ErrorInfo{Message: msg, Code: code, StatusCode: status, HRef: "https://help.ably.io/error/" + strconv.Itoa(code)}
}

var (
	errShutdown     = errorInfo(503, ablyproto.CodeDisconnected, "the server is shutting down: resume (on another node)")
	errSlowConsumer = errorInfo(503, ablyproto.CodeDisconnected, "slow consumer: the send queue overflowed; resume from your channel serials")
	errTokenExpired = errorInfo(401, ablyproto.CodeTokenExpired, "token expired")
)

// fatal sends a connection-level ERROR and closes: the SDK fails the
// connection (or, for a token error, renews once and retries).
func (c *conn) fatal(e *ablyproto.ErrorInfo) {
	c.end(&ablyproto.ProtocolMessage{Action: ablyproto.ActionError, Error: e}, false)
}

// disconnect sends DISCONNECTED and closes; the SDK resumes at once. It
// may be called from any goroutine.
func (c *conn) disconnect(e *ablyproto.ErrorInfo) {
	c.end(&ablyproto.ProtocolMessage{Action: ablyproto.ActionDisconnected, Error: e}, e == errSlowConsumer)
}

// send queues a frame; false if the queue overflowed (the connection is
// then being disconnected as a slow consumer).
func (c *conn) send(pm *ablyproto.ProtocolMessage) bool {
	b, err := ablyproto.Encode(c.format, pm)
	if err != nil {
		c.s.log.Error().Str("route", "/").Str("conn", c.id).Msg("ably: frame cannot be encoded; disconnecting")
		c.disconnect(errorInfo(500, ablyproto.CodeInternal, "internal error"))
		return false
	}
	return c.enqueue(b)
}

// outQueue holds encoded frames for the writer; at most one writer runs,
// only while frames wait.
type outQueue struct {
	mu     sync.Mutex
	frames [][]byte
	// pending and bytes count the frames queued or being written: what
	// Config.SendQueueMessages/Bytes bound. A batch the writer has taken
	// counts until it is written, so a writer stuck on a slow client
	// holds no more than the bounds allow.
	pending    int
	bytes      int
	writing    bool
	closed     bool // no more frames are accepted
	closeAfter bool // close the socket once the queue is written
	// sent says a frame was queued since the last beat looked: a flag set
	// under the lock enqueue holds anyway, where a timestamp would cost a
	// clock read per delivered frame.
	sent bool
	// dropped counts the times the queued frames were dropped; the writer
	// stops writing a batch it took before the count changed.
	dropped atomic.Uint32
}

func (c *conn) enqueue(b []byte) bool {
	q := &c.q
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return true // the connection is ending; the client resumes
	}
	if q.pending+1 > c.s.cfg.SendQueueMessages || q.bytes+len(b) > c.s.cfg.SendQueueBytes {
		q.mu.Unlock()
		c.disconnect(errSlowConsumer)
		return false
	}
	q.frames = append(q.frames, b)
	q.pending++
	q.bytes += len(b)
	q.sent = true
	start := !q.writing
	q.writing = true
	q.mu.Unlock()
	if start {
		go c.writeLoop()
	}
	return true
}

// end stops the connection: final (if any) is the last frame written,
// after what is queued unless dropQueued; then the socket closes. Only the
// first call counts. It never blocks.
func (c *conn) end(final *ablyproto.ProtocolMessage, dropQueued bool) {
	c.endOnce.Do(func() {
		c.ending.Store(true)
		var b []byte
		if final != nil {
			b, _ = ablyproto.Encode(c.format, final)
		}
		q := &c.q
		q.mu.Lock()
		q.closed, q.closeAfter = true, true
		if dropQueued {
			for _, f := range q.frames {
				q.bytes -= len(f)
			}
			q.pending -= len(q.frames)
			q.frames = nil
			q.dropped.Add(1)
		}
		if b != nil {
			q.frames = append(q.frames, b)
			q.pending++
			q.bytes += len(b)
		}
		start := !q.writing
		q.writing = true
		q.mu.Unlock()
		if start {
			go c.writeLoop()
		}
	})
}

// writeLoop writes queued frames in order until the queue is empty, then
// exits (an idle socket holds no writer and no queue buffer). Frames are
// taken in batches, so the lock is held once per batch, not per frame.
func (c *conn) writeLoop() {
	q := &c.q
	typ := websocket.MessageText
	if c.format == ablyproto.FormatMsgpack {
		typ = websocket.MessageBinary
	}
	var batch [][]byte
	for {
		var gen uint32
		var ok, closeNow bool
		batch, gen, ok, closeNow = q.next(batch)
		if !ok {
			if closeNow {
				_ = c.ws.Close(websocket.StatusNormalClosure, "")
			}
			return
		}
		err := c.writeBatch(typ, batch, gen)
		q.written(batch, err != nil)
		clear(batch)
		if err != nil {
			c.ending.Store(true)
			_ = c.ws.CloseNow()
			return
		}
	}
}

// next hands the writer every queued frame, in batch's array (reused),
// and the generation they belong to. When none wait it reports !ok, and
// the writer exits: the queue keeps no buffer, and closeNow says the
// socket is to be closed.
func (q *outQueue) next(batch [][]byte) (_ [][]byte, gen uint32, ok, closeNow bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.frames) == 0 {
		q.writing = false
		q.frames = nil
		return batch, 0, false, q.closeAfter
	}
	batch, q.frames = q.frames, batch[:0]
	return batch, q.dropped.Load(), true, false
}

// written releases a batch the writer is done with (written, dropped or
// failed); after a failure the queue takes nothing more.
func (q *outQueue) written(batch [][]byte, failed bool) {
	size := 0
	for _, b := range batch {
		size += len(b)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending -= len(batch)
	q.bytes -= size
	if failed {
		q.closed, q.frames, q.writing = true, nil, false
	}
}

// writeBatch writes frames in order until one fails, or until the queued
// frames are dropped (generation gen is over). One timer per batch bounds
// each frame's write: a context with a deadline per frame costs garbage
// per delivered frame (the context and coder/websocket's own timer).
// Firing kills the socket, so the write fails.
func (c *conn) writeBatch(typ websocket.MessageType, batch [][]byte, gen uint32) error {
	timer := time.AfterFunc(c.s.cfg.WriteTimeout, func() { _ = c.ws.CloseNow() })
	defer timer.Stop()
	for _, b := range batch {
		if c.q.dropped.Load() != gen {
			return nil
		}
		timer.Reset(c.s.cfg.WriteTimeout)
		if err := c.ws.Write(context.Background(), typ, b); err != nil {
			return err
		}
	}
	return nil
}

// takeSent reports whether a frame was queued since the last call.
func (q *outQueue) takeSent() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	sent := q.sent
	q.sent = false
	return sent
}

// pingEvery is how many beats pass between WebSocket pings: at most 1.5 ×
// maxIdleInterval (17–22.5 s by default, near the native socket's 25 s).
// Pinging every beat cost a ping, a pong and three wakeups per socket
// every 7.5 s, 3.3 times the native socket's rate, for no earlier
// detection a client needs (the SDKs time out on their own).
const pingEvery = 3

// beat sends a HEARTBEAT whenever nothing was sent since the last beat,
// at most half of maxIdleInterval ago (ably-go needs protocol frames:
// WebSocket pings do not reset its read deadline), pings the socket every
// pingEvery beats to find dead peers, and keeps the connection's
// resumable state fresh in the store. It runs on its timer's goroutine,
// which exists only while it runs, and arms the next beat: an idle socket
// holds no heartbeat goroutine.
func (c *conn) beat() {
	if c.ending.Load() {
		return
	}
	if !c.q.takeSent() {
		c.send(&ablyproto.ProtocolMessage{Action: ablyproto.ActionHeartbeat})
		// The HEARTBEAT is not traffic: an idle connection gets one every
		// beat. (A frame queued meanwhile is missed: one spare HEARTBEAT.)
		c.q.takeSent()
	}
	if c.beats.Add(1)%pingEvery == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.MaxIdleInterval)
		err := c.ws.Ping(ctx)
		cancel()
		if err != nil {
			_ = c.ws.CloseNow()
			return
		}
	}
	if time.Since(time.Unix(0, c.lastKeep.Load())) > c.s.cfg.ConnectionStateTTL/4 {
		c.lastKeep.Store(time.Now().UnixNano())
		ctx, cancel := opContext()
		c.holdMu.Lock()
		held, err := c.s.store.Refresh(ctx, c.id, c.nonce(), 2*c.s.cfg.ConnectionStateTTL)
		c.holdMu.Unlock()
		cancel()
		if err == nil && !held {
			// Another node's transport took the connection over (a resume
			// or recover there): end this one, as claimID does on one node.
			// Its client resumes with a superseded key and gets a new
			// connection (80008).
			c.s.log.Info().Str("route", "/").Str("conn", c.id).Msg("ably connection taken over on another node; transport ended")
			_ = c.ws.CloseNow()
			return
		}
	}
	c.scheduleBeat()
}

// scheduleBeat arms the next beat. A fresh timer per beat (rather than
// Reset) keeps the handoff race-free; finish stops whichever is current,
// and a beat that fires after the end does nothing. The interval is
// spread (backoff.Spread), so the beats of sockets that connected in one
// burst do not keep firing, and pinging, in bursts (2,000 at once on the
// fan-out benchmark; spreading them did not move its p99 measurably).
func (c *conn) scheduleBeat() {
	if !c.ending.Load() {
		c.beatTimer.Store(time.AfterFunc(backoff.Spread(c.s.cfg.MaxIdleInterval/2), c.beat))
	}
}

// drain waits for the client to finish the close handshake, so it reads
// the ERROR before the socket goes.
func (c *conn) drain() {
	for {
		if _, _, err := c.ws.Read(context.Background()); err != nil {
			return
		}
	}
}

// finish releases what the connection held. Its state stays resumable for
// ConnectionStateTTL unless the client CLOSEd it.
func (c *conn) finish() {
	c.end(nil, false)
	if t := c.beatTimer.Load(); t != nil {
		t.Stop()
	}
	_ = c.ws.CloseNow()
	for _, t := range []*time.Timer{c.expiry, c.authAsk} {
		if t != nil {
			t.Stop()
		}
	}
	for _, cs := range c.channels {
		cs.stop()
	}
	if c.id == "" {
		return
	}
	if !c.closed {
		c.detachPresence()
	}
	ctx, cancel := opContext()
	defer cancel()
	var err error
	if c.closed {
		err = c.s.store.Forget(ctx, c.id)
	} else {
		err = c.s.store.Release(ctx, c.id, c.nonce(), c.s.cfg.ConnectionStateTTL)
	}
	// Names only: never the key, token or connection key.
	ev := c.s.log.Info()
	if err != nil {
		ev = c.s.log.Warn().Err(err)
	}
	ev.Str("route", "/").Str("conn", c.id).Str("key", c.keyName).Str("format", c.format.String()).
		Bool("closed_by_client", c.closed).Dur("duration", time.Since(c.started)).Msg("ably connection ended")
}
