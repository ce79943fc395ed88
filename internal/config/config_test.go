package config_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/ablybridge"
	"github.com/handoff-health/handoff/internal/capture"
	"github.com/handoff-health/handoff/internal/config"
	"github.com/handoff-health/handoff/internal/testutil"
)

const goodSecret = "0123456789abcdef0123456789abcdef"

// cleanEnv removes every HANDOFF_* variable for the test, so the machine's
// environment cannot change what a test sees; t.Setenv restores them after.
func cleanEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "HANDOFF_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

// load registers the settings on a fresh flag set and parses args, the way
// `handoff serve` does. Usage output goes to the returned buffer.
func load(t *testing.T, args ...string) (config.Config, *bytes.Buffer, error) {
	t.Helper()
	var c config.Config
	var out bytes.Buffer
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(&out)
	err := config.Register(fs, &c).Parse(args)
	return c, &out, err
}

func mustLoad(t *testing.T, args ...string) config.Config {
	t.Helper()
	c, out, err := load(t, args...)
	if err != nil {
		t.Fatalf("Parse(%q): %v\n%s", args, err, out)
	}
	return c
}

func TestDefaults(t *testing.T) {
	cleanEnv(t)
	c := mustLoad(t)
	checks := []struct {
		name      string
		got, want any
	}{
		{"Addr", c.Addr, "127.0.0.1:8080"},
		{"PublicURL", c.PublicURL, ""},
		{"DataDir", c.DataDir, "./data"},
		{"Dev", c.Dev, false},
		{"DebugAddr", c.DebugAddr, ""},
		{"LogLevel", c.LogLevel, "info"},
		{"LogFormat", c.LogFormat, "auto"},
		{"JWTSecret", c.JWTSecret, ""},
		{"APIKeys", c.APIKeys, ""},
		{"RedisAddrs", c.RedisAddrs, ""},
		{"RedisPassword", c.RedisPassword, ""},
		{"RedisDB", c.RedisDB, 0},
		{"RedisPrefix", c.RedisPrefix, "handoff"},
		{"HistorySize", c.HistorySize, 1000},
		{"HistoryTTL", c.HistoryTTL, 2 * time.Hour},
		{"SessionTTL", c.SessionTTL, 2 * time.Hour},
		{"S3Bucket", c.S3Bucket, ""},
		{"S3Region", c.S3Region, "us-east-1"},
		{"S3PathStyle", c.S3PathStyle, false},
		{"MaxImages", c.MaxImages, 20},
		{"MaxImageBytes", c.MaxImageBytes, int64(20 << 20)},
		{"MaxImagePixels", c.MaxImagePixels, int64(50_000_000)},
		{"ClaimsPerMinute", c.ClaimsPerMinute, 10.0},
		{"ALEXBaseURL", c.ALEXBaseURL, ""},
		{"ALEXClientSecret", c.ALEXClientSecret, ""},
		{"HostOrigins", c.HostOrigins, ""},
		{"AblyKey", c.AblyKey, ""},
		{"AblyChannelTemplate", c.AblyChannelTemplate, "session:{sessionId}"},
		{"ShutdownTimeout", c.ShutdownTimeout, 15 * time.Second},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	// The defaults are a valid dev configuration, and production needs
	// exactly one more thing: the JWT secret.
	c.Dev = true
	if err := c.Validate(); err != nil {
		t.Errorf("defaults with --dev: %v", err)
	}
	c.Dev = false
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "HANDOFF_JWT_SECRET") {
		t.Fatalf("defaults without --dev: %v", err)
	}
	if strings.Count(err.Error(), "\n") != 0 {
		t.Errorf("more than one complaint: %v", err)
	}
}

