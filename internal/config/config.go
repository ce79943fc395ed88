// Package config defines every setting of `handoff serve`: a flag, its
// HANDOFF_* environment twin, its default, and the checks that make a bad
// production configuration fail at start with the setting's name.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/ablybridge"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/blob"
	"github.com/handoff-health/handoff/internal/capture"
	"github.com/handoff-health/handoff/internal/commit"
	"github.com/handoff-health/handoff/internal/httpx"
	"github.com/handoff-health/handoff/internal/realtime"
	"github.com/handoff-health/handoff/presence"
)

// Config is the whole server configuration. Each field's zero value is
// documented on the flag that sets it (see Register).
type Config struct {
	Addr      string
	PublicURL string
	DataDir   string
	Dev       bool
	// TestProvisioner serves POST /apps and DELETE /apps/{id}, ably-go's
	// test-app provisioner (make conformance). Loopback only; never in
	// production.
	TestProvisioner bool
	// DebugAddr is the loopback address of the profiling listener
	// (net/http/pprof, server/debug.go); empty, the default: no listener.
	DebugAddr string

	LogLevel  string
	LogFormat string

	JWTSecret string
	APIKeys   string

	RedisAddrs    string
	RedisPassword string
	RedisMaster   string
	RedisDB       int
	RedisPrefix   string

	HistorySize int
	HistoryTTL  time.Duration
	// DedupeWindow is how long a channel remembers published message ids
	// (Ably idempotent publishing, hub/dedupe.go).
	DedupeWindow time.Duration
	// SessionTTL is how long a capture session lives after its last
	// change. It may not exceed HistoryTTL: a desktop resuming a live
	// session must still find the channel's history.
	SessionTTL time.Duration
	// PresenceGrace is how long a dropped connection's presence members
	// (the phone's "connected" on the desktop) stay before they leave.
	PresenceGrace time.Duration

	S3Bucket    string
	S3Endpoint  string
	S3Region    string
	S3PathStyle bool

	MaxImages       int
	MaxImageBytes   int64
	ClaimsPerMinute float64

	// Storage bounds (issue 13): a session's byte quota (pending uploads
	// included), its absolute lifetime, and a facility's open sessions.
	MaxSessionBytes            int64
	MaxSessionLifetime         time.Duration
	MaxOpenSessionsPerFacility int
	// Image integrity (issue 13): the most pixels (width × height) an
	// image header may declare. Zero after Register only if set so.
	MaxImagePixels int64

	ALEXBaseURL          string
	ALEXTokenURL         string
	ALEXClientID         string
	ALEXClientSecret     string
	ALEXScope            string
	ALEXIdentifierSystem string
	ALEXAppIDHeader      string
	ALEXAppID            string

	HostOrigins string

	AblyKey string
	// WidgetKey names the --api-keys key that signs the desktop widget's
	// Ably TokenRequests (POST /api/medtech/session/ably-token) when the
	// widget talks to handoff's own Ably socket and there is no Ably key.
	WidgetKey           string
	AblyChannelTemplate string
	AblyEventNames      string

	ShutdownTimeout time.Duration

	// The edge (issue 13): who the client is behind a proxy, how long a
	// request may take to arrive, and how many connections one client and
	// the node may hold. Defaults and their reasons: defaults.go and
	// realtime's and blob's Default* constants.
	TrustedProxies          string
	ReadHeaderTimeout       time.Duration
	IdleTimeout             time.Duration
	BodyTimeout             time.Duration
	UploadTimeout           time.Duration
	UploadMinRate           int64
	MaxConns                int
	MaxConnsPerAddr         int
	MaxUnauthSocketsPerAddr int

	// Credentials and dev mode (issue 13). APIKeyCapabilities is a JSON
	// object keyName → Ably capability; a key it does not name may do
	// everything except publish server-owned event names. JWTAudience and
	// JWTIssuer are checked only when set. DevAllowLAN lets --dev listen
	// on a non-loopback address, on purpose.
	APIKeyCapabilities string
	JWTMaxLifetime     time.Duration
	JWTAudience        string
	JWTIssuer          string
	DevAllowLAN        bool

	// Filing (issue 15): how long a commit request keeps the GP waiting
	// before it answers and files the rest in the background.
	CommitWait time.Duration

	// envErrs holds the malformed HANDOFF_* values Register met; Validate
	// reports them, so a typo in a number fails at start instead of
	// silently using the default. Kept per Config so one Register's
	// mistakes never leak into another's Validate.
	envErrs []error
}

