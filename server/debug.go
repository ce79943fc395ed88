package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
)

// listenDebug opens the profiling listener of --debug-addr, if set: Go's
// net/http/pprof under /debug/pprof/, on its own listener and never on the
// main handler, so no proxy rule or route mistake can expose it. Validate
// has refused any address that is not loopback. The listener serves for
// the node's lifetime, shutdown included, so a slow shutdown can be
// profiled too.
func (s *Server) listenDebug() error {
	if s.cfg.DebugAddr == "" {
		return nil
	}
	l, err := net.Listen("tcp", s.cfg.DebugAddr)
	if err != nil {
		return fmt.Errorf("cannot listen on --debug-addr %s: %w", s.cfg.DebugAddr, err)
	}
	s.debugAddr = l.Addr()
	srv := &http.Server{Handler: debugMux(), ReadHeaderTimeout: s.cfg.ReadHeaderTimeout}
	// Serve may never run (New failed later, or a test only builds the
	// node), so the listener is closed here too.
	s.closers = append(s.closers, func() error { _ = srv.Close(); return l.Close() })
	s.background = append(s.background, func(ctx context.Context) error {
		served := make(chan error, 1)
		go func() { served <- srv.Serve(l) }()
		select {
		case err := <-served:
			return err
		case <-ctx.Done():
		}
		err := srv.Close()
		<-served
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		return err
	})
	s.log.Info().Str("addr", l.Addr().String()).Msg("debug listener (pprof) on")
	return nil
}

// debugMux is net/http/pprof's handlers, on a mux of their own (the
// package's init registers them on http.DefaultServeMux, which handoff
// never serves).
func debugMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // heap, goroutine, allocs, block, mutex, threadcreate
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// DebugAddr is the address the profiling listener listens on, or nil
// without --debug-addr.
func (s *Server) DebugAddr() net.Addr { return s.debugAddr }
