package config_test

import (
	"regexp"
	"strings"
	"testing"
)

var (
	flagName = regexp.MustCompile(`--[a-z][a-z0-9-]+`)
	envName  = regexp.MustCompile(`HANDOFF_[A-Z][A-Z0-9_]+`)
)

// TestEveryErrorNamesItsSetting runs every check Validate makes, one
// setting wrong at a time, and requires each line of the error to name a
// --flag and a HANDOFF_ variable: an operator reading the start-up error
// must find the setting under either name (issue 15: --history-ttl 3m
// named neither).
func TestEveryErrorNamesItsSetting(t *testing.T) {
	cleanEnv(t)
	cases := []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"history-ttl 3m (the issue's repro)", []string{"--dev", "--history-ttl", "3m"}, nil},
		{"session-ttl below a QR code", []string{"--dev", "--session-ttl", "5m"}, nil},
		{"jwt secret missing", nil, nil},
		{"jwt secret short", []string{"--jwt-secret", "short"}, nil},
		{"history size", []string{"--dev", "--history-size", "0"}, nil},
		{"history ttl", []string{"--dev", "--history-ttl", "30s"}, nil},
		{"session ttl", []string{"--dev", "--session-ttl", "30s"}, nil},
		{"session ttl beyond history", []string{"--dev", "--history-ttl", "1h", "--session-ttl", "2h"}, nil},
		{"max images", []string{"--dev", "--max-images", "0"}, nil},
		{"max image bytes", []string{"--dev", "--max-image-bytes", "0"}, nil},
		{"session bytes", []string{"--dev", "--max-session-bytes", "1"}, nil},
		{"session lifetime", []string{"--dev", "--max-session-lifetime", "1h"}, nil},
		{"open sessions", []string{"--dev", "--max-open-sessions-per-facility", "0"}, nil},
		{"image pixels", []string{"--dev", "--max-image-pixels", "0"}, nil},
		{"redis master", []string{"--jwt-secret", goodSecret, "--redis-master", "m"}, nil},
		{"alex incomplete", []string{"--jwt-secret", goodSecret, "--alex-base-url", "https://alex.example/FHIR"}, nil},
		{"alex urls", []string{"--jwt-secret", goodSecret, "--alex-base-url", "alex", "--alex-token-url", "token",
			"--alex-client-id", "c", "--alex-client-secret", "s", "--alex-scope", "x"}, nil},
		{"host origins", []string{"--dev", "--host-origins", "pms.example.org"}, nil},
		{"log format", []string{"--dev", "--log-format", "xml"}, nil},
		{"log level", []string{"--dev", "--log-level", "loud"}, nil},
		{"public url", []string{"--dev", "--public-url", "192.168.1.20:8080"}, nil},
		{"addr", []string{"--dev", "--addr", "8080"}, nil},
		{"redis prefix", []string{"--jwt-secret", goodSecret, "--redis-prefix", "{x}"}, nil},
		{"trusted proxies", []string{"--dev", "--trusted-proxies", "not-a-cidr"}, nil},
		{"read header timeout", []string{"--dev", "--read-header-timeout", "1ms"}, nil},
		{"idle timeout", []string{"--dev", "--idle-timeout", "1ms"}, nil},
		{"body timeout", []string{"--dev", "--body-timeout", "1ms"}, nil},
		{"upload timeout", []string{"--dev", "--upload-timeout", "1ms"}, nil},
		{"upload min rate", []string{"--dev", "--upload-min-rate", "0"}, nil},
		{"max conns", []string{"--dev", "--max-conns", "-1"}, nil},
		{"unauth sockets", []string{"--dev", "--max-unauth-sockets-per-addr", "0"}, nil},
		{"jwt max lifetime", []string{"--dev", "--jwt-max-lifetime", "1s"}, nil},
		{"ably channel template", []string{"--dev", "--ably-channel-template", "fixed"}, nil},
		{"dev-allow-lan without dev", []string{"--jwt-secret", goodSecret, "--dev-allow-lan"}, nil},
		{"dev with a jwt secret", []string{"--dev", "--jwt-secret", goodSecret}, nil},
		{"dev with redis", []string{"--dev", "--redis-addrs", "r:6379"}, nil},
		{"dev with s3", []string{"--dev", "--s3-bucket", "b"}, nil},
		{"dev with alex", []string{"--dev", "--alex-base-url", "https://alex.example/FHIR", "--alex-token-url", "https://t.example",
			"--alex-client-id", "c", "--alex-client-secret", "s", "--alex-scope", "x"}, nil},
		{"dev on the LAN", []string{"--dev", "--addr", ":8080"}, nil},
		{"debug listener off loopback", []string{"--dev", "--debug-addr", "0.0.0.0:6060"}, nil},
		{"malformed integer", []string{"--dev"}, map[string]string{"HANDOFF_REDIS_DB": "two"}},
		{"malformed duration", []string{"--dev"}, map[string]string{"HANDOFF_HISTORY_TTL": "2hours"}},
		{"malformed boolean", []string{"--dev"}, map[string]string{"HANDOFF_S3_PATH_STYLE": "yes"}},
		{"malformed number", []string{"--dev"}, map[string]string{"HANDOFF_CLAIMS_PER_MINUTE": "ten"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c := mustLoad(t, tc.args...)
			err := c.Validate()
			if err == nil {
				t.Fatalf("Validate accepted %q", tc.args)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !flagName.MatchString(line) || !envName.MatchString(line) {
					t.Errorf("this error names no --flag or no HANDOFF_ variable: %q", line)
				}
			}
		})
	}
}

// TestHistoryTTLThreeMinutes is the repro in full: the message
// names both settings involved and how to fix them.
func TestHistoryTTLThreeMinutes(t *testing.T) {
	cleanEnv(t)
	c := mustLoad(t, "--dev", "--history-ttl", "3m")
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate accepted sessions shorter than a QR code")
	}
	for _, w := range []string{"--session-ttl", "HANDOFF_SESSION_TTL", "--history-ttl", "HANDOFF_HISTORY_TTL", "10m"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
	ok := mustLoad(t, "--dev", "--history-ttl", "10m")
	if err := ok.Validate(); err != nil {
		t.Errorf("--history-ttl 10m: %v", err)
	}
}