func TestPrecedence(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		args []string
		get  func(config.Config) any
		want any
	}{
		{"string env over default", map[string]string{"HANDOFF_ADDR": "127.0.0.1:9999"}, nil,
			func(c config.Config) any { return c.Addr }, "127.0.0.1:9999"},
		{"string flag over env", map[string]string{"HANDOFF_ADDR": "127.0.0.1:9999"}, []string{"--addr", "127.0.0.1:7777"},
			func(c config.Config) any { return c.Addr }, "127.0.0.1:7777"},
		{"set but empty env is empty", map[string]string{"HANDOFF_S3_REGION": ""}, nil,
			func(c config.Config) any { return c.S3Region }, ""},
		{"int env", map[string]string{"HANDOFF_REDIS_DB": "3"}, nil,
			func(c config.Config) any { return c.RedisDB }, 3},
		{"int flag over env", map[string]string{"HANDOFF_REDIS_DB": "3"}, []string{"--redis-db=5"},
			func(c config.Config) any { return c.RedisDB }, 5},
		{"int64 env", map[string]string{"HANDOFF_MAX_IMAGE_BYTES": "1048576"}, nil,
			func(c config.Config) any { return c.MaxImageBytes }, int64(1 << 20)},
		{"int64 flag over env", map[string]string{"HANDOFF_MAX_IMAGE_BYTES": "1048576"}, []string{"--max-image-bytes", "2048"},
			func(c config.Config) any { return c.MaxImageBytes }, int64(2048)},
		{"bool env", map[string]string{"HANDOFF_DEV": "true"}, nil,
			func(c config.Config) any { return c.Dev }, true},
		{"bool flag over env", map[string]string{"HANDOFF_DEV": "true"}, []string{"--dev=false"},
			func(c config.Config) any { return c.Dev }, false},
		{"bool env 1", map[string]string{"HANDOFF_S3_PATH_STYLE": "1"}, nil,
			func(c config.Config) any { return c.S3PathStyle }, true},
		{"duration env", map[string]string{"HANDOFF_HISTORY_TTL": "90m"}, nil,
			func(c config.Config) any { return c.HistoryTTL }, 90 * time.Minute},
		{"duration flag over env", map[string]string{"HANDOFF_HISTORY_TTL": "90m"}, []string{"--history-ttl", "3h"},
			func(c config.Config) any { return c.HistoryTTL }, 3 * time.Hour},
		{"session ttl env", map[string]string{"HANDOFF_SESSION_TTL": "45m"}, nil,
			func(c config.Config) any { return c.SessionTTL }, 45 * time.Minute},
		{"session ttl flag over env", map[string]string{"HANDOFF_SESSION_TTL": "45m"}, []string{"--session-ttl", "30m"},
			func(c config.Config) any { return c.SessionTTL }, 30 * time.Minute},
		{"a longer history ttl leaves the session ttl alone", map[string]string{"HANDOFF_HISTORY_TTL": "3h"}, nil,
			func(c config.Config) any { return c.SessionTTL }, 2 * time.Hour},
		{"a shorter history ttl caps the default session ttl", map[string]string{"HANDOFF_HISTORY_TTL": "90m"}, nil,
			func(c config.Config) any { return c.SessionTTL }, 90 * time.Minute},
		{"a shorter history ttl flag caps the default session ttl", nil, []string{"--history-ttl", "30m"},
			func(c config.Config) any { return c.SessionTTL }, 30 * time.Minute},
		{"an explicit session ttl is not capped", nil, []string{"--history-ttl", "30m", "--session-ttl", "20m"},
			func(c config.Config) any { return c.SessionTTL }, 20 * time.Minute},
		{"float env", map[string]string{"HANDOFF_CLAIMS_PER_MINUTE": "-1"}, nil,
			func(c config.Config) any { return c.ClaimsPerMinute }, -1.0},
		{"float flag over env", map[string]string{"HANDOFF_CLAIMS_PER_MINUTE": "-1"}, []string{"--claims-per-minute", "2.5"},
			func(c config.Config) any { return c.ClaimsPerMinute }, 2.5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cleanEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c := mustLoad(t, tc.args...)
			if got := tc.get(c); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			c.Dev = true
			if err := c.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestMalformedEnv(t *testing.T) {
	cases := []struct {
		env, value string
		get        func(config.Config) any
		def        any // the built-in default, which is kept
	}{
		{"HANDOFF_REDIS_DB", "two", func(c config.Config) any { return c.RedisDB }, 0},
		{"HANDOFF_HISTORY_SIZE", "1e3", func(c config.Config) any { return c.HistorySize }, 1000},
		{"HANDOFF_MAX_IMAGE_BYTES", "20MB", func(c config.Config) any { return c.MaxImageBytes }, int64(20 << 20)},
		{"HANDOFF_CLAIMS_PER_MINUTE", "ten", func(c config.Config) any { return c.ClaimsPerMinute }, 10.0},
		{"HANDOFF_DEV", "maybe", func(c config.Config) any { return c.Dev }, false},
		{"HANDOFF_S3_PATH_STYLE", "yes", func(c config.Config) any { return c.S3PathStyle }, false},
		{"HANDOFF_HISTORY_TTL", "2hours", func(c config.Config) any { return c.HistoryTTL }, 2 * time.Hour},
		{"HANDOFF_SESSION_TTL", "2hours", func(c config.Config) any { return c.SessionTTL }, 2 * time.Hour},
		{"HANDOFF_SHUTDOWN_TIMEOUT", "15", func(c config.Config) any { return c.ShutdownTimeout }, 15 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.env, func(t *testing.T) {
			cleanEnv(t)
			t.Setenv(tc.env, tc.value)
			c := mustLoad(t, "--jwt-secret", goodSecret)
			testutil.Check(t, "the built-in default", tc.def, tc.get(c))
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.env) {
				t.Fatalf("Validate = %v, want an error naming %s", err, tc.env)
			}
			if strings.Contains(err.Error(), tc.value) {
				t.Errorf("error echoes the value: %v", err)
			}
		})
	}
}

// TestExplicitSessionTTLBeyondHistory: only a session TTL the operator
// chose is refused for outliving the history; the message names both.
func TestExplicitSessionTTLBeyondHistory(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"flags", nil, []string{"--history-ttl", "1h", "--session-ttl", "2h"}},
		{"environment", map[string]string{"HANDOFF_HISTORY_TTL": "1h", "HANDOFF_SESSION_TTL": "2h"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cleanEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c := mustLoad(t, append([]string{"--dev"}, tc.args...)...)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate accepted a session outliving its history")
			}
			for _, w := range []string{"HANDOFF_SESSION_TTL", "HANDOFF_HISTORY_TTL"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %s: %v", w, err)
				}
			}
		})
	}
}

