package loadtest

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"
)

// Config describes one run. Zero fields take the defaults noted.
type Config struct {
	// Target is the base URL of a running handoff, e.g.
	// "http://127.0.0.1:8080". Empty starts an embedded server in-process
	// (memory hub, local blob store and ALEX outbox in a temporary
	// directory, dev mode, a random loopback port) and removes it after.
	Target string
	// JWTSecret is the target's HS256 secret; with it the run mints one
	// desktop JWT per GP. Empty asks the target's POST /api/dev/token, which
	// only a server in dev mode answers. Ignored for the embedded server.
	JWTSecret string

	// GPs is how many GPs work at once. Zero means 100.
	GPs int
	// Images is how many photos each session gets. Zero means 5.
	Images int
	// ImageBytes is the approximate size of each photo. Zero means 1 MB.
	// The JPEGs are real (noise) images at least this large.
	ImageBytes int
	// DisconnectRate is the probability, per event a desktop receives, that
	// it drops its socket right after; the client then reconnects and
	// resumes from its cursor. Zero means never.
	DisconnectRate float64
	// Rounds is how many sessions each GP runs, one after another. Zero
	// means 1, or unbounded (up to maxRounds) when Duration is set.
	Rounds int
	// Duration stops GPs from starting new rounds once it has passed;
	// rounds in flight finish. Zero means no time limit.
	Duration time.Duration

	// EventTimeout bounds each wait of a desktop for its events: the
	// subscription, all image.added, and after the commit everything still
	// missing. An event that has not arrived by then counts as lost. Zero
	// means 30 s.
	EventTimeout time.Duration
	// RequestTimeout bounds each HTTP request. Zero means 60 s.
	RequestTimeout time.Duration

	// OnRound is called after each GP round, from the GP's goroutine, for
	// progress reporting. Nil means nothing is called.
	OnRound func()
	// ServerPID is the process id of the Target server when it runs on
	// this machine; the report then shows that process's CPU time and peak
	// RSS, read from /proc (Linux). Zero means not measured.
	ServerPID int

	// ServerLog receives the embedded server's warnings and errors. Nil
	// discards them.
	ServerLog io.Writer
}

// Defaults and bounds, with the reason for each.
const (
	defaultGPs            = 100
	defaultImages         = 5
	defaultImageBytes     = 1_000_000
	defaultEventTimeout   = 30 * time.Second
	defaultRequestTimeout = 60 * time.Second

	// maxGPs bounds the sockets and goroutines one process opens; each GP
	// holds a socket and a few HTTP connections.
	maxGPs = 5000
	// maxImages stays within what any sane server lets one session hold.
	maxImages = 100
	// maxImageBytes keeps the generated JPEGs (and the process's memory)
	// bounded; real phone photos are 2-12 MB.
	maxImageBytes = 25 << 20
	// maxRounds bounds a duration-limited run even on a server so fast that
	// rounds take no time at all.
	maxRounds = 100_000
	// distinctJPEGs is how many different photos are generated up front and
	// reused: enough that not every upload is byte-identical, few enough
	// that generating megapixel noise images stays quick.
	distinctJPEGs = 4
)

// Validate reports settings Run would refuse, naming them.
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}

func (c Config) withDefaults() (Config, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.GPs, defaultGPs)
	def(&c.Images, defaultImages)
	def(&c.ImageBytes, defaultImageBytes)
	if c.Rounds == 0 {
		c.Rounds = 1
		if c.Duration > 0 {
			c.Rounds = maxRounds
		}
	}
	if c.EventTimeout == 0 {
		c.EventTimeout = defaultEventTimeout
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = defaultRequestTimeout
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.GPs < 1 || c.GPs > maxGPs {
		bad("gps must be 1..%d", maxGPs)
	}
	if c.Images < 1 || c.Images > maxImages {
		bad("images must be 1..%d", maxImages)
	}
	if c.ImageBytes < 1 || c.ImageBytes > maxImageBytes {
		bad("image-bytes must be 1..%d", maxImageBytes)
	}
	if c.DisconnectRate < 0 || c.DisconnectRate >= 1 {
		bad("disconnect-rate must be at least 0 and below 1")
	}
	if c.Rounds < 1 || c.Rounds > maxRounds {
		bad("rounds must be 1..%d", maxRounds)
	}
	if c.Duration < 0 || c.EventTimeout < 0 || c.RequestTimeout < 0 {
		bad("durations must not be negative")
	}
	if c.ServerPID < 0 || c.ServerPID > 0 && c.Target == "" {
		bad("server-pid needs target (the embedded server is measured as this process)")
	}
	if c.Target != "" {
		u, err := url.Parse(c.Target)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("target must be an http(s) URL like http://127.0.0.1:8080")
		}
	}
	return c, errors.Join(errs...)
}
