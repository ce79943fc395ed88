package fanout

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"
)

// The servers the bench can measure (--server).
const (
	// ServerHandoff is handoff: sockets on /realtime, publishes to
	// POST /channels/{channel}/messages.
	ServerHandoff = "handoff"
	// ServerCentrifugo is Centrifugo (v6), for the side-by-side runs:
	// sockets on /connection/websocket with its JSON client protocol,
	// publishes to its HTTP API, POST /api/publish (centrifugo.go).
	ServerCentrifugo = "centrifugo"
	// ServerAbly is handoff's Ably realtime socket at "/" (ably.go):
	// sockets connect with the API key and attach with Ably's protocol in
	// --format json or msgpack; publishes are the handoff target's.
	ServerAbly = "ably"
)

// Target says where the server under test is and how to get in.
type Target struct {
	// Server is which server this is, ServerHandoff or ServerCentrifugo.
	Server string
	// URL is the server's base URL, e.g. http://127.0.0.1:8080.
	URL string
	// APIKey is, for handoff, a "keyName:secret" of the server's
	// --api-keys; for Centrifugo, its http_api.key. fanout publishes with
	// it; the Ably target's sockets also connect with it (key=).
	APIKey string
	// JWTSecret is handoff's --jwt-secret, or Centrifugo's
	// client.token.hmac_secret_key; the bench mints its own connection
	// token with it. Empty with Dev asks handoff's POST /api/dev/token.
	JWTSecret string
	// Format is the Ably target's wire format, json or msgpack.
	Format string
	// Namespace is the Centrifugo channel namespace the bench's channels
	// are in ("" for none); the server's config decides what it keeps.
	Namespace string
	// Dev fetches a dev token from a server started with --dev.
	Dev bool
	// PID is the server's process id; with it the bench reads the server's
	// RSS and CPU time from /proc. Zero means unknown (fanout only).
	PID int
	// AuxPID is another process serving the run (redis-server) whose CPU
	// time is reported beside the server's. Zero means none.
	AuxPID int
	// SourceIPs spreads the sockets over 127.0.0.1..127.0.0.N as source
	// addresses, so many sockets (and the TIME_WAIT of earlier runs) never
	// exhaust one address's ephemeral ports. Only for a loopback target.
	SourceIPs int
	// DialConcurrency bounds the sockets being opened at once.
	DialConcurrency int
	// JSON prints the result as one JSON object instead of text.
	JSON bool
}

// FanoutConfig is one `handoff bench fanout` run.
type FanoutConfig struct {
	Target
	// Sockets subscribe, socket i to channel i % Channels.
	Sockets  int
	Channels int
	// Rate is the publishes (messages) per second, spread round-robin over
	// the channels, paced open-loop.
	Rate int
	// Batch is the messages per HTTP request (all to one channel); 1 is
	// one request per message.
	Batch int
	// BatchSpread sends a request's Batch messages to Batch distinct
	// channels instead (issue 14's case C′): handoff's batch publish
	// (POST /messages, one {channels, messages} spec per message) or
	// Centrifugo's /api/batch with one publish command per channel.
	BatchSpread bool
	// Publishers is the number of HTTP keep-alive connections publishing.
	Publishers int
	// Warmup is published but not measured; Duration is measured.
	Warmup   time.Duration
	Duration time.Duration
	// Drain is how long to wait for deliveries after the last publish.
	Drain time.Duration
	// Payload pads each message's data to about this many bytes.
	Payload int
}

// IdleConfig is one `handoff bench idle` run.
type IdleConfig struct {
	Target
	Sockets  int
	Channels int
	// Hold is how long the sockets stay open, idle, before the RSS is read.
	Hold time.Duration
}

// Bounds that keep a mistyped flag from taking the machine down.
const (
	maxSockets    = 60_000
	maxChannels   = 10_000
	maxRate       = 500_000
	maxPublishers = 1_000
	maxDuration   = time.Hour
	maxPayload    = 60 << 10
	maxBatch      = 100 // the publish endpoint's own limit
)