// TestMalformedEnvDoesNotLeak: a bad value seen by one Register is that
// configuration's problem only; a later Register with a clean environment
// validates, whatever ran before.
func TestMalformedEnvDoesNotLeak(t *testing.T) {
	cleanEnv(t)
	t.Setenv("HANDOFF_REDIS_DB", "two")
	bad := mustLoad(t, "--dev")
	if err := bad.Validate(); err == nil {
		t.Fatal("malformed env accepted")
	}
	os.Unsetenv("HANDOFF_REDIS_DB")
	good := mustLoad(t, "--dev")
	if err := good.Validate(); err != nil {
		t.Fatalf("clean configuration after a bad one: %v", err)
	}
	// The bad configuration keeps its error.
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "HANDOFF_REDIS_DB") {
		t.Fatalf("bad configuration lost its error: %v", err)
	}
}

var secretSettings = []struct {
	flag, env string
	get       func(config.Config) string
}{
	{"jwt-secret", "HANDOFF_JWT_SECRET", func(c config.Config) string { return c.JWTSecret }},
	{"api-keys", "HANDOFF_API_KEYS", func(c config.Config) string { return c.APIKeys }},
	{"redis-password", "HANDOFF_REDIS_PASSWORD", func(c config.Config) string { return c.RedisPassword }},
	{"alex-client-secret", "HANDOFF_ALEX_CLIENT_SECRET", func(c config.Config) string { return c.ALEXClientSecret }},
	{"ably-key", "HANDOFF_ABLY_KEY", func(c config.Config) string { return c.AblyKey }},
}

func TestSecretsFromEnv(t *testing.T) {
	for _, s := range secretSettings {
		t.Run(s.flag, func(t *testing.T) {
			cleanEnv(t)
			value := "env-" + s.flag + "-" + strings.Repeat("x", 40)
			t.Setenv(s.env, value)

			// --help prints every setting with its env twin, never the secret.
			_, out, err := load(t, "--help")
			if !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("--help: %v", err)
			}
			help := out.String()
			if !strings.Contains(help, "-"+s.flag) {
				t.Fatalf("--help lacks the flag %s:\n%s", s.flag, help)
			}
			if !strings.Contains(help, s.env) {
				t.Fatalf("--help lacks the variable %s:\n%s", s.env, help)
			}
			if strings.Contains(help, value) {
				t.Fatalf("--help shows %s:\n%s", s.env, help)
			}

			// Parse applies it.
			if got := s.get(mustLoad(t)); got != value {
				t.Fatalf("after Parse: %q, want the env value", got)
			}
			// A flag given explicitly wins over the environment, even empty.
			if got := s.get(mustLoad(t, "--"+s.flag, "from-flag")); got != "from-flag" {
				t.Fatalf("with the flag: %q", got)
			}
			if got := s.get(mustLoad(t, "--"+s.flag+"=")); got != "" {
				t.Fatalf("with an empty flag: %q", got)
			}
		})
	}
}

