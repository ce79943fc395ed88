// Package realtime is handoff's native WebSocket transport: JSON text
// frames on one socket that carries several hub channels, with resume from
// a cursor, server heartbeats, a bounded send queue per connection and a
// distinct close code for every way a socket can end. The wire format
// (frame types, shapes, close and error codes) is package protocol's; this
// package is the server's behaviour. docs/protocol.md explains both.
//
// Each connection costs one reader goroutine (the HTTP handler's own) and,
// only while frames are waiting, one writer goroutine; heartbeats and token
// expiry are timers. Encoded event frames are shared between subscribers.
package realtime

import (
	"context"
	"net/http"
	"sync"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/httpx"
	"github.com/handoff-health/handoff/protocol"
)

// Path is where `handoff serve` mounts the socket: GET /realtime with a
// WebSocket upgrade (protocol.Path).
const Path = protocol.Path

// Server accepts realtime WebSocket connections and bridges them to a hub.
type Server struct {
	hub      *hub.Hub
	verifier *auth.Verifier
	cfg      Config
	log      zerolog.Logger
	metrics  *metrics
	frames   *frameCache
	unauth   *unauthCount

	mu       sync.Mutex
	conns    map[*conn]struct{}
	shutting bool
	// handlers counts sockets being accepted or served, so Shutdown can
	// wait for every one to finish its close handshake.
	handlers sync.WaitGroup
}

// New returns a transport over h that authenticates sockets with v.
func New(h *hub.Hub, v *auth.Verifier, cfg Config, log zerolog.Logger) *Server {
	cfg = cfg.withDefaults()
	return &Server{
		hub:      h,
		verifier: v,
		cfg:      cfg,
		log:      log,
		metrics:  newMetrics(cfg.Registerer),
		frames:   newFrameCache(),
		unauth:   newUnauthCount(cfg.MaxUnauthPerAddr),
		conns:    make(map[*conn]struct{}),
	}
}

// ServeHTTP upgrades the request to a WebSocket and returns; the socket
// is served on its own goroutine, so net/http's handler goroutine, its
// stack and the request it holds are freed for the socket's lifetime (an
// idle socket then costs one small goroutine, see hijack.go).
//
// The token may come from an "Authorization: Bearer" header (Go clients),
// an access_token query parameter, or a first auth frame (browsers, which
// cannot set headers on a WebSocket). A bad token is answered after the
// upgrade, with close code 4001 or 4009, because a browser cannot read the
// status of a refused upgrade.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.shutting {
		s.mu.Unlock()
		httpx.WriteError(w, httpx.Errorf(http.StatusServiceUnavailable, "shutting_down", "server is shutting down; connect to another node"))
		return
	}
	s.handlers.Add(1)
	s.mu.Unlock()

	release, ok := s.unauth.acquire(httpx.ClientAddr(r))
	if !ok {
		s.handlers.Done()
		httpx.WriteError(w, errTooManyUnauth)
		return
	}
	token := auth.BearerToken(r)
	if token == "" {
		token = r.URL.Query().Get(protocol.TokenParam)
	}
	ws, err := websocket.Accept(httpx.SmallBuffers{ResponseWriter: w}, r, &websocket.AcceptOptions{OriginPatterns: s.cfg.OriginPatterns})
	if err != nil {
		release()
		s.handlers.Done()
		return // Accept has answered with the reason (400, 403, 426).
	}
	c := newConn(s, ws)
	c.unauthenticated = release
	if !s.track(c) {
		c.closeWith(CloseGoingAway, "server is shutting down")
	}
	go func() {
		defer s.handlers.Done()
		defer s.untrack(c)
		c.serve(token)
	}()
}

// errTooManyUnauth refuses an upgrade from an address already holding
// Config.MaxUnauthPerAddr sockets that have not authenticated.
var errTooManyUnauth = httpx.Errorf(http.StatusTooManyRequests, "too_many_connections",
	"too many unauthenticated sockets from this address; authenticate the open ones first")

// track registers a connection; it reports false once Shutdown has begun.
func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns[c] = struct{}{}
	return !s.shutting
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Shutdown stops accepting sockets and closes every open one with 1001
// (going away), so clients resume on another node from their cursors. It
// waits for the close handshakes until ctx ends, then drops whatever is
// left without one and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutting = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.closeWith(CloseGoingAway, "server is shutting down")
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

// opContext bounds the hub and Authorize calls made for one client op.
func opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}
