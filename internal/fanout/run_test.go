package fanout

import (
	"context"
	"flag"
	"net"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/internal/config"
	"github.com/handoff-health/handoff/server"
)

const runAPIKey = "bench:0123456789abcdef-run-test"

// startNode serves a real handoff node (memory hub, local blobs in a temp
// dir) on a loopback listener until the test ends, and returns its URL.
func startNode(t *testing.T) string {
	t.Helper()
	var cfg config.Config
	if err := config.Register(flag.NewFlagSet("serve", flag.ContinueOnError), &cfg).Parse(nil); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.LogFormat, cfg.LogLevel = "json", "warn"
	cfg.JWTSecret, cfg.APIKeys, cfg.HostOrigins = testSecret, runAPIKey, ""
	cfg.RedisAddrs, cfg.RedisMaster, cfg.RedisPassword = "", "", ""
	cfg.S3Bucket, cfg.S3Endpoint, cfg.ALEXBaseURL, cfg.AblyKey = "", "", "", ""
	cfg.ShutdownTimeout = 10 * time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = l.Addr().String()
	cfg.PublicURL = "http://" + cfg.Addr
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, zerolog.Nop())
	if err != nil {
		cancel()
		l.Close()
		t.Fatalf("server.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Serve did not return after its context ended")
		}
		srv.Close()
	})
	return cfg.PublicURL
}

// TestRunFanoutAgainstANode runs a small fanout through each handoff
// subscriber transport (native, Ably JSON, Ably msgpack) against one real
// in-process node: every accepted publish must reach every subscriber of
// its channel, once and in order, and be measured.
func TestRunFanoutAgainstANode(t *testing.T) {
	url := startNode(t)
	for _, tc := range []struct{ server, format string }{
		{ServerHandoff, "json"}, {ServerAbly, "json"}, {ServerAbly, "msgpack"},
	} {
		t.Run(tc.server+"-"+tc.format, func(t *testing.T) {
			c := FanoutConfig{
				Target: Target{Server: tc.server, Format: tc.format, URL: url, APIKey: runAPIKey, JWTSecret: testSecret,
					SourceIPs: 1, DialConcurrency: 8},
				Sockets: 12, Channels: 3, Rate: 60, Batch: 1, Publishers: 2,
				Warmup: 100 * time.Millisecond, Duration: 500 * time.Millisecond, Drain: 10 * time.Second,
			}
			if err := c.validate(); err != nil {
				t.Fatal(err)
			}
			res, err := RunFanout(context.Background(), c, nil)
			if err != nil {
				t.Fatal(err)
			}
			d, in := res.Deliveries, res.Integrity
			if !res.OK || d.Expected == 0 || d.Received != d.Expected || res.Latency.Count == 0 {
				t.Fatalf("want every delivery received and measured: deliveries %+v, integrity %+v, publishes %+v, latency n=%d",
					d, in, res.Publishes, res.Latency.Count)
			}
			// 4 subscribers per channel: each accepted message is 4 deliveries.
			if d.Expected != 4*res.Publishes.Messages {
				t.Fatalf("expected deliveries %d for %d messages on 4 sockets per channel", d.Expected, res.Publishes.Messages)
			}
			want := tc.server
			if tc.server == ServerAbly {
				want += "-" + tc.format
			}
			if res.Server != want {
				t.Fatalf("result names the server %q, want %q", res.Server, want)
			}
			if in.Unordered != 0 {
				t.Fatalf("%d deliveries carried no serial", in.Unordered)
			}
		})
	}
}
