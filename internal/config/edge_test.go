package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/blob"
	"github.com/handoff-health/handoff/internal/config"
	"github.com/handoff-health/handoff/internal/realtime"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestEdgeSettings: the edge's settings (issue 13), their defaults from the
// named constants, their HANDOFF_* twins, and the refusals that name them.
func TestEdgeSettings(t *testing.T) {
	cleanEnv(t)
	c := mustLoad(t)
	testutil.Equal(t, "TrustedProxies", "", c.TrustedProxies)
	testutil.Check(t, "ReadHeaderTimeout", config.DefaultReadHeaderTimeout, c.ReadHeaderTimeout)
	testutil.Check(t, "IdleTimeout", config.DefaultIdleTimeout, c.IdleTimeout)
	testutil.Check(t, "BodyTimeout", config.DefaultBodyTimeout, c.BodyTimeout)
	testutil.Check(t, "UploadTimeout", blob.DefaultUploadTimeout, c.UploadTimeout)
	testutil.Check(t, "UploadMinRate", blob.DefaultUploadMinRate, c.UploadMinRate)
	testutil.Check(t, "MaxConns", config.DefaultMaxConns, c.MaxConns)
	testutil.Check(t, "MaxConnsPerAddr", config.DefaultMaxConnsPerAddr, c.MaxConnsPerAddr)
	testutil.Check(t, "MaxUnauthSocketsPerAddr", realtime.DefaultMaxUnauthPerAddr, c.MaxUnauthSocketsPerAddr)

	t.Setenv("HANDOFF_TRUSTED_PROXIES", "10.0.0.0/8,192.0.2.10")
	t.Setenv("HANDOFF_BODY_TIMEOUT", "20s")
	t.Setenv("HANDOFF_MAX_CONNS_PER_ADDR", "0")
	t.Setenv("HANDOFF_UPLOAD_MIN_RATE", "65536")
	c = mustLoad(t, "--jwt-secret", goodSecret, "--max-unauth-sockets-per-addr", "8")
	testutil.Equal(t, "TrustedProxies from env", "10.0.0.0/8,192.0.2.10", c.TrustedProxies)
	testutil.Check(t, "BodyTimeout from env", 20*time.Second, c.BodyTimeout)
	testutil.Check(t, "MaxConnsPerAddr from env", 0, c.MaxConnsPerAddr)
	testutil.Check(t, "UploadMinRate from env", int64(65536), c.UploadMinRate)
	testutil.Check(t, "MaxUnauthSocketsPerAddr from flag", 8, c.MaxUnauthSocketsPerAddr)
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}

	for _, tc := range []struct {
		name, want string
		set        func(*config.Config)
	}{
		{"a hostname as proxy", "HANDOFF_TRUSTED_PROXIES", func(c *config.Config) { c.TrustedProxies = "proxy.internal" }},
		{"a body timeout under 1s", "HANDOFF_BODY_TIMEOUT", func(c *config.Config) { c.BodyTimeout = 10 * time.Millisecond }},
		{"no header timeout", "HANDOFF_READ_HEADER_TIMEOUT", func(c *config.Config) { c.ReadHeaderTimeout = 0 }},
		{"no idle timeout", "HANDOFF_IDLE_TIMEOUT", func(c *config.Config) { c.IdleTimeout = 0 }},
		{"no upload rate", "HANDOFF_UPLOAD_MIN_RATE", func(c *config.Config) { c.UploadMinRate = 0 }},
		{"a negative cap", "HANDOFF_MAX_CONNS", func(c *config.Config) { c.MaxConns = -1 }},
		{"no unauthenticated sockets", "HANDOFF_MAX_UNAUTH_SOCKETS_PER_ADDR", func(c *config.Config) { c.MaxUnauthSocketsPerAddr = 0 }},
	} {
		bad := c
		tc.set(&bad)
		err := bad.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v, want an error naming %s", tc.name, err, tc.want)
		}
	}
}
