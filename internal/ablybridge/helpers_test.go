package ablybridge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/handoff-health/handoff/internal/testutil"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/hub"
)

// phiMarker is put in every test event's data; it must never be logged.
const phiMarker = "PHI-MARKER-Jane-Doe"

// node is a hub with a running bridge, as one handoff process has.
type node struct {
	hub    *hub.Hub
	bridge *Bridge
	reg    *prometheus.Registry
	logs   *testutil.LogBuffer
	stop   func()
}

// testConfig is a bridge config with fast retries, pointed at stub.
func testConfig(stub *ablyStub) Config {
	return Config{
		Key:            testKey,
		EventNames:     map[string]string{"image.added": "image-uploaded"},
		BackoffMin:     5 * time.Millisecond,
		BackoffMax:     50 * time.Millisecond,
		PublishTimeout: 200 * time.Millisecond,
		SettleGrace:    100 * time.Millisecond,
		RescanInterval: time.Second,
		RESTOptions:    stub.options(),
	}
}

// newNode builds a hub over backend and a bridge over it, without running
// them; start does.
func newNode(t *testing.T, backend hub.Backend, progress Progress, cfg Config, resolve Resolver) *node {
	t.Helper()
	n := &node{hub: hub.New(backend), reg: prometheus.NewRegistry(), logs: &testutil.LogBuffer{}}
	log := zerolog.New(n.logs)
	b, err := New(n.hub, cfg, progress, resolve, n.reg, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	n.bridge = b
	return n
}

// start runs the hub and the bridge until stop (or the test's end).
func (n *node) start(t *testing.T) *node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = n.hub.Run(ctx) }()
	go func() {
		defer wg.Done()
		if err := n.bridge.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	var once sync.Once
	n.stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(n.stop)
	return n
}

// publish publishes n events to channel and returns them as stored.
func (n *node) publish(t *testing.T, channel string, from, count int) []hub.Event {
	t.Helper()
	var out []hub.Event
	for i := from; i < from+count; i++ {
		typ := "image.added"
		if i%3 == 0 {
			typ = "mobile.connected"
		}
		data := fmt.Sprintf(`{"n":%d,"note":%q}`, i, phiMarker)
		ev, err := n.hub.Publish(context.Background(), channel, hub.Publication{Type: typ, Data: json.RawMessage(data)})
		if err != nil {
			t.Fatalf("publish %s #%d: %v", channel, i, err)
		}
		out = append(out, ev)
	}
	return out
}

// metric returns the value of a counter or gauge, optionally one labelled
// series of it ("name" or "name{label=value}").
func (n *node) metric(t *testing.T, series string) float64 {
	t.Helper()
	name, label, _ := strings.Cut(strings.TrimSuffix(series, "}"), "{")
	mfs, err := n.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && !hasLabel(m, label) {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", series)
	return 0
}

func hasLabel(m *dto.Metric, kv string) bool {
	k, v, _ := strings.Cut(kv, "=")
	for _, l := range m.GetLabel() {
		if l.GetName() == k && l.GetValue() == v {
			return true
		}
	}
	return false
}

// checkMirrored asserts that the stub holds exactly evs on ablyChannel, in
// order, each with its cursor-derived id, mapped name and data.
func checkMirrored(t *testing.T, stub *ablyStub, ablyChannel string, evs []hub.Event) {
	t.Helper()
	got := stub.messages(ablyChannel)
	if len(got) != len(evs) {
		t.Fatalf("%s: Ably has %d messages, want %d", ablyChannel, len(got), len(evs))
	}
	for i, ev := range evs {
		m := got[i]
		if want := "handoff-" + ev.ID; m.ID != want {
			t.Fatalf("%s #%d: id %q, want %q (order or id scheme broken)", ablyChannel, i, m.ID, want)
		}
		wantName := ev.Type
		if ev.Type == "image.added" {
			wantName = "image-uploaded"
		}
		if m.Name != wantName {
			t.Errorf("%s #%d: name %q, want %q", ablyChannel, i, m.Name, wantName)
		}
		testutil.Equal(t, fmt.Sprintf("%s #%d: encoding", ablyChannel, i), "json", m.Encoding)
		var s string
		if err := json.Unmarshal(m.Data, &s); err != nil {
			t.Fatalf("%s #%d: data %s is not a JSON string: %v", ablyChannel, i, m.Data, err)
		}
		if !jsonEqual(s, string(ev.Data)) {
			t.Errorf("%s #%d: data %s, want %s", ablyChannel, i, s, ev.Data)
		}
	}
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// checkLogsClean asserts no log line carries the key secret or event data.
func checkLogsClean(t *testing.T, logs *testutil.LogBuffer) {
	t.Helper()
	out := logs.String()
	for _, secret := range []string{testKeySecret, phiMarker} {
		if strings.Contains(out, secret) {
			t.Errorf("logs contain %q:\n%s", secret, out)
		}
	}
}
