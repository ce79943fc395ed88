// Command handoff is the whole product in one binary:
//
//	handoff serve      run a node (embedded defaults, or Redis/S3/ALEX/Ably)
//	handoff loadtest   simulate GPs end to end against a node
//	handoff bench      measure fan-out latency and idle-socket memory
//	handoff version    print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/handoff-health/handoff/internal/config"
	"github.com/handoff-health/handoff/server"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "loadtest":
		return loadtest(args[1:], stdout, stderr)
	case "bench":
		return bench(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "handoff", version)
		return 0
	case "help", "--help", "-h":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "handoff: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `handoff: realtime photo handoff from phone to desktop to Medtech ALEX

Usage:
  handoff serve [flags]      run a server node (handoff serve --help lists every setting)
  handoff loadtest [flags]   simulate GPs end to end (handoff loadtest --help)
  handoff bench fanout|idle  measure realtime delivery latency and idle-socket memory of a running server
  handoff version            print the version
`)
}

func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("handoff serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config.Config
	if err := config.Register(fs, &cfg).Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	log := server.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	stopProfiles, err := startProfiles(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "handoff: %v\n", err)
		return 1
	}
	defer stopProfiles()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "handoff: %v\n", err)
		return 1
	}
	defer srv.Close()
	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		fmt.Fprintf(stderr, "handoff: cannot listen on %s: %v\n", cfg.Addr, err)
		return 1
	}
	log.Info().Str("addr", l.Addr().String()).Str("version", version).Msg("listening")
	fmt.Fprintf(stdout, "handoff %s is running.\n  Desktop: %s/desktop\n  Health:  %s/healthz\nPress Ctrl-C to stop.\n",
		version, cfg.BaseURL(), cfg.BaseURL())
	if err := srv.Serve(ctx, l); err != nil {
		fmt.Fprintf(stderr, "handoff: %v\n", err)
		return 1
	}
	return 0
}
