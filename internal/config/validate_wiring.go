package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/internal/capture"
)

// validateWiring checks, by their flags, the settings the packages the
// server wires would otherwise refuse with their own field names
// ("capture: QRTokenTTL must not exceed SessionTTL"), which name neither
// the flag nor its variable (issue 15: --history-ttl 3m).
func (c *Config) validateWiring() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	// A QR code must outlive nothing: the session it opens has to last at
	// least as long as the code can be claimed.
	if c.SessionTTL >= minTTL && c.SessionTTL < capture.DefaultQRTokenTTL {
		bad("--session-ttl (%s) is %s, shorter than a QR code's %s lifetime; left unset it follows --history-ttl (%s), so set both to at least %s",
			EnvName("session-ttl"), c.SessionTTL, capture.DefaultQRTokenTTL, EnvName("history-ttl"), capture.DefaultQRTokenTTL)
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			bad("--public-url (%s) must be an absolute http(s) URL a phone can reach, like http://192.168.1.20:8080", EnvName("public-url"))
		}
	} else if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("--addr (%s) must be host:port or :port", EnvName("addr"))
	}
	if _, err := zerolog.ParseLevel(c.LogLevel); err != nil || c.LogLevel == "" {
		bad("--log-level (%s) must be debug, info, warn or error", EnvName("log-level"))
	}
	if strings.ContainsAny(c.RedisPrefix, "{}") {
		bad("--redis-prefix (%s) may not contain '{' or '}' (Redis Cluster hash tags)", EnvName("redis-prefix"))
	}
	if c.ALEXBaseURL != "" {
		for _, u := range []struct{ flag, value string }{{"alex-base-url", c.ALEXBaseURL}, {"alex-token-url", c.ALEXTokenURL}} {
			if p, err := url.Parse(u.value); u.value != "" && (err != nil || p.Host == "" || (p.Scheme != "https" && p.Scheme != "http")) {
				bad("--%s (%s) must be an absolute https URL", u.flag, EnvName(u.flag))
			}
		}
	}
	return errs
}