func registerTarget(fs *flag.FlagSet, t *Target) {
	fs.StringVar(&t.Server, "server", ServerHandoff, "the server under test: handoff, ably (handoff's Ably socket at /) or centrifugo (v6, JSON client protocol)")
	fs.StringVar(&t.Format, "format", "json", "ably only: the sockets' wire format, json or msgpack")
	fs.StringVar(&t.URL, "target", "http://127.0.0.1:8080", "base URL of the running server")
	fs.StringVar(&t.JWTSecret, "jwt-secret", "", "the server's --jwt-secret (centrifugo: client.token.hmac_secret_key), to mint a connection token [HANDOFF_JWT_SECRET]")
	fs.StringVar(&t.Namespace, "namespace", "bench", "centrifugo only: the channel namespace of the bench's channels (\"\" for none)")
	fs.BoolVar(&t.Dev, "dev", false, "fetch a dev token from POST /api/dev/token (server started with --dev)")
	fs.IntVar(&t.PID, "pid", 0, "server process id, to read its RSS and CPU time from /proc")
	fs.IntVar(&t.AuxPID, "aux-pid", 0, "another process serving the run (e.g. redis-server), to report its CPU time")
	fs.IntVar(&t.SourceIPs, "source-ips", 4, "spread sockets over source addresses 127.0.0.1..127.0.0.N (loopback targets)")
	fs.IntVar(&t.DialConcurrency, "dial-concurrency", 64, "sockets opened at once")
	fs.BoolVar(&t.JSON, "json", false, "print the result as JSON")
}

