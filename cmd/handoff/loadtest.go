package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	lt "github.com/handoff-health/handoff/loadtest"
)

// loadtest runs `handoff loadtest`: it prints the report (a table, or one
// JSON object with --json) on stdout, progress on stderr, and exits 1 on
// any loss, duplicate or error, 2 on bad flags.
func loadtest(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("handoff loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg lt.Config
	fs.StringVar(&cfg.Target, "target", "", "base URL of a running handoff (empty: start an embedded server in-process)")
	fs.StringVar(&cfg.JWTSecret, "jwt-secret", "", "the target's JWT secret, to mint desktop tokens (empty: the target's dev token) [HANDOFF_JWT_SECRET]")
	fs.IntVar(&cfg.GPs, "gps", 100, "GPs working at once, each with a desktop socket and a phone")
	fs.IntVar(&cfg.Images, "images", 5, "images per capture session")
	fs.IntVar(&cfg.ImageBytes, "image-bytes", 1_000_000, "approximate size of each JPEG")
	fs.Float64Var(&cfg.DisconnectRate, "disconnect-rate", 0, "probability per received event that a desktop drops its socket and resumes")
	fs.IntVar(&cfg.Rounds, "rounds", 0, "sessions per GP, one after another (0: 1, or unbounded with --duration)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "start no new rounds after this long (0: no limit)")
	fs.DurationVar(&cfg.EventTimeout, "event-timeout", 0, "how long a desktop waits for owed events before counting them lost (0: 30s)")
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", 0, "timeout of each HTTP request (0: 60s)")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "with --target: the server's process id, to report its CPU time and peak RSS from /proc (Linux)")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	quiet := fs.Bool("quiet", false, "no progress output")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "handoff loadtest: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if cfg.JWTSecret == "" && cfg.Target != "" {
		// A secret is read from the environment, not a flag default, so
		// --help never prints it.
		cfg.JWTSecret = os.Getenv("HANDOFF_JWT_SECRET")
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "handoff loadtest: %v\n", err)
		return 2
	}
	var progress *lt.Progress
	if !*quiet {
		total := -1
		if cfg.Duration == 0 {
			total = max(cfg.GPs, 1) * max(cfg.Rounds, 1)
		}
		progress = lt.NewProgress(stderr, total)
		cfg.OnRound = progress.Round
	}
	cfg.ServerLog = stderr

	stopProfiles, err := startProfiles(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "handoff loadtest: %v\n", err)
		return 1
	}
	defer stopProfiles()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := lt.Run(ctx, cfg)
	if progress != nil {
		progress.Finish()
	}
	if err != nil {
		fmt.Fprintf(stderr, "handoff loadtest: %v\n", err)
		return 1
	}
	if *asJSON {
		if err := rep.WriteJSON(stdout); err != nil {
			fmt.Fprintf(stderr, "handoff loadtest: %v\n", err)
			return 1
		}
	} else {
		rep.WriteTable(stdout)
	}
	if !rep.OK() {
		return 1
	}
	return 0
}