// Register defines every setting on fs. A setting's default is taken from
// its HANDOFF_* environment variable when that is set, so flags override
// the environment, which overrides the built-in default. Parse the
// returned Flags, not fs directly, so secrets are filled in too.
func Register(fs *flag.FlagSet, c *Config) *Flags {
	c.envErrs = nil
	env := &envReader{errs: &c.envErrs}
	f := &Flags{fs: fs, c: c}
	s := func(p *string, name, def, usage string) {
		fs.StringVar(p, name, envString(name, def), withEnv(name, usage))
	}
	b := func(p *bool, name string, def bool, usage string) {
		fs.BoolVar(p, name, env.boolean(name, def), withEnv(name, usage))
	}
	i := func(p *int, name string, def int, usage string) {
		fs.IntVar(p, name, env.integer(name, def), withEnv(name, usage))
	}
	d := func(p *time.Duration, name string, def time.Duration, usage string) {
		fs.DurationVar(p, name, env.duration(name, def), withEnv(name, usage))
	}
	// Secrets never become flag defaults, which --help would print; Parse
	// reads their environment variables after the flags.
	sec := func(p *string, name, usage string) {
		fs.StringVar(p, name, "", withEnv(name, usage))
		f.secrets = append(f.secrets, secretFlag{name, p})
	}

	s(&c.Addr, "addr", DefaultAddr, "listen address; use :8080 to let phones on the LAN reach a laptop")
	s(&c.PublicURL, "public-url", "", "base URL phones and browsers use to reach this server (empty: http://<addr>)")
	s(&c.DataDir, "data-dir", DefaultDataDir, "directory for local images and the ALEX outbox")
	s(&c.DebugAddr, "debug-addr", "", "loopback address (e.g. 127.0.0.1:6060) of a separate listener serving /debug/pprof/; empty: none. Never on --addr")
	b(&c.Dev, "dev", false, "dev mode: built-in demo practice and dev tokens for the built-in pages; never in production")
	s(&c.LogLevel, "log-level", DefaultLogLevel, "log level: debug, info, warn, error")
	s(&c.LogFormat, "log-format", DefaultLogFormat, "log format: json, console, or auto (console on a terminal)")

	sec(&c.JWTSecret, "jwt-secret", "HS256 secret (>= 32 bytes) of desktop JWTs; required unless --dev")
	sec(&c.APIKeys, "api-keys", "comma-separated keyName:secret API keys for POST /channels/{channel}/messages")

	s(&c.RedisAddrs, "redis-addrs", "", "comma-separated Redis addresses; empty: in-process memory backend (single node)")
	sec(&c.RedisPassword, "redis-password", "Redis password")
	s(&c.RedisMaster, "redis-master", "", "Redis Sentinel master name (with sentinel addresses in --redis-addrs)")
	i(&c.RedisDB, "redis-db", 0, "Redis database number (standalone and Sentinel only)")
	s(&c.RedisPrefix, "redis-prefix", DefaultRedisPrefix, "prefix of every Redis key")

	i(&c.HistorySize, "history-size", hub.DefaultHistorySize, "events kept per channel for replay")
	d(&c.HistoryTTL, "history-ttl", hub.DefaultHistoryTTL, "how long a channel's history outlives its last event")
	d(&c.DedupeWindow, "dedupe-window", hub.DefaultDedupeWindow, "how long a channel remembers message ids, so a retried publish is stored once (Ably's idempotency window)")
	d(&c.SessionTTL, "session-ttl", capture.DefaultSessionTTL, "how long a capture session lives after its last change; at most --history-ttl, and capped at it when not set")
	d(&c.PresenceGrace, "presence-grace", presence.DefaultGrace, "how long a dropped connection stays present (e.g. the desktop's \"Phone connected\") before it leaves")

	s(&c.S3Bucket, "s3-bucket", "", "S3 bucket for images; empty: local directory under --data-dir")
	s(&c.S3Endpoint, "s3-endpoint", "", "S3-compatible endpoint URL (empty: AWS)")
	s(&c.S3Region, "s3-region", DefaultS3Region, "S3 region")
	b(&c.S3PathStyle, "s3-path-style", false, "use path-style S3 URLs (most S3-compatible stores need this)")

	i(&c.MaxImages, "max-images", capture.DefaultMaxImages, "maximum images per capture session")
	fs.Int64Var(&c.MaxImageBytes, "max-image-bytes", env.integer64("max-image-bytes", capture.DefaultMaxImageBytes),
		withEnv("max-image-bytes", "maximum bytes per image"))

	fs.Float64Var(&c.ClaimsPerMinute, "claims-per-minute", env.number("claims-per-minute", capture.DefaultClaimsPerMinute),
		withEnv("claims-per-minute", "QR claims allowed per client address per minute; negative turns the limit off (load tests)"))

	fs.Int64Var(&c.MaxSessionBytes, "max-session-bytes", env.integer64("max-session-bytes", capture.DefaultMaxSessionBytes),
		withEnv("max-session-bytes", "byte quota per capture session, uploads not yet registered included; at least --max-image-bytes"))
	d(&c.MaxSessionLifetime, "max-session-lifetime", capture.DefaultMaxSessionLifetime, "absolute lifetime of a capture session from its creation, however active; at least --session-ttl")
	i(&c.MaxOpenSessionsPerFacility, "max-open-sessions-per-facility", capture.DefaultMaxOpenSessionsPerFacility, "maximum open capture sessions per facility")
	// Image integrity (issue 13).
	fs.Int64Var(&c.MaxImagePixels, "max-image-pixels", env.integer64("max-image-pixels", capture.DefaultMaxImagePixels),
		withEnv("max-image-pixels", "maximum pixels (width × height) an image header may declare; register refuses larger images"))

	s(&c.ALEXBaseURL, "alex-base-url", "", "ALEX FHIR base URL, e.g. https://alexapiuat.medtechglobal.com/FHIR; empty: outbox files under --data-dir")
	s(&c.ALEXTokenURL, "alex-token-url", "", "OAuth2 token URL (https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token)")
	s(&c.ALEXClientID, "alex-client-id", "", "OAuth2 client id")
	sec(&c.ALEXClientSecret, "alex-client-secret", "OAuth2 client secret")
	s(&c.ALEXScope, "alex-scope", "", "OAuth2 scope, e.g. api://<id>/.default")
	s(&c.ALEXIdentifierSystem, "alex-identifier-system", "", "identifier system of Media resources (empty: the built-in default)")
	s(&c.ALEXAppIDHeader, "alex-app-id-header", "", "optional app id header name sent to ALEX")
	s(&c.ALEXAppID, "alex-app-id", "", "optional app id header value")

	s(&c.HostOrigins, "host-origins", "", "comma-separated origins of host applications that may frame /desktop and postMessage it, e.g. https://pms.example.org")

	sec(&c.AblyKey, "ably-key", "Ably API key; set to mirror every event to Ably")
	s(&c.AblyChannelTemplate, "ably-channel-template", ablybridge.DefaultChannelTemplate, "Ably channel name; {sessionId} and {encounterId} are replaced")
	s(&c.WidgetKey, "widget-key", "",
		"name of the --api-keys key that signs the desktop widget's Ably TokenRequests when the widget uses handoff's own Ably socket (not with --ably-key)")
	s(&c.AblyEventNames, "ably-event-names", "", "event-name map for Ably, e.g. image.added=image-uploaded,image.removed=image-deleted")

	d(&c.ShutdownTimeout, "shutdown-timeout", DefaultShutdownTimeout, "how long graceful shutdown waits for requests to finish")
	registerEdge(fs, c, env)

	// Credentials and dev mode (issue 13).
	s(&c.APIKeyCapabilities, "api-key-capabilities", "",
		`Ably capabilities of API keys as JSON keyName → capability, e.g. {"bench":{"bench:*":["publish"]}}; keys not named get {"*":["*"]}`)
	d(&c.JWTMaxLifetime, "jwt-max-lifetime", auth.DefaultJWTMaxLifetime, "refuse desktop JWTs that expire more than this after now (or after their iat)")
	s(&c.JWTAudience, "jwt-audience", "", "when set, desktop JWTs must carry this aud")
	s(&c.JWTIssuer, "jwt-issuer", "", "when set, desktop JWTs must carry this iss")
	b(&c.TestProvisioner, "test-provisioner", false, "serve POST /apps and DELETE /apps/{id} (Ably's test-app provisioner, for make conformance); loopback --addr only, never in production")
	b(&c.DevAllowLAN, "dev-allow-lan", false, "let --dev listen on a non-loopback --addr (a real phone on the LAN); anyone on the network can then get a dev token")

	// Filing (issue 15).
	d(&c.CommitWait, "commit-wait", commit.DefaultWait, "how long a commit request waits before it answers; photos still being filed go on in the background and report by event")
	return f
}

