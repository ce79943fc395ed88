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

	id       string          // reader (set once, before CONNECTED)
	keyName  string          // reader
	clientID string          // reader
	cap      auth.Capability // reader
	expiry   *time.Timer     // reader
	authAsk  *time.Timer     // reader: sends AUTH ahead of expiry
	channels map[string]*channelState
	closed   bool // reader: the client sent CLOSE; forget the state
	started  time.Time

	q         outQueue
	lastSend  atomic.Int64 // unix ms of the last frame queued
	heartbeat *time.Ticker
	stopBeat  chan struct{}
	endOnce   sync.Once
	ending    atomic.Bool
}

func newConn(s *Server, ws *websocket.Conn, r *http.Request) *conn {
	c := &conn{s: s, ws: ws, done: make(chan struct{}), channels: make(map[string]*channelState), stopBeat: make(chan struct{}), started: time.Now()}
	c.echo = r.URL.Query().Get("echo") != "false"
	return c
}

// serve checks the query and credentials, sends CONNECTED, then reads
// frames until the socket ends.
func (c *conn) serve(r *http.Request) {
	defer close(c.done)
	defer c.finish()
	q := r.URL.Query()
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
	if !c.connect(r) {
		c.drain()
		return
	}
	go c.beat()
	for {
		typ, b, err := c.ws.Read(context.Background())
		if err != nil {
			return
		}
		_ = typ // each SDK frames by the format it asked for
		c.handle(b)
	}
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
	case ablyproto.ActionPresence, ablyproto.ActionObject, ablyproto.ActionAnnotation:
		if pm.MsgSerial != nil {
			c.nack(*pm.MsgSerial, errorInfo(400, ablyproto.CodeBadRequest, "presence, objects and annotations are not supported by handoff"))
		}
	case ablyproto.ActionAuth:
		c.reauth(pm)
	case ablyproto.ActionClose:
		// Forgotten before CLOSED goes out, so no resume can follow it.
		c.closed = true
		ctx, cancel := opContext()
		_ = c.s.store.Forget(ctx, c.id)
		cancel()
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
	mu         sync.Mutex
	frames     [][]byte
	bytes      int
	writing    bool
	closed     bool // no more frames are accepted
	closeAfter bool // close the socket once the queue is written
}

func (c *conn) enqueue(b []byte) bool {
	q := &c.q
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return true // the connection is ending; the client resumes
	}
	if len(q.frames)+1 > c.s.cfg.SendQueueMessages || q.bytes+len(b) > c.s.cfg.SendQueueBytes {
		q.mu.Unlock()
		c.disconnect(errSlowConsumer)
		return false
	}
	q.frames = append(q.frames, b)
	q.bytes += len(b)
	start := !q.writing
	q.writing = true
	q.mu.Unlock()
	c.lastSend.Store(time.Now().UnixMilli())
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
			q.frames, q.bytes = nil, 0
		}
		if b != nil {
			q.frames = append(q.frames, b)
		}
		start := !q.writing
		q.writing = true
		q.mu.Unlock()
		if start {
			go c.writeLoop()
		}
	})
}

func (c *conn) writeLoop() {
	q := &c.q
	typ := websocket.MessageText
	if c.format == ablyproto.FormatMsgpack {
		typ = websocket.MessageBinary
	}
	for {
		q.mu.Lock()
		if len(q.frames) == 0 {
			q.writing = false
			closeNow := q.closeAfter
			q.mu.Unlock()
			if closeNow {
				_ = c.ws.Close(websocket.StatusNormalClosure, "")
			}
			return
		}
		b := q.frames[0]
		q.frames[0] = nil
		q.frames = q.frames[1:]
		q.bytes -= len(b)
		q.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.WriteTimeout)
		err := c.ws.Write(ctx, typ, b)
		cancel()
		if err != nil {
			q.mu.Lock()
			q.closed, q.frames, q.writing = true, nil, false
			q.mu.Unlock()
			c.ending.Store(true)
			_ = c.ws.CloseNow()
			return
		}
	}
}

// beat sends a HEARTBEAT whenever nothing was sent for half of
// maxIdleInterval (ably-go needs protocol frames: WebSocket pings do not
// reset its read deadline), pings the socket to find dead peers, and keeps
// the connection's resumable state fresh in the store.
func (c *conn) beat() {
	every := c.s.cfg.MaxIdleInterval / 2
	t := time.NewTicker(every)
	defer t.Stop()
	lastKeep := time.Now()
	for {
		select {
		case <-c.stopBeat:
			return
		case <-t.C:
		}
		if c.ending.Load() {
			return
		}
		if time.Since(time.UnixMilli(c.lastSend.Load())) >= every {
			c.send(&ablyproto.ProtocolMessage{Action: ablyproto.ActionHeartbeat})
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.MaxIdleInterval)
		err := c.ws.Ping(ctx)
		cancel()
		if err != nil {
			_ = c.ws.CloseNow()
			return
		}
		if time.Since(lastKeep) > c.s.cfg.ConnectionStateTTL/4 {
			lastKeep = time.Now()
			ctx, cancel := opContext()
			_ = c.s.store.Keep(ctx, c.id, 2*c.s.cfg.ConnectionStateTTL)
			cancel()
		}
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
	close(c.stopBeat)
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
	ctx, cancel := opContext()
	defer cancel()
	var err error
	if c.closed {
		err = c.s.store.Forget(ctx, c.id)
	} else {
		err = c.s.store.Keep(ctx, c.id, c.s.cfg.ConnectionStateTTL)
	}
	// Names only: never the key, token or connection key.
	ev := c.s.log.Info()
	if err != nil {
		ev = c.s.log.Warn().Err(err)
	}
	ev.Str("route", "/").Str("conn", c.id).Str("key", c.keyName).Str("format", c.format.String()).
		Bool("closed_by_client", c.closed).Dur("duration", time.Since(c.started)).Msg("ably connection ended")
}
