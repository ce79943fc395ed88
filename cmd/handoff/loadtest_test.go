package main

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/handoff-health/handoff/internal/testutil"
)

// TestLoadtestJSON runs a tiny `handoff loadtest --json` and checks the
// exit status and that stdout is exactly one JSON report.
func TestLoadtestJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"loadtest", "--gps", "3", "--images", "1", "--image-bytes", "20000", "--json"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s\nstdout:\n%s", code, stderr.String(), stdout.String())
	}
	var rep map[string]any
	dec := json.NewDecoder(&stdout)
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("stdout is not JSON: %v", err)
	}
	if dec.More() {
		t.Error("stdout holds more than one JSON value")
	}
	want := map[string]float64{"gps": 3, "images": 3, "eventsExpected": 12, "eventsReceived": 12, "lost": 0, "duplicated": 0, "errors": 0}
	for k, v := range want {
		testutil.Check(t, k, any(v), rep[k])
	}
	lat, _ := rep["latencyMs"].(map[string]any)
	if r2d, _ := lat["registerToDesktop"].(map[string]any); r2d["p99"] == nil {
		t.Error("no latencyMs.registerToDesktop.p99")
	}
	if !bytes.Contains(stderr.Bytes(), []byte("GP rounds done")) {
		t.Errorf("no progress line on stderr (not a terminal):\n%s", stderr.String())
	}
}

func TestLoadtestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--gps", "-1"}, {"--disconnect-rate", "1.5"}, {"--nope"}, {"extra"}} {
		var stdout, stderr bytes.Buffer
		if code := run(append([]string{"loadtest"}, args...), &stdout, &stderr); code != 2 {
			t.Errorf("loadtest %v: exit %d, want 2", args, code)
		}
		if stdout.Len() != 0 {
			t.Errorf("loadtest %v wrote to stdout: %q", args, stdout.String())
		}
	}
}
