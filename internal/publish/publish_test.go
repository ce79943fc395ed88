package publish

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ably/ably-go/ably"
	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/testutil"
)

const (
	keyName   = "integrator"
	keySecret = "s3cret-s3cret-s3cret"
	// benchKey may publish only in namespace bench; readerKey may not
	// publish at all.
	benchKey     = "bench"
	benchSecret  = "b3nch-b3nch-b3nch-b3nch"
	readerKey    = "reader"
	readerSecret = "r3ader-r3ader-r3ader"
	testKeys     = keyName + ":" + keySecret + "," + benchKey + ":" + benchSecret + "," + readerKey + ":" + readerSecret
	testCaps     = `{"bench":{"bench:*":["publish"]},"reader":{"*":["subscribe","history"]}}`
)

// rig is a publish endpoint on an httptest server over a memory hub.
type rig struct {
	hub     *hub.Hub
	backend *hub.Memory
	url     string
	port    int
	log     *testutil.LogBuffer
}

func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	// The hub shares the handler's clock: both remember message ids for
	// the idempotency window (the hub across nodes, hub/dedupe.go).
	b := hub.NewMemory(hub.MemoryConfig{Now: cfg.Now})
	h := hub.New(b)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = h.Run(ctx) }()
	keys, err := auth.ParseAPIKeys(testKeys, testCaps)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	logs := &testutil.LogBuffer{}
	New(h, keys, cfg, zerolog.New(logs)).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		cancel()
		_ = b.Close()
	})
	u, _ := url.Parse(srv.URL)
	port, _ := strconv.Atoi(u.Port())
	return &rig{hub: h, backend: b, url: srv.URL, port: port, log: logs}
}