// registerEdge defines the edge's settings: trusted proxies, read
// deadlines and connection caps.
func registerEdge(fs *flag.FlagSet, c *Config, env *envReader) {
	fs.StringVar(&c.TrustedProxies, "trusted-proxies", envString("trusted-proxies", ""),
		withEnv("trusted-proxies", "comma-separated CIDRs of the TLS-terminating proxies in front of this node; X-Forwarded-For is believed only from them"))
	d := func(p *time.Duration, name string, def time.Duration, usage string) {
		fs.DurationVar(p, name, env.duration(name, def), withEnv(name, usage))
	}
	i := func(p *int, name string, def int, usage string) {
		fs.IntVar(p, name, env.integer(name, def), withEnv(name, usage))
	}
	d(&c.ReadHeaderTimeout, "read-header-timeout", DefaultReadHeaderTimeout, "how long a client has to send a request's headers")
	d(&c.IdleTimeout, "idle-timeout", DefaultIdleTimeout, "how long an idle keep-alive connection stays open")
	d(&c.BodyTimeout, "body-timeout", DefaultBodyTimeout, "how long a client has to send the body of an API request")
	d(&c.UploadTimeout, "upload-timeout", blob.DefaultUploadTimeout, "base time a local-store image upload may take, plus its size at --upload-min-rate")
	fs.Int64Var(&c.UploadMinRate, "upload-min-rate", env.integer64("upload-min-rate", blob.DefaultUploadMinRate),
		withEnv("upload-min-rate", "slowest upload, in bytes per second, the local store waits for"))
	i(&c.MaxConns, "max-conns", DefaultMaxConns, "open connections this node accepts in all (lowered to fit the descriptor limit); 0: no cap")
	i(&c.MaxConnsPerAddr, "max-conns-per-addr", DefaultMaxConnsPerAddr, "open connections one TCP peer address may hold (trusted proxies exempt); 0: no cap")
	i(&c.MaxUnauthSocketsPerAddr, "max-unauth-sockets-per-addr", realtime.DefaultMaxUnauthPerAddr,
		"realtime sockets one client address may hold before they authenticate")
}

