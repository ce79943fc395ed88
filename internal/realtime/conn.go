package realtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/protocol"
)

// conn is one client socket.
//
// Goroutines: the socket's reader goroutine reads frames and runs each
// client op to completion (on a short-lived helper, see onShortStack)
// before reading the next, so ops never overlap and the fields marked
// "reader" need no lock. The writer (queue.go) runs only while frames
// wait. Hub deliveries arrive on the hub's goroutines and only ever
// enqueue. Timers only close the socket.
type conn struct {
	s       *Server
	ws      *websocket.Conn
	id      string
	started time.Time

	claims auth.Claims                  // reader
	subs   map[string]*hub.Subscription // reader
	// phone is set when the socket authenticated with a phone's mobile
	// token rather than a desktop JWT (claims then hold only Expires).
	phone *PhoneGrant // reader
	// watches are the channels subscribed with presence (presence.go).
	watches map[string]*presenceWatch // reader
	// entered: the socket has made a presence change, so its members must
	// be ended with it; presenceClaimed: the registry knows the socket.
	entered, presenceClaimed bool        // reader
	presenceSerial           int         // reader
	badFrames                int         // reader
	expiry                   *time.Timer // reader
	// recheck re-verifies a phone socket's token (auth.go); its own
	// callback resets it, so it is read under recheckMu.
	recheckMu sync.Mutex
	recheck   *time.Timer
	// unauthenticated releases the socket's place in its address's count
	// of unauthenticated sockets (unauth.go), once its token is checked.
	unauthenticated func() // reader
	heartbeat       atomic.Pointer[time.Timer]

	q sendQueue

	closeOnce sync.Once
	closing   atomic.Bool
	// closeCode is the code this side closed with, or the peer's, once
	// known (for the log line and the disconnects metric).
	closeCode atomic.Int32
	// peerSentClose: the peer closed the socket with a close frame.
	peerSentClose atomic.Bool
}

func newConn(s *Server, ws *websocket.Conn) *conn {
	ws.SetReadLimit(s.cfg.MaxFrameBytes)
	c := &conn{s: s, ws: ws, id: newConnID(), started: time.Now(), subs: make(map[string]*hub.Subscription),
		watches: make(map[string]*presenceWatch), unauthenticated: func() {}}
	c.q.drained.L = &c.q.mu
	return c
}

// newConnID returns 16 random hex characters; it names the connection in
// logs and in the connected frame, and carries no meaning.
func newConnID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// serve authenticates the socket, then reads frames until it closes.
func (c *conn) serve(token string) {
	c.s.metrics.connections.Inc()
	defer c.finish()
	var ok bool
	onShortStack(func() { ok = c.authenticate(token) })
	c.unauthenticated()
	if !ok {
		c.drain()
		return
	}
	c.scheduleHeartbeat()
	c.send(protocol.ServerFrame{
		Type:         protocol.FrameConnected,
		ConnectionID: c.id,
		Heartbeat:    c.s.cfg.HeartbeatInterval.Milliseconds(),
		ExpiresAt:    &c.claims.Expires,
	})
	for {
		typ, b, err := c.ws.Read(context.Background())
		if err != nil {
			c.peerClosed(err)
			return
		}
		onShortStack(func() { c.handle(typ, b) })
	}
}

