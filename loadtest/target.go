package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/internal/config"
	"github.com/handoff-health/handoff/server"
)

// target is the server a run loads: a running one, or an embedded one
// this process started and stops.
type target struct {
	url       string
	secret    string
	inProcess bool
	stop      func()
}

// embeddedShutdown bounds the embedded server's graceful shutdown; the
// desktops have disconnected by then, so it has nothing to wait for.
const embeddedShutdown = 5 * time.Second

// startEmbedded starts a handoff node in this process on embedded
// defaults: memory hub and sessions, local blob store and ALEX outbox in a
// fresh temporary directory, a random loopback port, and a random JWT
// secret the run mints desktop tokens with (so not dev mode, which refuses
// a configured secret).
func startEmbedded(ctx context.Context, cfg Config, largest int) (*target, error) {
	dir, err := os.MkdirTemp("", "handoff-loadtest-")
	if err != nil {
		return nil, fmt.Errorf("embedded server: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("embedded server: %w", err)
	}
	sc, err := embeddedConfig(dir, l.Addr().String(), cfg, largest)
	if err == nil {
		var srv *server.Server
		if srv, err = server.New(ctx, sc, serverLogger(cfg.ServerLog)); err == nil {
			return serveEmbedded(srv, l, sc, dir), nil
		}
	}
	l.Close()
	os.RemoveAll(dir)
	return nil, fmt.Errorf("embedded server: %w", err)
}

func serveEmbedded(srv *server.Server, l net.Listener, sc config.Config, dir string) *target {
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(sctx, l)
	}()
	return &target{
		url: "http://" + l.Addr().String(), secret: sc.JWTSecret, inProcess: true,
		stop: func() {
			cancel()
			<-done
			srv.Close()
			os.RemoveAll(dir)
		},
	}
}

// embeddedConfig is `handoff serve`'s defaults with every backend forced
// to its embedded kind, so HANDOFF_* variables in the environment cannot
// point the test at a real Redis, S3, ALEX or Ably.
func embeddedConfig(dir, addr string, cfg Config, largest int) (config.Config, error) {
	var sc config.Config
	fs := flag.NewFlagSet("loadtest-embedded", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := config.Register(fs, &sc).Parse(nil); err != nil {
		return sc, err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return sc, err
	}
	sc.Addr, sc.PublicURL, sc.DataDir, sc.Dev = addr, (&url.URL{Scheme: "http", Host: addr}).String(), dir, false
	sc.JWTSecret = hex.EncodeToString(secret)
	sc.RedisAddrs, sc.S3Bucket, sc.ALEXBaseURL, sc.AblyKey, sc.APIKeys = "", "", "", "", ""
	sc.LogLevel, sc.LogFormat = "warn", "auto"
	sc.ShutdownTimeout = embeddedShutdown
	sc.MaxImages = max(sc.MaxImages, cfg.Images)
	sc.MaxImageBytes = max(sc.MaxImageBytes, int64(largest))
	// Every simulated GP and phone connects from this one address, all at
	// once: the per-address caps, sized for one clinic, would refuse them.
	sc.MaxConnsPerAddr = 0
	sc.MaxUnauthSocketsPerAddr = max(sc.MaxUnauthSocketsPerAddr, 2*cfg.GPs)
	return sc, nil
}

func serverLogger(w io.Writer) zerolog.Logger {
	if w == nil {
		return zerolog.Nop()
	}
	// Warnings and errors only: one info line per request would drown the
	// progress output.
	return server.NewLogger(w, "error", "auto")
}