// TestNonSecretDefaultsShown: --help shows an environment value as the
// default of an ordinary setting, which is how an operator sees what is in
// effect; only secrets are withheld.
func TestNonSecretDefaultsShown(t *testing.T) {
	cleanEnv(t)
	t.Setenv("HANDOFF_REDIS_ADDRS", "redis-a.internal:6379")
	_, out, err := load(t, "-h")
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "redis-a.internal:6379") {
		t.Fatalf("--help does not show the env default:\n%s", out)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	// prod is a valid production configuration, without any environment.
	prod := func() config.Config {
		var c config.Config
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		config.Register(fs, &c)
		c.JWTSecret = goodSecret
		c.LogFormat = "json"
		c.HistorySize, c.HistoryTTL, c.SessionTTL, c.MaxImages, c.MaxImageBytes = 1000, 2*time.Hour, 2*time.Hour, 20, 20<<20
		c.RedisAddrs, c.RedisMaster, c.ALEXBaseURL, c.HostOrigins = "", "", "", ""
		return c
	}
	alex := func(c *config.Config) {
		c.ALEXBaseURL = "https://alexapiuat.medtechglobal.com/FHIR"
		c.ALEXTokenURL = "https://login.microsoftonline.com/t/oauth2/v2.0/token"
		c.ALEXClientID = "client"
		c.ALEXClientSecret = "client-secret"
		c.ALEXScope = "api://x/.default"
	}
	cases := []struct {
		name   string
		mutate func(*config.Config)
		want   []string // substrings of the error; none: valid
		absent []string // substrings the error must not have
	}{
		{"production", func(*config.Config) {}, nil, nil},
		{"widget key", func(c *config.Config) {
			c.APIKeys, c.WidgetKey = "app.widget:widget-secret-0123456789", "app.widget"
		}, nil, nil},
		{"widget key not among the API keys", func(c *config.Config) {
			c.APIKeys, c.WidgetKey = "app.widget:widget-secret-0123456789", "app.ghost"
		}, []string{"HANDOFF_WIDGET_KEY", "HANDOFF_API_KEYS"}, []string{"widget-secret"}},
		{"widget key beside an Ably key", func(c *config.Config) {
			c.APIKeys, c.WidgetKey, c.AblyKey = "app.widget:widget-secret-0123456789", "app.widget", "x.y:ably-secret-0123456789"
		}, []string{"HANDOFF_WIDGET_KEY", "HANDOFF_ABLY_KEY"}, []string{"ably-secret", "widget-secret"}},
		{"Ably key named like an API key", func(c *config.Config) {
			c.APIKeys, c.AblyKey = "x.y:api-secret-0123456789", "x.y:ably-secret-0123456789"
		}, []string{"HANDOFF_ABLY_KEY", "HANDOFF_API_KEYS"}, []string{"ably-secret", "api-secret"}},
		{"dev without secret", func(c *config.Config) { c.Dev, c.JWTSecret = true, "" }, nil, nil},
		{"missing JWT secret", func(c *config.Config) { c.JWTSecret = "" }, []string{"--jwt-secret", "HANDOFF_JWT_SECRET", "--dev"}, nil},
		{"short JWT secret", func(c *config.Config) { c.JWTSecret = "short-secret" }, []string{"HANDOFF_JWT_SECRET", "32 bytes"}, []string{"short-secret"}},
		{"short JWT secret in dev", func(c *config.Config) { c.Dev, c.JWTSecret = true, strings.Repeat("s", 31) }, []string{"HANDOFF_JWT_SECRET"}, nil},
		{"ALEX complete", alex, nil, nil},
		{"ALEX base URL alone", func(c *config.Config) { c.ALEXBaseURL = "https://alex.example/FHIR" },
			[]string{"HANDOFF_ALEX_TOKEN_URL", "HANDOFF_ALEX_CLIENT_ID", "HANDOFF_ALEX_CLIENT_SECRET", "HANDOFF_ALEX_SCOPE"}, nil},
		{"ALEX without token URL", func(c *config.Config) { alex(c); c.ALEXTokenURL = "" },
			[]string{"--alex-token-url", "HANDOFF_ALEX_TOKEN_URL"}, []string{"CLIENT_ID", "CLIENT_SECRET", "SCOPE"}},
		{"ALEX without client id", func(c *config.Config) { alex(c); c.ALEXClientID = "" },
			[]string{"HANDOFF_ALEX_CLIENT_ID"}, []string{"TOKEN_URL", "CLIENT_SECRET", "SCOPE"}},
		{"ALEX without client secret", func(c *config.Config) { alex(c); c.ALEXClientSecret = "" },
			[]string{"HANDOFF_ALEX_CLIENT_SECRET"}, []string{"TOKEN_URL", "CLIENT_ID", "SCOPE"}},
		{"ALEX without scope", func(c *config.Config) { alex(c); c.ALEXScope = "" },
			[]string{"HANDOFF_ALEX_SCOPE"}, []string{"TOKEN_URL", "CLIENT_ID", "CLIENT_SECRET"}},
		{"ALEX settings without base URL are the outbox", func(c *config.Config) { alex(c); c.ALEXBaseURL = "" }, nil, nil},
		{"host origins", func(c *config.Config) { c.HostOrigins = "https://pms.example.org, http://localhost:3000/" }, nil, nil},
		{"host origin with a path", func(c *config.Config) { c.HostOrigins = "https://pms.example.org/app" }, []string{"HANDOFF_HOST_ORIGINS", "https://pms.example.org/app"}, nil},
		{"host origin without scheme", func(c *config.Config) { c.HostOrigins = "pms.example.org" }, []string{"HANDOFF_HOST_ORIGINS"}, nil},
		{"host origin with another scheme", func(c *config.Config) { c.HostOrigins = "ftp://pms.example.org" }, []string{"HANDOFF_HOST_ORIGINS"}, nil},
		{"host origin without host", func(c *config.Config) { c.HostOrigins = "https://" }, []string{"HANDOFF_HOST_ORIGINS"}, nil},
		{"one bad host origin of two", func(c *config.Config) { c.HostOrigins = "https://ok.example.org,*" }, []string{"HANDOFF_HOST_ORIGINS", `"*"`}, []string{"ok.example.org"}},
		{"redis master without addresses", func(c *config.Config) { c.RedisMaster = "mymaster" }, []string{"--redis-master", "HANDOFF_REDIS_ADDRS"}, nil},
		{"redis master with sentinels", func(c *config.Config) { c.RedisMaster, c.RedisAddrs = "mymaster", "s1:26379,s2:26379" }, nil, nil},
		{"bad log format", func(c *config.Config) { c.LogFormat = "xml" }, []string{"--log-format"}, nil},
		{"console log format", func(c *config.Config) { c.LogFormat = "console" }, nil, nil},
		{"history size", func(c *config.Config) { c.HistorySize = 0 }, []string{"--history-size"}, nil},
		{"history ttl", func(c *config.Config) { c.HistoryTTL = 30 * time.Second }, []string{"--history-ttl"}, []string{"--session-ttl"}},
		{"session ttl", func(c *config.Config) { c.SessionTTL = 30 * time.Second }, []string{"--session-ttl", "HANDOFF_SESSION_TTL", "1m"}, nil},
		{"session ttl shorter than history", func(c *config.Config) { c.SessionTTL = time.Hour }, nil, nil},
		{"session ttl equal to history", func(c *config.Config) { c.SessionTTL, c.HistoryTTL = 3*time.Hour, 3*time.Hour }, nil, nil},
		{"session ttl beyond history", func(c *config.Config) { c.SessionTTL = 3 * time.Hour },
			[]string{"--session-ttl", "HANDOFF_SESSION_TTL", "--history-ttl", "HANDOFF_HISTORY_TTL"}, nil},
		{"history ttl shortened below the default session ttl", func(c *config.Config) { c.HistoryTTL = time.Hour },
			[]string{"--session-ttl", "--history-ttl"}, nil},
		{"max images", func(c *config.Config) { c.MaxImages = 0 }, []string{"--max-images"}, nil},
		{"max image bytes", func(c *config.Config) { c.MaxImageBytes = -1 }, []string{"--max-image-bytes"}, nil},
		{"session quota below one image", func(c *config.Config) { c.MaxSessionBytes = c.MaxImageBytes - 1 },
			[]string{"--max-session-bytes", "HANDOFF_MAX_SESSION_BYTES", "--max-image-bytes"}, nil},
		{"session lifetime below its ttl", func(c *config.Config) { c.MaxSessionLifetime = time.Hour },
			[]string{"--max-session-lifetime", "HANDOFF_MAX_SESSION_LIFETIME", "--session-ttl"}, nil},
		{"open-session cap", func(c *config.Config) { c.MaxOpenSessionsPerFacility = 0 },
			[]string{"--max-open-sessions-per-facility", "HANDOFF_MAX_OPEN_SESSIONS_PER_FACILITY"}, nil},
		{"max image pixels", func(c *config.Config) { c.MaxImagePixels = 0 }, []string{"--max-image-pixels", "HANDOFF_MAX_IMAGE_PIXELS"}, nil},
		{"debug listener on loopback", func(c *config.Config) { c.DebugAddr = "127.0.0.1:6060" }, nil, nil},
		{"debug listener on IPv6 loopback", func(c *config.Config) { c.DebugAddr = "[::1]:6060" }, nil, nil},
		{"debug listener on every interface", func(c *config.Config) { c.DebugAddr = ":6060" },
			[]string{"--debug-addr", "HANDOFF_DEBUG_ADDR", "not a loopback address"}, nil},
		{"debug listener on a LAN address", func(c *config.Config) { c.DebugAddr = "192.168.1.20:6060" },
			[]string{"HANDOFF_DEBUG_ADDR", "192.168.1.20:6060"}, nil},
		{"debug listener on the main address", func(c *config.Config) { c.DebugAddr = c.Addr },
			[]string{"--debug-addr", "HANDOFF_ADDR", "must differ"}, nil},
		{"every problem at once", func(c *config.Config) { c.JWTSecret, c.LogFormat, c.RedisMaster = "", "xml", "m" },
			[]string{"HANDOFF_JWT_SECRET", "--log-format", "--redis-master"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := prod()
			tc.mutate(&c)
			err := validates(t, c, tc.want)
			if err == nil {
				return
			}
			for _, a := range tc.absent {
				if strings.Contains(err.Error(), a) {
					t.Errorf("error has %q: %v", a, err)
				}
			}
		})
	}
}

