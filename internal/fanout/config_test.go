package fanout

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/testutil"
)

const testSecret = "0123456789abcdef0123456789abcdef"

func TestParseFanoutDefaultsAndFlags(t *testing.T) {
	c, err := ParseFanout([]string{"--api-key", "bench:0123456789abcdef", "--jwt-secret", testSecret,
		"--target", "http://127.0.0.1:9999/", "--rate", "30000", "--sockets", "1000", "--channels", "1000",
		"--duration", "5s", "--json"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := FanoutConfig{
		Target: Target{Server: ServerHandoff, Format: "json", Namespace: "bench", URL: "http://127.0.0.1:9999", APIKey: "bench:0123456789abcdef", JWTSecret: testSecret,
			SourceIPs: 4, DialConcurrency: 64, JSON: true},
		Sockets: 1000, Channels: 1000, Rate: 30000, Batch: 1, Publishers: 32,
		Warmup: 3 * time.Second, Duration: 5 * time.Second, Drain: 5 * time.Second,
	}
	testutil.Equal(t, "parsed config", want, c)
}

func TestParseRefusesBadFlags(t *testing.T) {
	key := []string{"--api-key", "k:0123456789abcdef"}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no token source", key, "token source"},
		{"both token sources", append([]string{"--dev", "--jwt-secret", testSecret}, key...), "exclusive"},
		{"no api key", []string{"--dev"}, "--api-key"},
		{"more channels than sockets", append([]string{"--dev", "--sockets", "10", "--channels", "20"}, key...), "--channels"},
		{"zero rate", append([]string{"--dev", "--rate", "0"}, key...), "--rate"},
		{"batch over the endpoint's limit", append([]string{"--dev", "--batch", "101"}, key...), "--batch"},
		{"spread over fewer channels than the batch", append([]string{"--dev", "--sockets", "10", "--channels", "5", "--batch", "6", "--batch-spread"}, key...), "--batch-spread"},
		{"not a URL", append([]string{"--dev", "--target", "127.0.0.1:8080"}, key...), "--target"},
		{"stray argument", append([]string{"--dev", "extra"}, key...), "unexpected"},
		{"unknown flag", append([]string{"--dev", "--sokets", "1"}, key...), "not defined"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("HANDOFF_JWT_SECRET", "")
			_, err := ParseFanout(tc.args, io.Discard)
			if err == nil {
				t.Fatalf("no error, want one mentioning %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestParseIdle(t *testing.T) {
	t.Setenv("HANDOFF_JWT_SECRET", testSecret)
	c, err := ParseIdle([]string{"--pid", "42", "--sockets", "500", "--hold", "1s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	type parsed struct {
		JWTSecret              string
		PID, Sockets, Channels int
		Hold                   time.Duration
	}
	testutil.Equal(t, "parsed idle config",
		parsed{JWTSecret: testSecret, PID: 42, Sockets: 500, Channels: 100, Hold: time.Second},
		parsed{JWTSecret: c.JWTSecret, PID: c.PID, Sockets: c.Sockets, Channels: c.Channels, Hold: c.Hold})
	_, err = ParseIdle([]string{"--sockets", "500"}, io.Discard)
	if err == nil {
		t.Fatal("missing --pid: no error")
	}
	if !strings.Contains(err.Error(), "--pid") {
		t.Fatalf("missing --pid: err = %v, want one naming --pid", err)
	}
}

func TestSourceAddrs(t *testing.T) {
	t.Parallel()
	got := sourceAddrs("http://127.0.0.1:8080", 3)
	if len(got) != 3 {
		t.Fatalf("loopback: %d addresses (%v), want 3", len(got), got)
	}
	testutil.Equal(t, "third loopback source address", "127.0.0.3", got[2].IP.String())
	for _, target := range []string{"http://10.0.0.5:8080", "http://localhost:8080", "http://[::1]:8080"} {
		if got := sourceAddrs(target, 3); got != nil {
			t.Errorf("%s: %v, want the system's choice", target, got)
		}
	}
}
