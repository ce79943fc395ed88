package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"
)

// TestRunEmbedded is the short run of the real thing: 20 GPs against an
// embedded server, desktops dropping their sockets at random. It asserts
// delivery and the report's shape, never timings.
func TestRunEmbedded(t *testing.T) {
	const gps, images = 20, 2
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Config{
		GPs: gps, Images: images, ImageBytes: 50_000,
		// High enough that every run forces reconnects: each desktop sees
		// 2*images+2 events, so about 24 drops are expected over the run.
		DisconnectRate: 0.2,
		EventTimeout:   20 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	rep.WriteTable(&table)
	t.Log(table.String())

	perSession := 2*images + 2 // mobile.connected, image.added and image.committed each, session.committed
	checks := []struct {
		name      string
		got, want int
	}{
		{"errors", rep.Errors, 0},
		{"lost", rep.Lost, 0},
		{"duplicated", rep.Duplicated, 0},
		{"images", rep.Images, gps * images},
		{"gpRounds", rep.GPRounds, gps},
		{"eventsExpected", rep.EventsExpected, gps * perSession},
		{"eventsReceived", rep.EventsReceived, rep.EventsExpected},
		{"register count", rep.LatencyMs[StepRegister].Count, gps * images},
		{"registerToDesktop count", rep.LatencyMs[StepToDesktop].Count, gps * images},
		{"commit count", rep.LatencyMs[StepCommit].Count, gps},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if rep.Reconnects == 0 {
		t.Error("no desktop reconnected; --disconnect-rate did not drop any socket")
	}
	if !rep.OK() {
		t.Errorf("report not OK: %v", rep.ErrorsByKind)
	}
	if !rep.InProcess {
		t.Error("inProcess is false for an embedded run")
	}
	if rep.PeakRSSBytes <= 0 {
		t.Errorf("peakRss %d, want the process's peak", rep.PeakRSSBytes)
	}
	checkJSONShape(t, rep)
}

// checkJSONShape checks the keys scripts rely on are in the JSON form.
func checkJSONShape(t *testing.T, rep *Report) {
	t.Helper()
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("report is not one JSON object: %v", err)
	}
	for _, k := range []string{"gps", "images", "eventsExpected", "eventsReceived", "lost", "duplicated",
		"errors", "errorsByKind", "reconnects", "resyncs", "latencyMs", "throughput", "durationSeconds"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON has no %q", k)
		}
	}
	lat, _ := m["latencyMs"].(map[string]any)
	for _, s := range allSteps {
		step, _ := lat[string(s)].(map[string]any)
		if _, ok := step["p99"]; !ok {
			t.Errorf("JSON has no latencyMs.%s.p99", s)
		}
	}
}
