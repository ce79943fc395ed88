package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/handoff-health/handoff/internal/fanout"
)

// bench measures a running server from outside (internal/fanout):
//
//	handoff bench fanout [flags]   publish→WebSocket delivery latency and loss
//	handoff bench idle [flags]     server RSS per idle socket
//
// --server centrifugo points either at a Centrifugo v6 instead of handoff
// (internal/fanout/centrifugo.go), for scripts/bench-vs-centrifugo.sh.
// --server ably --format json|msgpack subscribes through handoff's Ably
// socket at / instead of /realtime (internal/fanout/ably.go), on the same
// channels and publishes.
//
// HANDOFF_BENCH_CPUPROFILE=<file> writes the generator's own CPU profile.
// It exits 0 on a clean run, 1 when anything was lost, refused or dropped
// (or the run failed), and 2 for bad flags.
func bench(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		benchUsage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if path := os.Getenv("HANDOFF_BENCH_CPUPROFILE"); path != "" {
		// The generator's own profile, to keep it lean: it shares the
		// machine with the server it measures.
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintf(stderr, "handoff bench: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "handoff bench: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	switch args[0] {
	case "fanout":
		c, err := fanout.ParseFanout(args[1:], stderr)
		if err != nil {
			return flagError(err, stderr)
		}
		res, err := fanout.RunFanout(ctx, c, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "handoff bench fanout: %v\n", err)
			return 1
		}
		return report(stdout, stderr, c.JSON, res, res.OK, res.WriteText)
	case "idle":
		c, err := fanout.ParseIdle(args[1:], stderr)
		if err != nil {
			return flagError(err, stderr)
		}
		res, err := fanout.RunIdle(ctx, c, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "handoff bench idle: %v\n", err)
			return 1
		}
		return report(stdout, stderr, c.JSON, res, res.OK, res.WriteText)
	default:
		fmt.Fprintf(stderr, "handoff bench: unknown scenario %q\n\n", args[0])
		benchUsage(stderr)
		return 2
	}
}

func benchUsage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  handoff bench fanout [flags]   publish over HTTP to sockets on /realtime; latency, loss
  handoff bench idle [flags]     open idle sockets; server RSS per socket (needs --pid)

Both measure handoff by default; --server centrifugo measures a Centrifugo v6
instead (its JSON client protocol and HTTP API), for side-by-side runs.

handoff bench fanout --help and handoff bench idle --help list the flags.
scripts/bench-realtime.sh runs every scenario against a fresh server;
scripts/bench-vs-centrifugo.sh runs issue 14's cases on handoff and Centrifugo.
`)
}

func flagError(err error, stderr io.Writer) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "handoff bench: %v\n", err)
	return 2
}

// report prints the result (text or JSON) and returns the exit code.
func report(stdout, stderr io.Writer, asJSON bool, res any, ok bool, text func(io.Writer)) int {
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(stderr, "handoff bench: %v\n", err)
			return 1
		}
	} else {
		text(stdout)
	}
	if !ok {
		fmt.Fprintln(stderr, "handoff bench: the run was not clean (loss, errors or dropped sockets); see above")
		return 1
	}
	return 0
}
