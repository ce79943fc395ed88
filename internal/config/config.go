// Package config defines every setting of `handoff serve`: a flag, its
// HANDOFF_* environment twin, its default, and the checks that make a bad
// production configuration fail at start with the setting's name.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config is the whole server configuration. Each field's zero value is
// documented on the flag that sets it (see Register).
type Config struct {
	Addr      string
	PublicURL string
	DataDir   string
	Dev       bool

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

	S3Bucket    string
	S3Endpoint  string
	S3Region    string
	S3PathStyle bool

	MaxImages       int
	MaxImageBytes   int64
	ClaimsPerMinute float64

	ALEXBaseURL          string
	ALEXTokenURL         string
	ALEXClientID         string
	ALEXClientSecret     string
	ALEXScope            string
	ALEXIdentifierSystem string
	ALEXAppIDHeader      string
	ALEXAppID            string

	HostOrigins string

	AblyKey             string
	AblyChannelTemplate string
	AblyEventNames      string

	ShutdownTimeout time.Duration

	// envErrs holds the malformed HANDOFF_* values Register met; Validate
	// reports them, so a typo in a number fails at start instead of
	// silently using the default. Kept per Config so one Register's
	// mistakes never leak into another's Validate.
	envErrs []error
}

// Register defines every setting on fs. A setting's default is taken from
// its HANDOFF_* environment variable when that is set, so flags override
// the environment, which overrides the built-in default.
func Register(fs *flag.FlagSet, c *Config) {
	c.envErrs = nil
	env := &envReader{errs: &c.envErrs}
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
		secretFlagsMu.Lock()
		secretFlags[fs] = append(secretFlags[fs], secretFlag{name, p})
		secretFlagsMu.Unlock()
	}

	s(&c.Addr, "addr", "127.0.0.1:8080", "listen address; use :8080 to let phones on the LAN reach a laptop")
	s(&c.PublicURL, "public-url", "", "base URL phones and browsers use to reach this server (empty: http://<addr>)")
	s(&c.DataDir, "data-dir", "./data", "directory for local images and the ALEX outbox")
	b(&c.Dev, "dev", false, "dev mode: built-in demo practice and dev tokens for the built-in pages; never in production")
	s(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	s(&c.LogFormat, "log-format", "auto", "log format: json, console, or auto (console on a terminal)")

	sec(&c.JWTSecret, "jwt-secret", "HS256 secret (>= 32 bytes) of desktop JWTs; required unless --dev")
	sec(&c.APIKeys, "api-keys", "comma-separated keyName:secret API keys for POST /channels/{channel}/messages")

	s(&c.RedisAddrs, "redis-addrs", "", "comma-separated Redis addresses; empty: in-process memory backend (single node)")
	sec(&c.RedisPassword, "redis-password", "Redis password")
	s(&c.RedisMaster, "redis-master", "", "Redis Sentinel master name (with sentinel addresses in --redis-addrs)")
	i(&c.RedisDB, "redis-db", 0, "Redis database number (standalone and Sentinel only)")
	s(&c.RedisPrefix, "redis-prefix", "handoff", "prefix of every Redis key")

	i(&c.HistorySize, "history-size", 1000, "events kept per channel for replay")
	d(&c.HistoryTTL, "history-ttl", 2*time.Hour, "how long a channel's history outlives its last event")

	s(&c.S3Bucket, "s3-bucket", "", "S3 bucket for images; empty: local directory under --data-dir")
	s(&c.S3Endpoint, "s3-endpoint", "", "S3-compatible endpoint URL (empty: AWS)")
	s(&c.S3Region, "s3-region", "us-east-1", "S3 region")
	b(&c.S3PathStyle, "s3-path-style", false, "use path-style S3 URLs (most S3-compatible stores need this)")

	i(&c.MaxImages, "max-images", 20, "maximum images per capture session")
	fs.Int64Var(&c.MaxImageBytes, "max-image-bytes", int64(env.integer("max-image-bytes", 20<<20)), withEnv("max-image-bytes", "maximum bytes per image"))

	fs.Float64Var(&c.ClaimsPerMinute, "claims-per-minute", env.number("claims-per-minute", 10),
		withEnv("claims-per-minute", "QR claims allowed per client address per minute; negative turns the limit off (load tests)"))

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
	s(&c.AblyChannelTemplate, "ably-channel-template", "session:{sessionId}", "Ably channel name; {sessionId} and {encounterId} are replaced")
	s(&c.AblyEventNames, "ably-event-names", "", "event-name map for Ably, e.g. image.added=image-uploaded,image.removed=image-deleted")

	d(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long graceful shutdown waits for requests to finish")
}

type secretFlag struct {
	name string
	p    *string
}

// secretFlags remembers, per flag set, which flags are secrets. Flag sets
// may be registered concurrently (tests, the load test's targets), hence
// the lock.
var (
	secretFlagsMu sync.Mutex
	secretFlags   = map[*flag.FlagSet][]secretFlag{}
)

// Parse parses args into the flags Register defined on fs, then fills
// secrets not given as flags from their environment variables.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	secretFlagsMu.Lock()
	secrets := secretFlags[fs]
	secretFlagsMu.Unlock()
	for _, sf := range secrets {
		if !set[sf.name] {
			*sf.p = os.Getenv(EnvName(sf.name))
		}
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
	*e.errs = append(*e.errs, fmt.Errorf("%s: %s", EnvName(name), what))
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
	if c.HistoryTTL < time.Minute {
		bad("--history-ttl (%s) must be at least 1m", EnvName("history-ttl"))
	}
	if c.MaxImages < 1 || c.MaxImageBytes < 1 {
		bad("--max-images (%s) and --max-image-bytes (%s) must be positive", EnvName("max-images"), EnvName("max-image-bytes"))
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
	return errors.Join(errs...)
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