// ParseFanout parses the flags of `handoff bench fanout`.
func ParseFanout(args []string, out io.Writer) (FanoutConfig, error) {
	fs := flag.NewFlagSet("handoff bench fanout", flag.ContinueOnError)
	fs.SetOutput(out)
	var c FanoutConfig
	registerTarget(fs, &c.Target)
	fs.StringVar(&c.APIKey, "api-key", "", "publish API key keyName:secret, one of the server's --api-keys (centrifugo: its http_api.key) [HANDOFF_BENCH_API_KEY]")
	fs.IntVar(&c.Sockets, "sockets", 2000, "WebSocket subscribers")
	fs.IntVar(&c.Channels, "channels", 200, "channels (capture sessions); socket i subscribes to channel i%channels")
	fs.IntVar(&c.Rate, "rate", 2000, "messages published per second, open-loop")
	fs.IntVar(&c.Batch, "batch", 1, "messages per HTTP request (1: one request per message)")
	fs.BoolVar(&c.BatchSpread, "batch-spread", false, "send each request's --batch messages to that many distinct channels (handoff: POST /messages; centrifugo: /api/batch), not all to one")
	fs.IntVar(&c.Publishers, "publishers", 32, "HTTP keep-alive connections publishing")
	fs.DurationVar(&c.Warmup, "warmup", 3*time.Second, "published but not measured")
	fs.DurationVar(&c.Duration, "duration", 20*time.Second, "measured publishing time")
	fs.DurationVar(&c.Drain, "drain", 5*time.Second, "how long to wait for late deliveries after the last publish")
	fs.IntVar(&c.Payload, "payload", 0, "pad each message's data to about this many bytes")
	fs.Usage = func() {
		fmt.Fprint(out, "Usage: handoff bench fanout [flags]\n\nPublishes over HTTP at a paced rate to sockets subscribed over /realtime and\nmeasures publish-to-delivery latency. Exits 1 on any loss or error.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c.Target = fromEnv(c.Target)
	if c.APIKey == "" {
		c.APIKey = os.Getenv("HANDOFF_BENCH_API_KEY")
	}
	return c, c.validate()
}

// ParseIdle parses the flags of `handoff bench idle`.
func ParseIdle(args []string, out io.Writer) (IdleConfig, error) {
	fs := flag.NewFlagSet("handoff bench idle", flag.ContinueOnError)
	fs.SetOutput(out)
	var c IdleConfig
	registerTarget(fs, &c.Target)
	fs.StringVar(&c.APIKey, "api-key", "", "ably only: the API key keyName:secret the sockets connect with [HANDOFF_BENCH_API_KEY]")
	fs.IntVar(&c.Sockets, "sockets", 10000, "idle WebSocket clients to open")
	fs.IntVar(&c.Channels, "channels", 100, "channels (capture sessions) they subscribe to, round-robin")
	fs.DurationVar(&c.Hold, "hold", 20*time.Second, "how long the sockets stay open before the RSS is read")
	fs.Usage = func() {
		fmt.Fprint(out, "Usage: handoff bench idle --pid <server pid> [flags]\n\nOpens idle, authenticated, subscribed sockets and reports the server's RSS\ngrowth per socket (VmRSS from /proc/<pid>/status).\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c.Target = fromEnv(c.Target)
	if c.APIKey == "" && c.Server == ServerAbly {
		c.APIKey = os.Getenv("HANDOFF_BENCH_API_KEY")
	}
	return c, c.validate()
}

func fromEnv(t Target) Target {
	if t.JWTSecret == "" && !t.Dev {
		t.JWTSecret = os.Getenv("HANDOFF_JWT_SECRET")
	}
	t.URL = strings.TrimRight(t.URL, "/")
	return t
}

func (t Target) validate() error {
	u, err := url.Parse(t.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--target %q: want a base URL like http://127.0.0.1:8080", t.URL)
	}
	switch {
	case t.Server != ServerHandoff && t.Server != ServerCentrifugo && t.Server != ServerAbly:
		return fmt.Errorf("--server %q: want %s, %s or %s", t.Server, ServerHandoff, ServerAbly, ServerCentrifugo)
	case t.Format != "json" && t.Format != "msgpack":
		return fmt.Errorf("--format %q: want json or msgpack", t.Format)
	case t.Server == ServerAbly && !validKey(t.APIKey):
		return errors.New("--api-key keyName:secret is required (one of the server's --api-keys): the Ably sockets connect with it")
	case t.Server == ServerCentrifugo && t.Dev:
		return errors.New("--dev is for handoff; centrifugo needs --jwt-secret (its client.token.hmac_secret_key)")
	case t.Server == ServerCentrifugo && !validNamespace(t.Namespace):
		return fmt.Errorf("--namespace %q: letters, digits, '_' and '-' only", t.Namespace)
	case t.JWTSecret == "" && !t.Dev:
		return errors.New("a token source is required: --jwt-secret (or HANDOFF_JWT_SECRET), or --dev")
	case t.JWTSecret != "" && t.Dev:
		return errors.New("--jwt-secret and --dev are exclusive")
	case t.PID < 0 || t.AuxPID < 0:
		return errors.New("--pid and --aux-pid must be process ids")
	case t.SourceIPs < 1 || t.SourceIPs > 254:
		return errors.New("--source-ips must be 1-254")
	case t.DialConcurrency < 1 || t.DialConcurrency > 1000:
		return errors.New("--dial-concurrency must be 1-1000")
	}
	return nil
}

func (c FanoutConfig) validate() error {
	if err := c.Target.validate(); err != nil {
		return err
	}
	name, secret, ok := strings.Cut(c.APIKey, ":")
	switch {
	case c.Server == ServerCentrifugo && (c.APIKey == "" || strings.ContainsAny(c.APIKey, "\r\n")):
		return errors.New("--api-key is required: Centrifugo's http_api.key")
	case c.Server != ServerCentrifugo && (!ok || name == "" || secret == ""):
		return errors.New("--api-key keyName:secret is required (one of the server's --api-keys)")
	case c.Sockets < 1 || c.Sockets > maxSockets:
		return fmt.Errorf("--sockets must be 1-%d", maxSockets)
	case c.Channels < 1 || c.Channels > maxChannels || c.Channels > c.Sockets:
		return fmt.Errorf("--channels must be 1-%d and at most --sockets", maxChannels)
	case c.Rate < 1 || c.Rate > maxRate:
		return fmt.Errorf("--rate must be 1-%d", maxRate)
	case c.Batch < 1 || c.Batch > maxBatch:
		return fmt.Errorf("--batch must be 1-%d", maxBatch)
	case c.Batch > c.Rate:
		return errors.New("--batch may not exceed --rate")
	case c.BatchSpread && c.Batch > c.Channels:
		return errors.New("--batch-spread needs --batch at most --channels: each message goes to its own channel")
	case c.Publishers < 1 || c.Publishers > maxPublishers:
		return fmt.Errorf("--publishers must be 1-%d", maxPublishers)
	case c.Duration <= 0 || c.Duration > maxDuration || c.Warmup < 0 || c.Warmup > maxDuration:
		return fmt.Errorf("--duration must be positive and --warmup not negative, both at most %v", maxDuration)
	case c.Drain < 0 || c.Drain > time.Minute:
		return errors.New("--drain must be 0-1m")
	case c.Payload < 0 || c.Payload > maxPayload:
		return fmt.Errorf("--payload must be 0-%d", maxPayload)
	}
	return nil
}

func (c IdleConfig) validate() error {
	if err := c.Target.validate(); err != nil {
		return err
	}
	switch {
	case c.PID <= 0:
		return errors.New("--pid <server pid> is required: idle measures the server's RSS")
	case c.Sockets < 1 || c.Sockets > maxSockets:
		return fmt.Errorf("--sockets must be 1-%d", maxSockets)
	case c.Channels < 1 || c.Channels > maxChannels || c.Channels > c.Sockets:
		return fmt.Errorf("--channels must be 1-%d and at most --sockets", maxChannels)
	case c.Hold < 0 || c.Hold > maxDuration:
		return fmt.Errorf("--hold must be 0-%v", maxDuration)
	}
	return nil
}

// label names the server in results: the Ably target with its format.
func (t Target) label() string {
	if t.Server == ServerAbly {
		return t.Server + "-" + t.Format
	}
	return t.Server
}

// validKey reports a keyName:secret API key.
func validKey(k string) bool {
	name, secret, ok := strings.Cut(k, ":")
	return ok && name != "" && secret != ""
}

// validNamespace keeps the bench's Centrifugo channel names plain.
func validNamespace(ns string) bool {
	for _, r := range ns {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
