package loadtest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/handoff-health/handoff/client"

	"github.com/google/go-cmp/cmp"

	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/handoff-health/handoff/internal/testutil"
)

func ev(id, typ, imageID string) client.Event {
	var data []byte
	switch typ {
	case evImageAdded:
		data, _ = json.Marshal(map[string]string{"id": imageID})
	case evImageCommitted:
		data, _ = json.Marshal(map[string]string{"imageId": imageID})
	default:
		data = []byte(`{}`)
	}
	return client.Event{Kind: client.KindEvent, ID: id, Type: typ, Data: data}
}

// TestRoundTally checks the event accounting the report's verdict rests on.
func TestRoundTally(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		expect []string
		events []client.Event
		want   tally
	}{
		{"all received", []string{evMobileConnected, "image.added/a"},
			[]client.Event{ev("e-1", evMobileConnected, ""), ev("e-2", evImageAdded, "a")},
			tally{expected: 2, received: 2}},
		{"event before its request returned", []string{"image.added/a"},
			[]client.Event{ev("e-1", evImageAdded, "a")},
			tally{expected: 1, received: 1}},
		{"lost", []string{evMobileConnected, "image.committed/a"},
			[]client.Event{ev("e-1", evMobileConnected, "")},
			tally{expected: 2, received: 1, lost: 1}},
		{"same id twice", []string{evMobileConnected},
			[]client.Event{ev("e-1", evMobileConnected, ""), ev("e-1", evMobileConnected, "")},
			tally{expected: 1, received: 1, duplicated: 1}},
		{"published twice", []string{"image.added/a"},
			[]client.Event{ev("e-1", evImageAdded, "a"), ev("e-2", evImageAdded, "a")},
			tally{expected: 1, received: 1, duplicated: 1}},
		{"unexpected", nil,
			[]client.Event{ev("e-1", "image.commit_failed", "a"), ev("e-2", evImageAdded, "b")},
			tally{unexpected: []string{"image.commit_failed", evImageAdded}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRound("session:x", newRecorder())
			for _, e := range c.events {
				r.onEvent(e, time.Now())
			}
			r.expect(c.expect...)
			got := r.tally()
			testutil.Check(t, "tally", c.want, got, cmp.AllowUnexported(tally{}), cmpopts.EquateEmpty())
		})
	}
}

// TestRoundLatencyEitherOrder checks register→desktop is recorded whether
// the event or the register reply comes first.
func TestRoundLatencyEitherOrder(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	r := newRound("session:x", rec)
	now := time.Now()
	r.onEvent(ev("e-1", evImageAdded, "a"), now)
	r.registeredAt("a", span{sent: now.Add(-time.Millisecond), replied: now.Add(time.Millisecond)})
	r.registeredAt("b", span{sent: now, replied: now})
	r.onEvent(ev("e-2", evImageAdded, "b"), now.Add(time.Millisecond))
	lat := rec.latencies()
	testutil.Check(t, "register→desktop count", 2, lat[StepToDesktop].Count)
	testutil.Equal(t, "sent→desktop count", 2, lat[StepSentToDesktop].Count)
	if !r.waitExpected(context.Background(), time.Second, evImageAdded+"/") {
		t.Error("waitExpected did not see both image.added events")
	}
}

// TestRoundPublishSplit checks publishToDesktop and publishToReply are
// measured from the event's own timestamp, whichever arrives first.
func TestRoundPublishSplit(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	r := newRound("session:x", rec)
	pub := time.Now()
	a, b := ev("e-1", evImageAdded, "a"), ev("e-2", evImageAdded, "b")
	a.TS, b.TS = pub, pub
	r.onEvent(a, pub.Add(3*time.Millisecond))
	r.registeredAt("a", span{sent: pub.Add(-time.Millisecond), replied: pub.Add(5 * time.Millisecond)})
	r.registeredAt("b", span{sent: pub.Add(-time.Millisecond), replied: pub.Add(2 * time.Millisecond)})
	r.onEvent(b, pub.Add(7*time.Millisecond))
	r.onEvent(ev("e-3", evImageAdded, "c"), pub) // no timestamp: not in the split
	r.registeredAt("c", span{sent: pub, replied: pub})
	lat := rec.latencies()
	testutil.Check(t, "publish→desktop", Latency{Count: 2, P50: 3, P95: 7, P99: 7, Max: 7}, lat[StepPublishToDesktop])
	testutil.Check(t, "publish→reply", Latency{Count: 2, P50: 2, P95: 5, P99: 5, Max: 5}, lat[StepPublishToReply])
	testutil.Check(t, "register→desktop count", 3, lat[StepToDesktop].Count)
}

func TestPhoneAddrDistinct(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for n := range 100_000 {
		ip := phoneAddr(n)
		if !ip.IsLoopback() || ip[len(ip)-1] == 0 || ip[len(ip)-1] == 255 {
			t.Fatalf("phoneAddr(%d) = %s", n, ip)
		}
		if seen[ip.String()] {
			t.Fatalf("phoneAddr(%d) = %s repeats", n, ip)
		}
		seen[ip.String()] = true
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	bad := []Config{
		{GPs: -1}, {Images: maxImages + 1}, {ImageBytes: -5}, {DisconnectRate: 1},
		{Rounds: -2}, {Target: "ftp://x"}, {Target: "127.0.0.1:8080"},
	}
	for _, c := range bad {
		if c.Validate() == nil {
			t.Errorf("Validate(%+v) = nil, want an error", c)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero Config: %v", err)
	}
	c, _ := Config{Duration: time.Minute}.withDefaults()
	if c.Rounds != maxRounds {
		t.Errorf("Rounds with Duration = %d, want %d", c.Rounds, maxRounds)
	}
}