// Flags is a Config's settings registered on one flag set. It remembers
// which of them are secrets, so Parse can fill those from the environment
// without their values ever becoming --help defaults. Being per
// registration, flag sets registered at once (parallel tests, the load
// test's targets) share nothing.
type Flags struct {
	fs      *flag.FlagSet
	c       *Config
	secrets []secretFlag
}

type secretFlag struct {
	name string
	p    *string
}

// Parse parses args into the registered flags, then fills secrets not
// given as flags from their environment variables.
func (f *Flags) Parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	for _, sf := range f.secrets {
		if !set[sf.name] {
			*sf.p = os.Getenv(EnvName(sf.name))
		}
	}
	// Before --session-ttl existed, --history-ttl set the session lifetime
	// too. A deployment that shortened only the history keeps its shorter
	// sessions instead of failing Validate; a session TTL given explicitly
	// above the history TTL is still refused there.
	if _, inEnv := os.LookupEnv(EnvName("session-ttl")); !set["session-ttl"] && !inEnv && f.c.HistoryTTL >= minTTL {
		f.c.SessionTTL = min(f.c.SessionTTL, f.c.HistoryTTL)
	}
	return nil
}

// EnvName returns the environment variable of a flag: HANDOFF_ + upper snake.
func EnvName(flagName string) string {
	return "HANDOFF_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func withEnv(name, usage string) string { return usage + " [" + EnvName(name) + "]" }

func envString(name, def string) string {
	if v, ok := os.LookupEnv(EnvName(name)); ok {
		return v
	}
	return def
}

// envReader reads typed HANDOFF_* defaults, collecting malformed values
// into the Config being registered.
type envReader struct{ errs *[]error }

func (e *envReader) fail(name, what string) {
	*e.errs = append(*e.errs, fmt.Errorf("%s (the environment twin of --%s): %s", EnvName(name), name, what))
}

func (e *envReader) boolean(name string, def bool) bool {
	v, ok := os.LookupEnv(EnvName(name))
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.fail(name, "not a boolean")
		return def
	}
	return b
}