// ably returns a real ably-go REST client pointed at the rig.
func (r *rig) ably(t *testing.T, key string) *ably.REST {
	t.Helper()
	c, err := ably.NewREST(
		ably.WithKey(key),
		ably.WithEndpoint("127.0.0.1"),
		ably.WithPort(r.port),
		ably.WithTLS(false),
		ably.WithUseBinaryProtocol(false),
		ably.WithInsecureAllowBasicAuthWithoutTLS(),
	)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// subscribe collects the live events of channel.
func (r *rig) subscribe(t *testing.T, channel string) <-chan hub.Event {
	t.Helper()
	out := make(chan hub.Event, 100)
	sub, err := r.hub.Subscribe(context.Background(), channel, nil, func(d hub.Delivery) bool {
		if d.Kind == hub.KindEvent {
			out <- d.Event
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Unsubscribe)
	return out
}

func next(t *testing.T, events <-chan hub.Event) hub.Event {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
		return hub.Event{}
	}
}

func TestAblyGoPublish(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{})
	events := r.subscribe(t, "session:abc")
	ch := r.ably(t, keyName+":"+keySecret).Channels.Get("session:abc")
	ctx := context.Background()

	// A map is sent as a JSON string with encoding "json"; it is stored as JSON.
	if err := ch.Publish(ctx, "note.added", map[string]any{"noteId": "n-1", "n": 2}); err != nil {
		t.Fatalf("ably-go Publish: %v", err)
	}
	ev := next(t, events)
	testutil.Equal(t, "event from a map", stored{"session:abc", "note.added", `{"n":2,"noteId":"n-1"}`}, storedOf(ev))

	// A string stays a JSON string.
	if err := ch.Publish(ctx, "note", "hello"); err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "event from a string", stored{"session:abc", "note", `"hello"`}, storedOf(next(t, events)))

	// A batch keeps its order; the serials are the events' cursors.
	res, err := ch.PublishMultipleWithResult(ctx, []*ably.Message{
		{Name: "a", Data: map[string]any{"i": 1}}, {Name: "b", Data: "two"}, {Name: "c"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"a", "b", "c"} {
		ev := next(t, events)
		testutil.Equal(t, "type of batch event "+strconv.Itoa(i), want, ev.Type)
		if res[i].Serial == nil {
			t.Fatalf("batch %d: no serial in the reply", i)
		}
		testutil.Equal(t, "serial of batch message "+strconv.Itoa(i), ev.ID, *res[i].Serial)
	}
}

func TestIdempotentPublish(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{})
	ch := r.ably(t, keyName+":"+keySecret).Channels.Get("session:idem")
	ctx := context.Background()
	msg := func() []*ably.Message { return []*ably.Message{{ID: "fixed-id:0", Name: "note.added", Data: "x"}} }

	first, err := ch.PublishMultipleWithResult(ctx, msg())
	if err != nil {
		t.Fatal(err)
	}
	again, err := ch.PublishMultipleWithResult(ctx, msg())
	if err != nil {
		t.Fatal(err)
	}
	if *first[0].Serial != *again[0].Serial {
		t.Fatalf("retry got serial %s, first %s", *again[0].Serial, *first[0].Serial)
	}
	// Concurrent retries of a new id publish it once too.
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := ch.PublishMultiple(ctx, []*ably.Message{{ID: "burst:0", Name: "x"}}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// The same id on another channel is another message.
	if err := r.ably(t, keyName+":"+keySecret).Channels.Get("session:other").PublishMultiple(ctx, msg()); err != nil {
		t.Fatal(err)
	}
	evs, _, err := r.backend.History(ctx, "session:idem", hub.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("history has %d events, want 2 (one per id)", len(evs))
	}
	other, _, _ := r.backend.History(ctx, "session:other", hub.Cursor{})
	if len(other) != 1 {
		t.Fatalf("other channel has %d events, want 1", len(other))
	}
}

func TestIdempotencyWindowExpires(t *testing.T) {
	t.Parallel()
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	r := newRig(t, Config{Now: clock})
	body := `[{"id":"w:0","name":"x"}]`
	for i := range 2 {
		if resp := r.post(t, "/channels/session:w/messages", body, keyName, keySecret); resp.StatusCode != 201 {
			t.Fatalf("publish %d: %d", i, resp.StatusCode)
		}
	}
	mu.Lock()
	now = now.Add(DefaultIdempotencyWindow + time.Second)
	mu.Unlock()
	r.post(t, "/channels/session:w/messages", body, keyName, keySecret)
	evs, _, _ := r.backend.History(context.Background(), "session:w", hub.Cursor{})
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2: one, a deduplicated retry, one after the window", len(evs))
	}
}

func TestAblyGoBadKey(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{})
	err := r.ably(t, keyName+":wrong-secret-wrong").Channels.Get("session:x").Publish(context.Background(), "x", "y")
	var ae *ably.ErrorInfo
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want an *ably.ErrorInfo", err)
	}
	testutil.Equal(t, "ErrorInfo status", http.StatusUnauthorized, ae.StatusCode)
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{MaxMessages: 3})
	big := `"` + strings.Repeat("x", hub.MaxDataBytes) + `"`
	cases := []struct {
		name, path, body, user, pass string
		status, code                 int
	}{
		{"no credentials", "/channels/a/messages", `{"name":"x"}`, "", "", 401, 40100},
		{"wrong secret", "/channels/a/messages", `{"name":"x"}`, keyName, "nope-nope-nope-nope", 401, 40101},
		{"unknown key", "/channels/a/messages", `{"name":"x"}`, "ghost", keySecret, 401, 40101},
		{"bad channel", "/channels/a%0Ab/messages", `{"name":"x"}`, keyName, keySecret, 400, 40010},
		{"channel starting with [", "/channels/%5Bq%5Da/messages", `{"name":"x"}`, keyName, keySecret, 400, 40010},
		{"not JSON", "/channels/a/messages", `{`, keyName, keySecret, 400, 40000},
		{"scalar body", "/channels/a/messages", `42`, keyName, keySecret, 400, 40000},
		{"empty array", "/channels/a/messages", `[]`, keyName, keySecret, 400, 40000},
		{"too many", "/channels/a/messages", `[{"name":"a"},{"name":"b"},{"name":"c"},{"name":"d"}]`, keyName, keySecret, 413, 40009},
		{"long name", "/channels/a/messages", `{"name":"` + strings.Repeat("n", 101) + `"}`, keyName, keySecret, 400, 40000},
		{"base64 data", "/channels/a/messages", `{"name":"x","data":"AAE=","encoding":"base64"}`, keyName, keySecret, 400, 40000},
		{"json encoding, not JSON", "/channels/a/messages", `{"name":"x","data":"{nope","encoding":"json"}`, keyName, keySecret, 400, 40000},
		{"data too large", "/channels/a/messages", `{"name":"x","data":` + big + `}`, keyName, keySecret, 413, 40009},
		{"body too large", "/channels/a/messages", `[` + strings.Repeat(`{"name":"x","data":`+big+`},`, 16) + `{"name":"x"}]`, keyName, keySecret, 413, 40009},
		{"the same id twice (RSL1k3)", "/channels/a/messages", `[{"id":"x","name":"a"},{"id":"x","name":"b"}]`, keyName, keySecret, 400, 40031},
		{"ids not <base>:<position>", "/channels/a/messages", `[{"id":"b:1","name":"a"},{"id":"b:0","name":"b"}]`, keyName, keySecret, 400, 40031},
		{"one bad message spoils the batch", "/channels/a/messages", `[{"name":"ok"},{"name":"x","action":1}]`, keyName, keySecret, 400, 40000},
	}
	for _, tc := range cases {
		resp := r.post(t, tc.path, tc.body, tc.user, tc.pass)
		var body struct {
			Error struct {
				Code, StatusCode int
				Message          string
			} `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		testutil.Check(t, tc.name+": status", tc.status, resp.StatusCode)
		testutil.Check(t, tc.name+": error code", tc.code, body.Error.Code)
		testutil.Check(t, tc.name+": error statusCode", tc.status, body.Error.StatusCode)
		testutil.Check(t, tc.name+": Content-Type", "application/json", resp.Header.Get("Content-Type"))
		testutil.Check(t, tc.name+": X-Ably-Errorcode", strconv.Itoa(tc.code), resp.Header.Get("X-Ably-Errorcode"))
		if body.Error.Message == "" {
			t.Errorf("%s: error without a message", tc.name)
		}
		if tc.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tc.name)
		}
	}
	// Nothing of the refused batches was published.
	if evs, _, _ := r.backend.History(context.Background(), "a", hub.Cursor{}); len(evs) != 0 {
		t.Fatalf("%d events published by refused requests", len(evs))
	}
}

func TestBackendDownIs503(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{})
	_ = r.backend.Close()
	resp := r.post(t, "/channels/a/messages", `{"name":"x"}`, keyName, keySecret)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", resp.StatusCode)
	}
	// The batch route's failure is answered per channel, and each route's
	// log line names its own route template.
	resp = r.post(t, "/messages", `{"channels":["b"],"messages":{"name":"x"}}`, keyName, keySecret)
	resp.Body.Close()
	logs := r.log.String()
	for _, route := range []string{`"route":"POST /channels/{channel}/messages"`, `"route":"POST /messages"`} {
		if !strings.Contains(logs, route) {
			t.Errorf("no publish-failed line with %s in:\n%s", route, logs)
		}
	}
}

func (r *rig) post(t *testing.T, path, body, user, pass string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// stored is what the hub kept of a message: its channel, its type and its
// data, normalized (keys sorted) so that JSON equal in value compares equal.
type stored struct{ Channel, Type, Data string }

func storedOf(ev hub.Event) stored {
	var v any
	if err := json.Unmarshal(ev.Data, &v); err != nil {
		return stored{ev.Channel, ev.Type, "undecodable: " + string(ev.Data)}
	}
	return stored{ev.Channel, ev.Type, jsonString(v)}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