// TestRegisterConcurrently: flag sets registered and parsed at once (the
// load test starts several targets; tests run in parallel) do not race.
func TestRegisterConcurrently(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c config.Config
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			flags := config.Register(fs, &c)
			secret := goodSecret + strings.Repeat("x", i)
			if err := flags.Parse([]string{"--jwt-secret", secret}); err != nil {
				t.Error(err)
				return
			}
			if c.JWTSecret != secret {
				t.Errorf("flag set %d got another's secret", i)
			}
		}()
	}
	wg.Wait()
}

func TestLists(t *testing.T) {
	t.Parallel()
	c := config.Config{RedisAddrs: " a:1, ,b:2 ,", HostOrigins: "https://a.example/, http://b.example:8080 ,,"}
	if got := strings.Join(c.RedisAddrList(), "|"); got != "a:1|b:2" {
		t.Errorf("RedisAddrList = %q", got)
	}
	if got := strings.Join(c.HostOriginList(), "|"); got != "https://a.example|http://b.example:8080" {
		t.Errorf("HostOriginList = %q", got)
	}
	if got := (&config.Config{}).RedisAddrList(); got != nil {
		t.Errorf("empty RedisAddrList = %q, want nil", got)
	}
	if got := (&config.Config{}).HostOriginList(); got != nil {
		t.Errorf("empty HostOriginList = %q, want nil", got)
	}
}

func TestBaseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ addr, public, want string }{
		{"127.0.0.1:8080", "", "http://127.0.0.1:8080"},
		{":8080", "", "http://localhost:8080"},
		{":8080", "https://handoff.example.org/", "https://handoff.example.org"},
		{":8080", "http://192.168.1.20:8080", "http://192.168.1.20:8080"},
	} {
		c := config.Config{Addr: tc.addr, PublicURL: tc.public}
		if got := c.BaseURL(); got != tc.want {
			t.Errorf("BaseURL(%q, %q) = %q, want %q", tc.addr, tc.public, got, tc.want)
		}
	}
}

func TestEnvName(t *testing.T) {
	t.Parallel()
	for flagName, want := range map[string]string{
		"addr": "HANDOFF_ADDR", "jwt-secret": "HANDOFF_JWT_SECRET", "alex-client-secret": "HANDOFF_ALEX_CLIENT_SECRET",
	} {
		if got := config.EnvName(flagName); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", flagName, got, want)
		}
	}
}

// TestDefaultsComeFromPackages: a built-in default that a package owns is
// that package's constant, so changing a limit in one place changes the
// flag too.
func TestDefaultsComeFromPackages(t *testing.T) {
	cleanEnv(t)
	c := mustLoad(t)
	checks := []struct {
		name      string
		got, want any
	}{
		{"HistorySize", c.HistorySize, hub.DefaultHistorySize},
		{"HistoryTTL", c.HistoryTTL, hub.DefaultHistoryTTL},
		{"SessionTTL", c.SessionTTL, capture.DefaultSessionTTL},
		{"MaxImages", c.MaxImages, capture.DefaultMaxImages},
		{"MaxImageBytes", c.MaxImageBytes, capture.DefaultMaxImageBytes},
		{"MaxImagePixels", c.MaxImagePixels, capture.DefaultMaxImagePixels},
		{"ClaimsPerMinute", c.ClaimsPerMinute, float64(capture.DefaultClaimsPerMinute)},
		{"AblyChannelTemplate", c.AblyChannelTemplate, ablybridge.DefaultChannelTemplate},
		{"Addr", c.Addr, config.DefaultAddr},
		{"DataDir", c.DataDir, config.DefaultDataDir},
		{"LogLevel", c.LogLevel, config.DefaultLogLevel},
		{"LogFormat", c.LogFormat, config.DefaultLogFormat},
		{"RedisPrefix", c.RedisPrefix, config.DefaultRedisPrefix},
		{"S3Region", c.S3Region, config.DefaultS3Region},
		{"ShutdownTimeout", c.ShutdownTimeout, config.DefaultShutdownTimeout},
	}
	for _, ch := range checks {
		testutil.Check(t, ch.name, ch.want, ch.got)
	}
}