func (e *envReader) integer(name string, def int) int {
	v, ok := os.LookupEnv(EnvName(name))
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.fail(name, "not a whole number")
		return def
	}
	return n
}

func (e *envReader) integer64(name string, def int64) int64 {
	v, ok := os.LookupEnv(EnvName(name))
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		e.fail(name, "not a whole number")
		return def
	}
	return n
}

func (e *envReader) number(name string, def float64) float64 {
	v, ok := os.LookupEnv(EnvName(name))
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		e.fail(name, "not a number")
		return def
	}
	return f
}

func (e *envReader) duration(name string, def time.Duration) time.Duration {
	v, ok := os.LookupEnv(EnvName(name))
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		e.fail(name, "not a duration like 90s or 2h")
		return def
	}
	return d
}

// validateStorage checks the storage bounds against each other.
func (c *Config) validateStorage(bad func(string, ...any)) {
	if c.MaxSessionBytes < c.MaxImageBytes {
		bad("--max-session-bytes (%s) must be at least --max-image-bytes (%s): no image would fit",
			EnvName("max-session-bytes"), EnvName("max-image-bytes"))
	}
	if c.MaxSessionLifetime < c.SessionTTL {
		bad("--max-session-lifetime (%s) must be at least --session-ttl (%s)",
			EnvName("max-session-lifetime"), EnvName("session-ttl"))
	}
	if c.MaxOpenSessionsPerFacility < 1 {
		bad("--max-open-sessions-per-facility (%s) must be at least 1", EnvName("max-open-sessions-per-facility"))
	}
}

// Validate fails fast on missing or contradictory settings, naming them.
func (c *Config) Validate() error {
	errs := append([]error(nil), c.envErrs...)
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !c.Dev && c.JWTSecret == "" {
		bad("--jwt-secret (%s) is required unless --dev", EnvName("jwt-secret"))
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		bad("--jwt-secret (%s) must be at least 32 bytes", EnvName("jwt-secret"))
	}
	if c.HistorySize < 1 {
		bad("--history-size (%s) must be at least 1", EnvName("history-size"))
	}
	if c.HistoryTTL < minTTL {
		bad("--history-ttl (%s) must be at least 1m", EnvName("history-ttl"))
	}
	if c.DedupeWindow < time.Second {
		bad("--dedupe-window (%s) must be at least 1s", EnvName("dedupe-window"))
	}
	if c.SessionTTL < minTTL {
		bad("--session-ttl (%s) must be at least 1m", EnvName("session-ttl"))
	}
	// Refused rather than allowed: a desktop resuming a session that is
	// still alive would find its channel's history gone and miss events.
	if c.SessionTTL > c.HistoryTTL && c.HistoryTTL >= minTTL {
		bad("--session-ttl (%s) must not exceed --history-ttl (%s): a resuming desktop would lose history before its session ends",
			EnvName("session-ttl"), EnvName("history-ttl"))
	}
	if c.PresenceGrace <= 0 || c.PresenceGrace > maxPresenceGrace {
		bad("--presence-grace (%s) must be more than 0 and at most %v", EnvName("presence-grace"), maxPresenceGrace)
	}
	if c.MaxImages < 1 || c.MaxImageBytes < 1 {
		bad("--max-images (%s) and --max-image-bytes (%s) must be positive", EnvName("max-images"), EnvName("max-image-bytes"))
	}
	c.validateStorage(bad)
	if c.CommitWait < time.Second || c.CommitWait > commit.DefaultTimeout {
		bad("--commit-wait (%s) must be between 1s and %s", EnvName("commit-wait"), commit.DefaultTimeout)
	}
	if c.MaxImagePixels < 1 {
		bad("--max-image-pixels (%s) must be positive", EnvName("max-image-pixels"))
	}
	if c.RedisMaster != "" && c.RedisAddrs == "" {
		bad("--redis-master (%s) needs sentinel addresses in --redis-addrs (%s)", EnvName("redis-master"), EnvName("redis-addrs"))
	}
	if c.ALEXBaseURL != "" {
		required := []struct{ flag, value string }{
			{"alex-token-url", c.ALEXTokenURL}, {"alex-client-id", c.ALEXClientID},
			{"alex-client-secret", c.ALEXClientSecret}, {"alex-scope", c.ALEXScope},
		}
		for _, r := range required {
			if r.value == "" {
				bad("--%s (%s) is required with --alex-base-url", r.flag, EnvName(r.flag))
			}
		}
	}
	for _, o := range c.HostOriginList() {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" {
			bad("--host-origins (%s): %q is not an origin like https://pms.example.org", EnvName("host-origins"), o)
		}
	}
	if c.LogFormat != "auto" && c.LogFormat != "json" && c.LogFormat != "console" {
		bad("--log-format (%s) must be json, console or auto", EnvName("log-format"))
	}
	errs = append(errs, c.validateEdge()...)
	errs = append(errs, c.validateCredentials()...)
	errs = append(errs, c.validateWiring()...)
	return errors.Join(errs...)
}

