// Package ablyrt serves Ably's realtime protocol on a WebSocket at "/",
// over the same hub as the native /realtime transport, so unmodified Ably
// SDKs (ably-go, ably-js) connect to handoff. Frames are ablyproto
// ProtocolMessages, JSON in text frames or msgpack in binary frames.
//
// The mapping onto handoff (../shared/ABLY-PROTOCOL.md §14):
//   - an Ably channelSerial IS the hub cursor, and a message's serial is
//     its event's cursor: an ATTACH with a channelSerial replays strictly
//     after it, then goes live; RESUMED says nothing was lost, error 90003
//     says history could not cover the gap;
//   - hub events reach Ably clients as MESSAGEs (name = event type, data =
//     the event data) mapped by ablyproto.EventMessage, the same mapping
//     REST history uses, so ids and serials agree everywhere;
//   - connection keys are HMAC-signed with the connection's API key, so
//     any node with the same keys can check a resume; the per-connection
//     state a resume needs (liveness, msgSerial outcomes for dedupe) is
//     behind ConnStore.
//
// Goroutines per connection: the HTTP handler's reader, a writer while
// frames wait, and timers (heartbeat, token expiry).
package ablyrt

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/httpx"
	"github.com/handoff-health/handoff/presence"
)

// Config configures the Ably socket. Zero fields take the defaults below.
type Config struct {
	// MaxIdleInterval is advertised in connectionDetails: the client
	// expects some frame at least this often, so HEARTBEATs are sent when
	// nothing else was for half of it. Default 15 s (the spec fixtures').
	MaxIdleInterval time.Duration
	// ConnectionStateTTL is how long a dropped connection may be resumed,
	// advertised in connectionDetails. Default 2 minutes (Ably's).
	ConnectionStateTTL time.Duration
	// MaxMessageSize is advertised (ably-js checks publishes against it).
	// Default 64 KiB, the hub's data limit.
	MaxMessageSize int64
	// MaxFrameBytes bounds one inbound frame. Default 512 KiB.
	MaxFrameBytes int64
	// SendQueueMessages and SendQueueBytes bound the frames waiting for one
	// socket, queued or being written; overflowing either disconnects the
	// client (slow consumer), which then resumes. Defaults 2048 frames (a
	// whole default history replay fits) and 16 MiB.
	SendQueueMessages int
	SendQueueBytes    int
	// MaxChannels bounds the attached channels of one connection (90010).
	// Default 64.
	MaxChannels int
	// WriteTimeout bounds one frame write. Default 10 s.
	WriteTimeout time.Duration
	// ServerID names this node in connectionDetails.
	ServerID string
	// Store keeps resumable connections and their msgSerial outcomes; nil
	// is a memory store (this node only).
	Store ConnStore
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// ChannelPrefix, when set, maps a key name to the hub-channel prefix
	// of its app (the test-app provisioner's isolation; see scope.go).
	// Nil: Ably channel names are hub channel names.
	ChannelPrefix func(keyName string) string
	// Presence is the presence registry (presence.go). Nil: presence is
	// not offered; PRESENCE is NACKed and no SYNC is ever sent.
	Presence presence.Registry
}

// Defaults.
const (
	DefaultMaxIdleInterval    = 15 * time.Second
	DefaultConnectionStateTTL = 2 * time.Minute
	DefaultMaxFrameBytes      = 512 << 10
	DefaultSendQueueMessages  = 2048
	DefaultSendQueueBytes     = 16 << 20
	DefaultMaxChannels        = 64
	DefaultWriteTimeout       = 10 * time.Second
	// maxInboundRate is advertised only: handoff does not rate-limit
	// publishes per connection.
	maxInboundRate = 250
	// opTimeout bounds the hub and store calls of one client frame.
	opTimeout = 10 * time.Second
)

