package config_test

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/config"
)

// TestCredentialDefaults: the settings of issue 13 default to a 12 h JWT
// lifetime, no aud/iss check, no key restrictions, and dev mode on
// loopback only.
func TestCredentialDefaults(t *testing.T) {
	cleanEnv(t)
	c := mustLoad(t)
	checks := []struct {
		name      string
		got, want any
	}{
		{"APIKeyCapabilities", c.APIKeyCapabilities, ""},
		{"JWTMaxLifetime", c.JWTMaxLifetime, 12 * time.Hour},
		{"JWTAudience", c.JWTAudience, ""},
		{"JWTIssuer", c.JWTIssuer, ""},
		{"DevAllowLAN", c.DevAllowLAN, false},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	t.Setenv("HANDOFF_JWT_MAX_LIFETIME", "2h")
	t.Setenv("HANDOFF_JWT_AUDIENCE", "handoff")
	t.Setenv("HANDOFF_DEV_ALLOW_LAN", "true")
	t.Setenv("HANDOFF_API_KEY_CAPABILITIES", `{"k":{"*":["publish"]}}`)
	c = mustLoad(t)
	if c.JWTMaxLifetime != 2*time.Hour || c.JWTAudience != "handoff" || !c.DevAllowLAN || c.APIKeyCapabilities != `{"k":{"*":["publish"]}}` {
		t.Errorf("environment twins not applied: %+v", c)
	}
}

// TestValidateCredentials: issue 13's reproductions. --dev ran beside a
// production JWT secret (and /api/dev/token minted real tokens with it);
// an Ably template without {sessionId} merged facilities. Each is now
// refused at start, naming the setting.
func TestValidateCredentials(t *testing.T) {
	t.Parallel()
	// dev is the configuration of `make run`.
	dev := func() config.Config {
		var c config.Config
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		config.Register(fs, &c)
		c.Dev, c.JWTSecret, c.LogFormat = true, "", "json"
		c.Addr = "127.0.0.1:8080"
		c.HistorySize, c.HistoryTTL, c.SessionTTL, c.MaxImages, c.MaxImageBytes = 1000, 2*time.Hour, 2*time.Hour, 20, 20<<20
		c.RedisAddrs, c.RedisMaster, c.S3Bucket, c.ALEXBaseURL, c.HostOrigins = "", "", "", "", ""
		c.AblyChannelTemplate, c.JWTMaxLifetime, c.DevAllowLAN = "session:{sessionId}", 12*time.Hour, false
		return c
	}
	cases := []struct {
		name   string
		mutate func(*config.Config)
		want   []string // substrings of the error; none: valid
	}{
		{"make run", func(*config.Config) {}, nil},
		{"dev on localhost", func(c *config.Config) { c.Addr = "localhost:8080" }, nil},
		{"dev on IPv6 loopback", func(c *config.Config) { c.Addr = "[::1]:8080" }, nil},
		{"dev on 127.0.0.2", func(c *config.Config) { c.Addr = "127.0.0.2:8080" }, nil},
		{"dev with a JWT secret", func(c *config.Config) { c.JWTSecret = goodSecret }, []string{"--dev", "--jwt-secret", "HANDOFF_JWT_SECRET"}},
		{"dev with Redis", func(c *config.Config) { c.RedisAddrs = "redis:6379" }, []string{"--dev", "--redis-addrs", "HANDOFF_REDIS_ADDRS"}},
		{"dev with S3", func(c *config.Config) { c.S3Bucket = "photos" }, []string{"--dev", "--s3-bucket", "HANDOFF_S3_BUCKET"}},
		{"dev with ALEX", func(c *config.Config) {
			c.ALEXBaseURL, c.ALEXTokenURL, c.ALEXClientID, c.ALEXClientSecret, c.ALEXScope = "https://alex.example/FHIR", "https://t", "id", "s", "sc"
		}, []string{"--dev", "--alex-base-url", "HANDOFF_ALEX_BASE_URL"}},
		{"dev on every interface", func(c *config.Config) { c.Addr = ":8080" }, []string{"--dev", "HANDOFF_ADDR", "--dev-allow-lan", "HANDOFF_DEV_ALLOW_LAN"}},
		{"dev on 0.0.0.0", func(c *config.Config) { c.Addr = "0.0.0.0:8080" }, []string{"HANDOFF_ADDR", "--dev-allow-lan"}},
		{"dev on a LAN address", func(c *config.Config) { c.Addr = "192.168.1.20:8080" }, []string{"HANDOFF_ADDR"}},
		{"dev on a host name", func(c *config.Config) { c.Addr = "laptop.local:8080" }, []string{"HANDOFF_ADDR"}},
		{"dev on the LAN, on purpose", func(c *config.Config) { c.Addr, c.DevAllowLAN = ":8080", true }, nil},
		{"dev on the LAN, on purpose, still no secret", func(c *config.Config) { c.Addr, c.DevAllowLAN, c.JWTSecret = ":8080", true, goodSecret },
			[]string{"HANDOFF_JWT_SECRET"}},
		{"dev-allow-lan without dev", func(c *config.Config) { c.Dev, c.JWTSecret, c.DevAllowLAN = false, goodSecret, true }, []string{"--dev-allow-lan", "HANDOFF_DEV_ALLOW_LAN"}},
		{"production on every interface", func(c *config.Config) { c.Dev, c.JWTSecret, c.Addr = false, goodSecret, ":8080" }, nil},
		{"production with Redis, S3 and a secret", func(c *config.Config) {
			c.Dev, c.JWTSecret, c.RedisAddrs, c.S3Bucket = false, goodSecret, "redis:6379", "photos"
		}, nil},
		{"everything at once", func(c *config.Config) { c.JWTSecret, c.RedisAddrs, c.S3Bucket, c.Addr = goodSecret, "r:1", "b", ":80" },
			[]string{"HANDOFF_JWT_SECRET", "HANDOFF_REDIS_ADDRS", "HANDOFF_S3_BUCKET", "HANDOFF_ADDR"}},
		{"encounter-only Ably template", func(c *config.Config) { c.AblyChannelTemplate = "encounter:{encounterId}" },
			[]string{"--ably-channel-template", "HANDOFF_ABLY_CHANNEL_TEMPLATE", "{sessionId}"}},
		{"Ably template with encounter and session", func(c *config.Config) { c.AblyChannelTemplate = "medtech:{encounterId}:{sessionId}" }, nil},
		{"Ably template with a wildcard", func(c *config.Config) { c.AblyChannelTemplate = "s:*:{sessionId}" }, []string{"HANDOFF_ABLY_CHANNEL_TEMPLATE"}},
		{"JWT lifetime of 30 s", func(c *config.Config) { c.JWTMaxLifetime = 30 * time.Second }, []string{"--jwt-max-lifetime", "HANDOFF_JWT_MAX_LIFETIME"}},
		{"JWT lifetime of 1 h", func(c *config.Config) { c.JWTMaxLifetime = time.Hour }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := dev()
			tc.mutate(&c)
			err := validates(t, c, tc.want)
			if err == nil {
				return
			}
			if strings.Contains(err.Error(), goodSecret) {
				t.Errorf("error shows the secret: %v", err)
			}
		})
	}
}