// onShortStack runs f on a short-lived goroutine and waits for it. The
// reader goroutine lives as long as its socket, and a goroutine's stack
// keeps the size of its deepest call: running the deep work (JWT checks,
// JSON decoding, hub and Redis calls) elsewhere keeps an idle socket's
// stack at what a blocked read needs. Client frames are rare, so the
// extra goroutine per frame costs nothing that matters.
func onShortStack(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

// handle runs one client frame.
func (c *conn) handle(typ websocket.MessageType, b []byte) {
	if c.closing.Load() {
		return // the close handshake is under way; nothing more is answered
	}
	if typ != websocket.MessageText {
		c.badFrame(&frameError{Code: protocol.CodeInvalidFrame, Message: "frames must be JSON text, not binary"})
		return
	}
	f, ferr := decodeFrame(b)
	if ferr != nil {
		c.badFrame(ferr)
		return
	}
	c.s.metrics.framesIn[string(f.Type)].Inc()
	switch f.Type {
	case protocol.OpAuth:
		c.reauth(f)
	case protocol.OpSubscribe:
		c.subscribe(f)
	case protocol.OpUnsubscribe:
		c.unsubscribe(f)
	case protocol.OpPing:
		c.send(protocol.ServerFrame{Type: protocol.FramePong, Ref: f.ID})
	case protocol.OpPresence:
		c.presenceOp(f)
	}
}

// badFrame answers a frame that did not decode, and closes a socket that
// keeps sending them.
func (c *conn) badFrame(e *frameError) {
	c.s.metrics.framesIn["invalid"].Inc()
	c.badFrames++
	if c.badFrames > c.s.cfg.MaxBadFrames {
		c.closeWith(CloseBadRequest, "too many malformed frames")
		return
	}
	c.sendError(e.Ref, "", e.Code, e.Message)
}

// send queues a control frame; a full queue closes the socket as a slow
// consumer, exactly like a refused event.
func (c *conn) send(f protocol.ServerFrame) {
	c.enqueue(encodeFrame(f))
}

func (c *conn) sendError(ref []byte, channel string, code protocol.ErrorCode, msg string) {
	c.send(protocol.ServerFrame{Type: protocol.FrameError, Ref: ref, Channel: channel, Code: code, Message: msg})
}

// closeWith starts closing the socket with code; only the first call has
// an effect, and it reports whether it was that call. It never blocks: it
// is called from hub sinks and timers. The close handshake (up to 10 s in
// coder/websocket) runs on its own goroutine; the reader then sees the
// socket end and finish cleans up.
func (c *conn) closeWith(code websocket.StatusCode, reason string) bool {
	first := false
	c.closeOnce.Do(func() {
		first = true
		c.closeCode.Store(int32(code))
		c.closing.Store(true)
		c.q.shut()
		if code == closeAbnormalLocal {
			go c.ws.CloseNow()
			return
		}
		go c.ws.Close(code, reason)
	})
	return first
}

// peerClosed records why the read loop ended when this side did not
// close first: the peer's close code, 1009 for an oversize frame (which
// coder/websocket answers itself), or 1006 for a vanished peer.
func (c *conn) peerClosed(err error) {
	code := websocket.CloseStatus(err)
	switch {
	case errors.Is(err, websocket.ErrMessageTooBig):
		code = CloseTooBig
	case code == -1:
		code = closeAbnormalLocal
	}
	c.closeOnce.Do(func() {
		c.closeCode.Store(int32(code))
		c.peerSentClose.Store(websocket.CloseStatus(err) != -1)
		c.closing.Store(true)
		c.q.shut()
		_ = c.ws.CloseNow()
	})
}

// drain waits for a socket that failed authentication to finish its close
// handshake, so the client reads the close code rather than a reset.
func (c *conn) drain() {
	for {
		if _, _, err := c.ws.Read(context.Background()); err != nil {
			return
		}
	}
}

// finish releases everything the socket held and writes its one log line.
func (c *conn) finish() {
	c.peerClosed(errors.New("socket finished")) // no-op if already closing
	if t := c.heartbeat.Load(); t != nil {
		t.Stop()
	}
	if c.expiry != nil {
		c.expiry.Stop()
	}
	if t := c.recheckTimer(); t != nil {
		t.Stop()
	}
	for _, sub := range c.subs {
		sub.Unsubscribe()
	}
	for _, w := range c.watches {
		w.cancel()
	}
	c.leavePresence()
	c.s.metrics.subscriptions.Sub(float64(len(c.subs)))
	c.s.metrics.connections.Dec()
	code := websocket.StatusCode(c.closeCode.Load())
	c.s.metrics.closes.WithLabelValues(closeLabel(code)).Inc()
	// Route template only: the query string may carry the access token.
	c.s.log.Info().Str("route", Path).Str("conn", c.id).Str("facility", c.claims.Facility).
		Int("close_code", int(code)).Dur("duration", time.Since(c.started)).Msg("realtime connection closed")
}
