package capture

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/blob"
	"github.com/handoff-health/handoff/internal/session"
	"github.com/handoff-health/handoff/internal/testutil"
)

// env is one running capture API with its collaborators, served over HTTP
// together with the Local blob handler (when the blob store is Local).
type env struct {
	t        *testing.T
	name     string
	api      *API
	srv      *httptest.Server
	hub      *hub.Hub
	store    session.Store
	blobs    blob.Store
	verifier *auth.Verifier
	clock    *testutil.Clock
	log      *testutil.LogBuffer
	jwt      string // facility "fac-a"
}

// backend makes the session store and blob store of one configuration.
type backend struct {
	name string
	make func(t *testing.T, publicURL string) (session.Store, blob.Store, func(mux *http.ServeMux))
}

// backendSetups prepare, for the calling test, the configurations every API
// test runs on. The embedded one (memory store + Local blobs) needs nothing
// but Go; backends_integration_test.go adds Redis store + S3 blobs on
// versitygw under the integration build tag.
var backendSetups = []func(t *testing.T) backend{func(*testing.T) backend { return memoryBackend() }}

// backends returns every configuration, started for the calling test (each
// env still gets its own key prefix and bucket).
func backends(t *testing.T) []backend {
	var out []backend
	for _, setup := range backendSetups {
		out = append(out, setup(t))
	}
	return out
}

// memoryBackend is the embedded configuration alone, for tests whose
// subject does not depend on the stores.
func memoryBackend() backend {
	return backend{"memory+local", func(t *testing.T, publicURL string) (session.Store, blob.Store, func(*http.ServeMux)) {
		l, err := blob.NewLocal(blob.LocalConfig{Dir: t.TempDir(), BaseURL: publicURL})
		if err != nil {
			t.Fatal(err)
		}
		return session.NewMemoryStore(), l, func(mux *http.ServeMux) { mux.Handle("/blob/", l.Handler()) }
	}}
}

const testSecret = "0123456789abcdef0123456789abcdef-test"

// newEnv starts an API on b with cfg (PublicURL is filled in) and a clock
// of its own.
func newEnv(t *testing.T, b backend, cfg Config) *env {
	t.Helper()
	return newEnvClock(t, b, cfg, testutil.NewClock())
}

// newEnvClock is newEnv on a given clock, for nodes that share one.
func newEnvClock(t *testing.T, b backend, cfg Config, clock *testutil.Clock) *env {
	t.Helper()
	return newEnvHub(t, b, cfg, clock, hub.NewMemory(hub.MemoryConfig{}))
}