// TestSecretsBelongToTheirRegistration: the secrets Parse fills are those
// of its own Register call; a flag set registered elsewhere, or the same
// Config registered again, neither sees nor loses them.
func TestSecretsBelongToTheirRegistration(t *testing.T) {
	cleanEnv(t)
	t.Setenv("HANDOFF_JWT_SECRET", goodSecret)

	var a, b config.Config
	fa := flag.NewFlagSet("a", flag.ContinueOnError)
	fb := flag.NewFlagSet("b", flag.ContinueOnError)
	flagsA := config.Register(fa, &a)
	flagsB := config.Register(fb, &b)
	if err := flagsB.Parse([]string{"--jwt-secret", "from-b"}); err != nil {
		t.Fatal(err)
	}
	if err := flagsA.Parse(nil); err != nil {
		t.Fatal(err)
	}
	testutil.Check(t, "A's secret (from the environment)", goodSecret, a.JWTSecret)
	testutil.Check(t, "B's secret (from its flag)", "from-b", b.JWTSecret)

	// The flag set alone, parsed without its Flags, never reads a secret
	// from the environment: only Flags.Parse does, after the flags.
	var c config.Config
	fc := flag.NewFlagSet("c", flag.ContinueOnError)
	config.Register(fc, &c)
	if err := fc.Parse(nil); err != nil {
		t.Fatal(err)
	}
	testutil.Check(t, "secret after a bare FlagSet.Parse", "", c.JWTSecret)
}

// validates runs c.Validate: with no want it must pass; otherwise it must
// fail with an error that contains every want. It returns the error.
func validates(t *testing.T, c config.Config, want []string) error {
	t.Helper()
	err := c.Validate()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("Validate: %v", err)
		}
		return nil
	}
	if err == nil {
		t.Fatal("Validate accepted it")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
	return err
}
