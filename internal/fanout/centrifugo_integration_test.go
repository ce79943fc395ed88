//go:build integration

package fanout

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/handoff-health/handoff/internal/testutil"
)

// centrifugoVersion is the Centrifugo the side-by-side runs compare with,
// as scripts/lib/centrifugo.sh pins and installs it (make deps).
const centrifugoVersion = "v6.9.1"

// centrifugoBinary finds the pinned Centrifugo: $HANDOFF_CENTRIFUGO, or
// where make deps installs it.
func centrifugoBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HANDOFF_CENTRIFUGO"); p != "" {
		return p
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	dir := filepath.Join(cache, "handoff-bench", "centrifugo-"+centrifugoVersion)
	bin := filepath.Join(dir, "centrifugo")
	stamp, _ := os.ReadFile(filepath.Join(dir, ".version"))
	if _, err := os.Stat(bin); err != nil || strings.TrimSpace(string(stamp)) != centrifugoVersion {
		t.Fatalf("Centrifugo %s not found in %s: make deps (scripts/install-test-deps.sh) installs it", centrifugoVersion, dir)
	}
	return bin
}

// startCentrifugo runs a real Centrifugo on a free loopback port, with
// history in the "bench" namespace, until the test ends.
func startCentrifugo(t *testing.T) (url, apiKey string, pid int) {
	t.Helper()
	bin := centrifugoBinary(t)
	port := testutil.FreePort(t)
	apiKey = "it-key-" + randomHex(8)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`{
  "http_server": {"address": "127.0.0.1", "port": %d},
  "log": {"level": "warn"},
  "usage_stats": {"disabled": true},
  "health": {"enabled": true},
  "http_api": {"key": %q},
  "client": {"token": {"hmac_secret_key": %q}},
  "channel": {"namespaces": [{"name": "bench", "allow_subscribe_for_client": true, "history_size": 100, "history_ttl": "60s"}]}
}`, port, apiKey, testSecret)
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	cmd := exec.Command(bin, "--config", path)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	url = fmt.Sprintf("http://127.0.0.1:%d", port)
	testutil.Eventually(t, "centrifugo answers /health", func() bool {
		select {
		case <-exited:
			t.Fatalf("centrifugo exited: %s", logs.String())
		default:
		}
		resp, err := http.Get(url + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return url, apiKey, cmd.Process.Pid
}

// The Centrifugo target against the real server: a clean run where every
// publication arrives, in offset order, with the server's CPU and RSS read.
func TestCentrifugoTargetAgainstRealCentrifugo(t *testing.T) {
	url, apiKey, pid := startCentrifugo(t)
	args := []string{"--server", "centrifugo", "--target", url, "--jwt-secret", testSecret, "--pid", fmt.Sprint(pid),
		"--source-ips", "1", "--sockets", "20", "--channels", "5", "--rate", "200", "--publishers", "2",
		"--warmup", "100ms", "--duration", "500ms"}
	c, err := ParseFanout(append(args, "--api-key", apiKey), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	res, err := RunFanout(context.Background(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK {
		t.Fatalf("run not clean: %+v", res)
	}
	if res.Publishes.Messages == 0 || res.Latency.Count == 0 || res.ServerRSS <= 0 || res.CPU.Server < 0 {
		t.Fatalf("nothing measured: %+v", res)
	}
	testutil.Equal(t, "every message reached its 4 subscribers", res.Publishes.Messages*4, res.Deliveries.Received)
	testutil.Equal(t, "history on: every delivery carried an offset", uint64(0), res.Integrity.Unordered)

	// Batches go through /api/batch.
	c.Batch = 4
	res, err = RunFanout(context.Background(), c, nil)
	if err != nil || !res.OK {
		t.Fatalf("batch run: %v %+v", err, res)
	}
	testutil.Equal(t, "batched messages reached their subscribers", res.Publishes.Messages*4, res.Deliveries.Received)

	// A wrong key is counted, not passed.
	c.Batch, c.APIKey = 1, "wrong"
	res, err = RunFanout(context.Background(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.OK || res.Publishes.Errors == 0 {
		t.Fatalf("a wrong key gave %+v", res.Publishes)
	}

	// A namespace the server does not know: its subscribe error is named.
	c.APIKey, c.Namespace = apiKey, "nosuch"
	if _, err := RunFanout(context.Background(), c, nil); err == nil || !strings.Contains(err.Error(), "102") {
		t.Fatalf("an unknown namespace: got %v, want Centrifugo's error 102", err)
	}

	ic, err := ParseIdle([]string{"--server", "centrifugo", "--target", url, "--jwt-secret", testSecret,
		"--pid", fmt.Sprint(pid), "--source-ips", "1", "--sockets", "50", "--channels", "5", "--hold", "0s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ir, err := RunIdle(context.Background(), ic, nil)
	if err != nil || !ir.OK || ir.RSSAfter <= 0 {
		t.Fatalf("idle: %v %+v", err, ir)
	}
}