// newEnvHub is newEnvClock over a given hub backend, for fault injection.
func newEnvHub(t *testing.T, b backend, cfg Config, clock *testutil.Clock, hb hub.Backend) *env {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	store, blobs, mount := b.make(t, srv.URL)
	mount(mux)

	h := hub.New(hb)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = h.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	v, err := auth.NewVerifier([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, name: b.name, srv: srv, hub: h, store: store, blobs: blobs, verifier: v, clock: clock, log: &testutil.LogBuffer{}}
	cfg.PublicURL = srv.URL
	e.api, err = New(cfg, Deps{
		Hub: h, Sessions: store, Blobs: blobs, Verifier: v,
		Log: zerolog.New(e.log), Now: e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.api.Register(mux)
	e.jwt = e.issue("fac-a", time.Hour)
	return e
}

// issue signs a desktop JWT for facility, valid for ttl from real now (the
// verifier checks real time).
func (e *env) issue(facility string, ttl time.Duration) string {
	tok, err := e.verifier.Issue(auth.Claims{Facility: facility, Provider: "prov-1", Expires: time.Now().Add(ttl)})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// do sends a request to the API. body may be nil, a string (sent as is) or
// anything else (sent as JSON).
func (e *env) do(method, path, bearer string, body any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	contentType := "application/json"
	switch b := body.(type) {
	case nil:
	case rawBody:
		rd, contentType = strings.NewReader(b.data), b.contentType
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// rawBody is a request body sent with its own content type.
type rawBody struct{ contentType, data string }

// must decodes a reply with the wanted status into v.
func (e *env) must(status int, want int, body []byte, v any) {
	e.t.Helper()
	if status != want {
		e.t.Fatalf("status %d, want %d: %s", status, want, body)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			e.t.Fatalf("decode %s: %v", body, err)
		}
	}
}

func errCode(body []byte) string {
	var b struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(body, &b)
	return b.Error.Code
}

// Patient data used by tests; the log test looks for each of them.
const (
	testPatientID = "PAT-7781-QX"
	testNHI       = "ZZZ00AW"
	testDisplay   = "Aroha T."
)

func (e *env) create(encounter string) createReply {
	e.t.Helper()
	var c createReply
	st, b := e.do("POST", "/api/medtech/session/tokens", e.jwt, map[string]any{
		"encounterId": encounter, "patientId": testPatientID, "patientNhi": testNHI, "patientDisplay": testDisplay,
	})
	e.must(st, http.StatusCreated, b, &c)
	return c
}

func (e *env) claim(token string) claimReply {
	e.t.Helper()
	var c claimReply
	st, b := e.do("GET", "/api/medtech/session/tokens/"+token, "", nil)
	e.must(st, http.StatusOK, b, &c)
	return c
}

func (e *env) snapshot(id string) snapshotReply {
	e.t.Helper()
	var s snapshotReply
	st, b := e.do("GET", "/api/medtech/session/"+id, e.jwt, nil)
	e.must(st, http.StatusOK, b, &s)
	return s
}

// presign asks for an upload URL for data.
func (e *env) presign(mobile, imageID, contentType string, size int) presignReply {
	e.t.Helper()
	var p presignReply
	st, b := e.do("POST", "/api/medtech/session/presigned-url", mobile,
		map[string]any{"imageId": imageID, "contentType": contentType, "size": size})
	e.must(st, http.StatusOK, b, &p)
	return p
}

// upload sends data through a presign reply with a plain http.Client, as a
// phone would.
func upload(t *testing.T, p presignReply, data []byte) {
	t.Helper()
	if p.Method != http.MethodPut {
		t.Fatalf("upload method %q: only PUT is exercised", p.Method)
	}
	req, err := http.NewRequest(p.Method, p.URL, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range p.Headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
}

// register registers an uploaded image and returns status and body.
func (e *env) register(mobile, imageID, key string, metadata any) (int, []byte) {
	e.t.Helper()
	body := map[string]any{"imageId": imageID, "key": key}
	if metadata != nil {
		body["metadata"] = metadata
	}
	return e.do("POST", "/api/medtech/session/images", mobile, body)
}

// addImage runs presign, upload and register for data, expecting success.
func (e *env) addImage(mobile string, data []byte, contentType string) ImageView {
	e.t.Helper()
	id := uuid.NewString()
	p := e.presign(mobile, id, contentType, len(data))
	upload(e.t, p, data)
	st, b := e.register(mobile, id, p.Key, map[string]any{"laterality": "left"})
	var v ImageView
	e.must(st, http.StatusCreated, b, &v)
	return v
}

// fetch downloads a signed URL.
func fetch(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET image: %d %s", resp.StatusCode, b)
	}
	return b
}

// recorder is a hub sink that collects deliveries.
type recorder struct {
	mu     sync.Mutex
	events []hub.Event
	signal chan struct{}
}

func (e *env) subscribe(channel string, since *hub.Cursor) *recorder {
	e.t.Helper()
	r := &recorder{signal: make(chan struct{}, 1)}
	sub, err := e.hub.Subscribe(context.Background(), channel, since, func(d hub.Delivery) bool {
		if d.Kind == hub.KindEvent {
			r.mu.Lock()
			r.events = append(r.events, d.Event)
			r.mu.Unlock()
			select {
			case r.signal <- struct{}{}:
			default:
			}
		}
		return true
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(sub.Unsubscribe)
	return r
}

// wait returns the first recorded event of type typ not yet returned for
// any earlier wait, failing after a few seconds.
func (r *recorder) wait(t *testing.T, typ string) hub.Event {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		r.mu.Lock()
		for i, ev := range r.events {
			if ev.Type == typ {
				r.events = append(r.events[:i:i], r.events[i+1:]...)
				r.mu.Unlock()
				return ev
			}
		}
		r.mu.Unlock()
		select {
		case <-r.signal:
		case <-deadline:
			t.Fatalf("no %s event", typ)
		}
	}
}

// count returns how many events of type typ were recorded and not waited for.
func (r *recorder) count(typ string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.events {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// top is the channel's newest cursor: publishing is synchronous to
// history, so an unchanged top means nothing was published.
func (e *env) top(channel string) hub.Cursor {
	e.t.Helper()
	c, err := e.hub.Top(context.Background(), channel)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// fingerprint is a session's stored state, for "changed nothing" checks.
func (e *env) fingerprint(id string) string {
	e.t.Helper()
	s, err := e.store.Get(context.Background(), id, e.clock.Now())
	if err != nil {
		return "error: " + err.Error()
	}
	return fmt.Sprintf("%s|%v|%v|%v|%+v|%+v", s.Status, s.ExpiresAt.UnixMilli(), s.MobileConnectedAt.UnixMilli(),
		s.PatientDisplay, s.Images, s.Pending)
}

// imageIDs lists the ids of views, in order.
func imageIDs(views []ImageView) []string {
	ids := make([]string, 0, len(views))
	for _, v := range views {
		ids = append(ids, v.ID)
	}
	return ids
}

// presignRefused asks for an upload URL that must be refused.
func (e *env) presignRefused(mobile string, size, status int, code string) {
	e.t.Helper()
	st, b := e.do("POST", "/api/medtech/session/presigned-url", mobile,
		map[string]any{"imageId": uuid.NewString(), "contentType": "image/jpeg", "size": size})
	testutil.Check(e.t, "refused presign: status", status, st)
	testutil.Check(e.t, "refused presign: code", code, errCode(b))
}

// session reads a session from the store at the env's now.
func (e *env) session(id string) session.Session {
	e.t.Helper()
	s, err := e.store.Get(context.Background(), id, e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}
