package alex

import (
	"strings"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/testutil"
)

func TestNewClientNamesMissingSetting(t *testing.T) {
	t.Parallel()
	full := func() Config {
		return Config{BaseURL: "https://alexapiuat.medtechglobal.com/FHIR",
			TokenURL: "https://login.microsoftonline.com/tenant/oauth2/v2.0/token",
			ClientID: "id", ClientSecret: "s3cret", Scope: "api://x/.default"}
	}
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"base", func(c *Config) { c.BaseURL = "" }, "BaseURL is required"},
		{"token", func(c *Config) { c.TokenURL = "" }, "TokenURL is required"},
		{"id", func(c *Config) { c.ClientID = "" }, "ClientID is required"},
		{"secret", func(c *Config) { c.ClientSecret = "" }, "ClientSecret is required"},
		{"scope", func(c *Config) { c.Scope = " " }, "Scope is required"},
		{"plain http", func(c *Config) { c.BaseURL = "http://alexapi.medtechglobal.com/FHIR" }, "BaseURL must use https"},
		{"relative", func(c *Config) { c.TokenURL = "/token" }, "TokenURL is not an absolute URL"},
		{"app id alone", func(c *Config) { c.AppID = "x" }, "AppIDHeader and AppID"},
		{"negative", func(c *Config) { c.MaxAttempts = -1 }, "must not be negative"},
		{"system", func(c *Config) { c.IdentifierSystem = "urn:a|b" }, "IdentifierSystem"},
	}
	for _, tc := range cases {
		cfg := full()
		tc.edit(&cfg)
		_, err := NewClient(cfg)
		if err == nil {
			t.Errorf("%s: accepted, want %q", tc.name, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: error shows the client secret: %v", tc.name, err)
		}
	}
	c, err := NewClient(full())
	if err != nil {
		t.Fatal(err)
	}
	testutil.Check(t, "MaxAttempts", 4, c.cfg.MaxAttempts)
	testutil.Check(t, "BaseBackoff", 500*time.Millisecond, c.cfg.BaseBackoff)
	testutil.Check(t, "Timeout", 30*time.Second, c.cfg.Timeout)
	testutil.Check(t, "IdentifierSystem", DefaultIdentifierSystem, c.cfg.IdentifierSystem)
	testutil.Check(t, "media URL", "https://alexapiuat.medtechglobal.com/FHIR/Media", c.mediaURL)
	cfg := full()
	cfg.BaseURL = "http://127.0.0.1:8080/FHIR/"
	if _, err := NewClient(cfg); err != nil {
		t.Errorf("loopback http refused: %v", err)
	}
}

func TestBackoffAndRetryAfter(t *testing.T) {
	t.Parallel()
	for attempt := 1; attempt <= 10; attempt++ {
		full := min(500*time.Millisecond<<(attempt-1), maxBackoff)
		for range 50 {
			if d := retryDelay(500*time.Millisecond, attempt); d < full/2 {
				t.Fatalf("attempt %d: delay %v below %v", attempt, d, full/2)
			} else if d > full {
				t.Fatalf("attempt %d: delay %v above %v", attempt, d, full)
			}
		}
	}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for h, want := range map[string]time.Duration{
		"": 0, "5": 5 * time.Second, "-3": 0, "soon": 0,
		"Wed, 01 Jan 2025 00:00:12 GMT": 12 * time.Second,
		"Tue, 31 Dec 2024 23:00:00 GMT": 0,
	} {
		if got := retryAfter(h, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", h, got, want)
		}
	}
}