func (c Config) withDefaults() Config {
	if c.MaxIdleInterval <= 0 {
		c.MaxIdleInterval = DefaultMaxIdleInterval
	}
	if c.ConnectionStateTTL <= 0 {
		c.ConnectionStateTTL = DefaultConnectionStateTTL
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = hub.MaxDataBytes
	}
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if c.SendQueueMessages <= 0 {
		c.SendQueueMessages = DefaultSendQueueMessages
	}
	if c.SendQueueBytes <= 0 {
		c.SendQueueBytes = DefaultSendQueueBytes
	}
	if c.MaxChannels <= 0 {
		c.MaxChannels = DefaultMaxChannels
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ServerID == "" {
		c.ServerID = "handoff"
	}
	return c
}

// Server accepts Ably realtime connections.
type Server struct {
	hub    *hub.Hub
	keys   *auth.APIKeys
	tokens auth.AblyTokens
	cfg    Config
	store  ConnStore
	log    zerolog.Logger
	frames *frameCache

	mu       sync.Mutex
	conns    map[*conn]struct{}
	byID     map[string]*conn
	shutting bool
	handlers sync.WaitGroup
}

// New returns the Ably socket over h; keys authenticate clients (their
// secrets also sign handoff's tokens and connection keys). keys may be
// nil: then every connection is refused with an ERROR.
func New(h *hub.Hub, keys *auth.APIKeys, cfg Config, log zerolog.Logger) *Server {
	cfg = cfg.withDefaults()
	st := cfg.Store
	if st == nil {
		st = NewMemoryStore(cfg.Now)
	}
	return &Server{hub: h, keys: keys, tokens: auth.AblyTokens{Keys: keys, Now: cfg.Now}, cfg: cfg, store: st, log: log, frames: newFrameCache(),
		conns: make(map[*conn]struct{}), byID: make(map[string]*conn)}
}

// IsUpgrade reports a WebSocket upgrade request.
func IsUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// OnlyUpgrades serves WebSocket upgrades with s and answers anything else
// with next (for "/", whose plain GET keeps its own behaviour).
func (s *Server) OnlyUpgrades(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if IsUpgrade(r) {
			s.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ServeHTTP upgrades the request and serves the connection. Credentials
// are checked after the upgrade: a refusal is an ERROR frame, because
// ably-go retries a refused upgrade forever.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.shutting {
		s.mu.Unlock()
		httpx.WriteError(w, httpx.Errorf(http.StatusServiceUnavailable, "shutting_down", "server is shutting down; connect to another node"))
		return
	}
	s.handlers.Add(1)
	s.mu.Unlock()
	// Any page may open the Ably socket, as with Ably itself: browser
	// ably-js runs on the integrator's own origin. This is safe because
	// the socket never takes ambient credentials: a connection is
	// authorised only by the key or token in its own query or header,
	// never by a cookie, so a hostile page gains nothing it did not bring.
	ws, err := websocket.Accept(httpx.SmallBuffers{ResponseWriter: w}, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		s.handlers.Done()
		return // Accept has answered.
	}
	ws.SetReadLimit(s.cfg.MaxFrameBytes)
	c := newConn(s, ws)
	s.track(c)
	// The socket is served on a goroutine of its own and the handler
	// returns, as the native socket does. Served here, net/http's
	// goroutine would live as long as the socket, and with it its 4 KiB
	// read buffer, the 4 KiB writer it made for Hijack, the request's
	// headers and contexts, and a stack as deep as the middleware chain:
	// about half of an idle Ably socket's memory. The request is only
	// read, until CONNECTED; net/http no longer touches it once hijacked.
	go func() {
		defer s.handlers.Done()
		defer s.untrack(c)
		c.serve(r)
	}()
}

func (s *Server) track(c *conn) {
	s.mu.Lock()
	s.conns[c] = struct{}{}
	shutting := s.shutting
	s.mu.Unlock()
	if shutting {
		c.disconnect(errShutdown)
	}
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	if s.byID[c.id] == c {
		delete(s.byID, c.id)
	}
	s.mu.Unlock()
}

// superseded reports whether the key with nonce, a valid key of
// connection connID, was issued to a transport of this node that a later one replaced while the
// later one is still open: the key's client was taken over (a recover by
// another client, or its own resume it no longer knows of) and may not
// take the connection back. A client that resumes with the key of the
// open holder is the same client whose transport died unnoticed: allowed.
// Only this node's holder is checked here; resumable checks the one the
// ConnStore records, which any node's transport may be.
func (s *Server) superseded(connID, nonce string) bool {
	s.mu.Lock()
	holder := s.byID[connID]
	s.mu.Unlock()
	if holder == nil || holder.ending.Load() {
		return false
	}
	current := holder.keyNonce.Load()
	return current != nil && *current != nonce
}

// holdsLocally reports whether a transport of this node holds connID (open
// or ending): one this node can end when another takes the connection.
func (s *Server) holdsLocally(connID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byID[connID] != nil
}

// claimID makes c the local holder of its connection id and returns the
// connection that held it (a transport the client already left), if any.
func (s *Server) claimID(c *conn) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.byID[c.id]
	s.byID[c.id] = c
	return old
}

// Shutdown sends every connection DISCONNECTED (so the SDKs resume,
// elsewhere if need be) and waits for them to close until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutting = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.disconnect(errShutdown)
	}
	done := make(chan struct{})
	go func() {
		s.handlers.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			_ = c.ws.CloseNow()
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}

func opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}
