// Package server is the handoff application: it builds the hub and every
// adapter around it from a config.Config and serves them over HTTP.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/config"
	"github.com/handoff-health/handoff/internal/httpx"
	"github.com/handoff-health/handoff/internal/publish"
	"github.com/handoff-health/handoff/internal/session"
	"github.com/handoff-health/handoff/presence"
)

// Server is one handoff node.
type Server struct {
	cfg      config.Config
	log      zerolog.Logger
	registry *prometheus.Registry
	hub      *hub.Hub
	presence presence.Registry
	mux      *http.ServeMux
	handler  http.Handler
	redis    redis.UniversalClient // nil on the memory backend
	sessions session.Store
	checks   []readyCheck
	caps     *connCaps
	// debugAddr is the profiling listener's address (debug.go); nil
	// without --debug-addr.
	debugAddr net.Addr

	// background runs for the server's lifetime (hub delivery, sweepers,
	// the Ably bridge); shutdown runs at graceful shutdown, in order.
	background []func(context.Context) error
	shutdown   []func(context.Context) error
	closers    []func() error
}

// New builds a node from cfg. It connects to nothing that can be slow to
// answer: Redis and S3 are checked by /readyz, not at start.
func New(ctx context.Context, cfg config.Config, log zerolog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	s := &Server{cfg: cfg, log: log, registry: prometheus.NewRegistry(), mux: http.NewServeMux()}
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := s.listenDebug(); err != nil {
		return nil, err
	}

	backend, err := s.newBackend()
	if err != nil {
		s.Close() // the Redis client may already be open
		return nil, err
	}
	s.hub = hub.New(backend)
	s.background = append(s.background, s.hub.Run)
	s.closers = append(s.closers, backend.Close)
	s.checks = append(s.checks, readyCheck{"hub", backend.Ping})
	if err := s.newPresence(); err != nil {
		s.Close()
		return nil, err
	}

	if err := s.wire(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.mux.HandleFunc("GET /healthz", healthz)
	s.mux.Handle("GET /readyz", readyz(s.checks))
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{Registry: s.registry}))
	proxies, err := httpx.ParseProxies(cfg.TrustedProxies) // Validate has checked it
	if err != nil {
		s.Close()
		return nil, err
	}
	s.caps = newConnCaps(cfg.MaxConns, cfg.MaxConnsPerAddr, proxies, s.registry)
	s.handler = edge(jsonUnmatched(s.mux), log, newHTTPMetrics(s.registry), edgeLimits{
		hostFraming: len(cfg.HostOriginList()) > 0, proxies: proxies, bodyTimeout: cfg.BodyTimeout,
	})
	return s, nil
}

// Dialing Redis: see newBackend.
const (
	redisDialAttempts   = 2
	redisDialRetryDelay = 50 * time.Millisecond
)

// newBackend picks the hub backend: Redis when addresses are configured,
// otherwise the in-process memory backend.
func (s *Server) newBackend() (hub.Backend, error) {
	if s.cfg.RedisAddrs == "" {
		return hub.NewMemory(hub.MemoryConfig{HistorySize: s.cfg.HistorySize, HistoryTTL: s.cfg.HistoryTTL,
			Dedupe: hub.DedupeConfig{Window: s.cfg.DedupeWindow}}), nil
	}
	s.redis = redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:      s.cfg.RedisAddrList(),
		Password:   s.cfg.RedisPassword,
		MasterName: s.cfg.RedisMaster,
		DB:         s.cfg.RedisDB,
		// While Redis is down a command should fail fast, as a 503 the
		// client retries, not hang: go-redis's default five dial attempts
		// 100 ms apart, per command retry, held a failing PING for 1.7 s.
		// Two attempts 50 ms apart fail it in about 0.35 s. Recovery after
		// Redis returns is bounded by go-redis's dial breaker, which probes
		// once a second; the first command succeeded 0.35-0.4 s after Redis
		// answered, measured with 32 concurrent callers.
		DialerRetries:      redisDialAttempts,
		DialerRetryTimeout: redisDialRetryDelay,
	})
	reloadClusterOnError(s.redis)
	s.closers = append(s.closers, s.redis.Close)
	return newRedisBackend(s.redis, s.cfg)
}

// newPresence builds the presence registry beside the hub: in memory with
// the memory hub, on the same Redis (and key prefix) as the Redis hub. It
// is stopped at Close, after the transports detached their connections at
// shutdown and before the Redis client closes.
func (s *Server) newPresence() error {
	if s.redis == nil {
		m := presence.NewMemory(presence.MemoryConfig{Grace: s.cfg.PresenceGrace})
		s.presence = m
		s.closers = append(s.closers, func() error { m.Stop(); return nil })
		return nil
	}
	r, err := presence.NewRedis(presence.RedisConfig{Client: s.redis, Prefix: s.cfg.RedisPrefix, Grace: s.cfg.PresenceGrace})
	if err != nil {
		return err
	}
	s.presence = r
	s.closers = append(s.closers, func() error { r.Stop(); return nil })
	return nil
}

// Presence returns the node's presence registry.
func (s *Server) Presence() presence.Registry { return s.presence }

// Handler returns the node's HTTP handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.handler }

// Sessions returns the node's session store (for tests that end a session
// the way the sweeper or a restart would).
func (s *Server) Sessions() session.Store { return s.sessions }

// Hub returns the node's hub.
func (s *Server) Hub() *hub.Hub { return s.hub }

// Serve serves on l until ctx ends, then shuts down gracefully: stop
// accepting, close realtime sockets with 1001 so clients resume on another
// node, finish in-flight requests, stop background work.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	// No ReadTimeout: it would cut WebSocket upgrades and large uploads
	// alike. Bodies get per-request deadlines instead (deadline.go).
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		// Each connection remembers the API key that verified on it, so a
		// keep-alive publisher's key is checked once per connection.
		ConnContext: publish.ConnContext,
	}
	l = s.capListener(l)
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()
	bgDone := make(chan error, len(s.background))
	for _, run := range s.background {
		go func() { bgDone <- run(bgCtx) }()
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(l) }()
	select {
	case err := <-serveErr:
		// The listener failed: stop background work before returning.
		stopBackground()
		for range s.background {
			<-bgDone
		}
		return err
	case <-ctx.Done():
	}

	s.log.Info().Msg("shutting down")
	shCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	// Stop accepting and drain HTTP requests while the shutdown steps close
	// the hijacked sockets (which srv.Shutdown does not track), so neither
	// waits for the other's share of the timeout.
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Shutdown(shCtx) }()
	for _, f := range s.shutdown {
		if err := f(shCtx); err != nil {
			s.log.Warn().Err(err).Msg("shutdown step failed")
		}
	}
	err := <-httpDone
	if err != nil {
		// Requests still running past the timeout are cut now, before the
		// caller closes the backends they use.
		_ = srv.Close()
	}
	stopBackground()
	for range s.background {
		<-bgDone
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// capListener applies the connection caps to l, first lowering the total
// cap to fit the descriptor limit.
func (s *Server) capListener(l net.Listener) net.Listener {
	if limit, ok := descriptorLimit(); ok {
		if max, lowered := capMaxConns(s.caps.max, limit); lowered {
			s.log.Warn().Int("maxConns", max).Int("descriptorLimit", limit).
				Msg("--max-conns lowered to fit the open-file limit; raise the limit (ulimit -n) to accept more")
			s.caps.max = max
		}
	}
	return s.caps.listen(l)
}

// Close releases backends and clients. Call after Serve returns.
func (s *Server) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		_ = s.closers[i]()
	}
}