// validateEdge checks the edge's settings.
func (c *Config) validateEdge() []error {
	var errs []error
	if _, err := httpx.ParseProxies(c.TrustedProxies); err != nil {
		errs = append(errs, fmt.Errorf("--trusted-proxies (%s): %w", EnvName("trusted-proxies"), err))
	}
	for _, t := range []struct {
		name string
		d    time.Duration
	}{{"read-header-timeout", c.ReadHeaderTimeout}, {"idle-timeout", c.IdleTimeout}, {"body-timeout", c.BodyTimeout}, {"upload-timeout", c.UploadTimeout}} {
		if t.d < time.Second {
			errs = append(errs, fmt.Errorf("--%s (%s) must be at least 1s", t.name, EnvName(t.name)))
		}
	}
	if c.UploadMinRate < 1 {
		errs = append(errs, fmt.Errorf("--upload-min-rate (%s) must be at least 1 byte per second", EnvName("upload-min-rate")))
	}
	if c.MaxConns < 0 || c.MaxConnsPerAddr < 0 {
		errs = append(errs, fmt.Errorf("--max-conns (%s) and --max-conns-per-addr (%s) must not be negative",
			EnvName("max-conns"), EnvName("max-conns-per-addr")))
	}
	errs = append(errs, c.validateTestProvisioner()...)
	errs = append(errs, c.validateDebugAddr()...)
	if c.MaxUnauthSocketsPerAddr < 1 {
		errs = append(errs, fmt.Errorf("--max-unauth-sockets-per-addr (%s) must be at least 1", EnvName("max-unauth-sockets-per-addr")))
	}
	return errs
}

// validateCredentials checks the settings of issue 13: the JWT lifetime,
// the Ably channel template, and that dev mode runs with nothing of
// production. Dev mode mints JWTs for anyone who asks, so beside a real
// secret it would hand out real desktop tokens, and beside Redis, S3 or
// ALEX it would act on real data.
func (c *Config) validateCredentials() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.JWTMaxLifetime < minTTL {
		bad("--jwt-max-lifetime (%s) must be at least 1m", EnvName("jwt-max-lifetime"))
	}
	if err := ablybridge.CheckChannelTemplate(c.AblyChannelTemplate); err != nil {
		bad("--ably-channel-template (%s): %v", EnvName("ably-channel-template"), err)
	}
	if c.WidgetKey != "" {
		switch {
		case c.AblyKey != "":
			bad("--widget-key (%s) is for a widget that uses handoff without Ably; with --ably-key (%s) the widget's tokens are signed with the Ably key, which handoff accepts too",
				EnvName("widget-key"), EnvName("ably-key"))
		case !c.HasAPIKey(c.WidgetKey):
			bad("--widget-key (%s) must name one of the keys in --api-keys (%s)", EnvName("widget-key"), EnvName("api-keys"))
		}
	}
	if name, _, ok := strings.Cut(c.AblyKey, ":"); ok && c.HasAPIKey(name) {
		bad("--ably-key (%s) has the name of a key in --api-keys (%s): handoff accepts the Ably key too, so the names must differ",
			EnvName("ably-key"), EnvName("api-keys"))
	}
	if !c.Dev {
		if c.DevAllowLAN {
			bad("--dev-allow-lan (%s) is only for --dev", EnvName("dev-allow-lan"))
		}
		return errs
	}
	conflicts := []struct {
		flag string
		set  bool
	}{
		{"jwt-secret", c.JWTSecret != ""},
		{"redis-addrs", c.RedisAddrs != ""},
		{"s3-bucket", c.S3Bucket != ""},
		{"alex-base-url", c.ALEXBaseURL != ""},
	}
	for _, k := range conflicts {
		if k.set {
			bad("--dev refuses to start with --%s (%s): dev mode mints desktop tokens for anyone and must never touch production", k.flag, EnvName(k.flag))
		}
	}
	if !c.DevAllowLAN && !loopback(c.Addr) {
		bad("--dev refuses to listen on --addr %q (%s), which is not loopback: anyone on the network could get a dev token; add --dev-allow-lan (%s) to mean it",
			c.Addr, EnvName("addr"), EnvName("dev-allow-lan"))
	}
	return errs
}

// HasAPIKey reports whether --api-keys has a key named name.
func (c *Config) HasAPIKey(name string) bool {
	_, ok := c.APIKeySecret(name)
	return ok
}

// APIKeySecret returns the full "name:secret" of the --api-keys key named
// name.
func (c *Config) APIKeySecret(name string) (string, bool) {
	for _, item := range strings.Split(c.APIKeys, ",") {
		item = strings.TrimSpace(item)
		if n, _, ok := strings.Cut(item, ":"); ok && n == name {
			return item, true
		}
	}
	return "", false
}

// validateTestProvisioner refuses --test-provisioner on an address other
// machines can reach: anyone who can call POST /apps gets a working key.
func (c *Config) validateTestProvisioner() []error {
	if c.TestProvisioner && !loopback(c.Addr) {
		return []error{fmt.Errorf("--test-provisioner (%s) refuses to listen on --addr %q (%s), which is not loopback: anyone on the network could create API keys",
			EnvName("test-provisioner"), c.Addr, EnvName("addr"))}
	}
	return nil
}

// validateDebugAddr allows the profiling listener on loopback only, and
// never on --addr: its heap and goroutine dumps show what the node holds,
// and its CPU profile costs the node CPU, so only someone already on the
// machine may ask. There is deliberately no override; an operator who
// needs it remotely tunnels to it (ssh -L).
func (c *Config) validateDebugAddr() []error {
	if c.DebugAddr == "" {
		return nil
	}
	if !loopback(c.DebugAddr) {
		return []error{fmt.Errorf("--debug-addr (%s) %q is not a loopback address like 127.0.0.1:6060: the profiles must not be reachable from the network (tunnel to it instead)",
			EnvName("debug-addr"), c.DebugAddr)}
	}
	if c.DebugAddr == c.Addr {
		return []error{fmt.Errorf("--debug-addr (%s) must differ from --addr (%s): the profiles never share the main listener",
			EnvName("debug-addr"), EnvName("addr"))}
	}
	return nil
}

// loopback reports whether a listen address is reachable only from this
// machine: 127.0.0.0/8, ::1, or localhost. ":8080" and "0.0.0.0:8080"
// listen on every interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// RedisAddrList splits RedisAddrs.
func (c *Config) RedisAddrList() []string {
	var out []string
	for _, a := range strings.Split(c.RedisAddrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// HostOriginList splits HostOrigins.
func (c *Config) HostOriginList() []string {
	var out []string
	for _, o := range strings.Split(c.HostOrigins, ",") {
		if o = strings.TrimRight(strings.TrimSpace(o), "/"); o != "" {
			out = append(out, o)
		}
	}
	return out
}

// BaseURL is the public URL without a trailing slash.
func (c *Config) BaseURL() string {
	if c.PublicURL != "" {
		return strings.TrimRight(c.PublicURL, "/")
	}
	host := c.Addr
	if strings.HasPrefix(host, ":") {
		host = "localhost" + host
	}
	return "http://" + host
}
