package commit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/alex"
	"github.com/handoff-health/handoff/internal/alex/alextest"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/blob"
	"github.com/handoff-health/handoff/internal/capture"
	"github.com/handoff-health/handoff/internal/session"
	"github.com/handoff-health/handoff/internal/testutil"
)

// PHI of the test patient. None of it may appear in a log line.
const (
	patientID      = "pat-secret-4821"
	patientNHI     = "ZZZ0016"
	patientDisplay = "Jane Secretperson"
	facility       = "F2N060-A"
	provider       = "prov-77"
	secretNotes    = "ulcer on secret-note-site"
)

// storeKind makes the session store of one configuration.
type storeKind struct {
	name string
	make func(t *testing.T) session.Store
}

// storeKindSetups prepare the session stores the store-sensitive tests run
// on, for the calling test. Memory is always here; redis_integration_test.go
// adds a Redis store on a real redis-server under the integration tag.
var storeKindSetups = []func(t *testing.T) storeKind{
	func(*testing.T) storeKind {
		return storeKind{"memory", func(*testing.T) session.Store { return session.NewMemoryStore() }}
	},
}

// storeKinds returns every store kind, started for the calling test; every
// store made gets its own state (Redis: its own key prefix), so subtests
// and envs never share it.
func storeKinds(t *testing.T) []storeKind {
	var out []storeKind
	for _, setup := range storeKindSetups {
		out = append(out, setup(t))
	}
	return out
}

// env is one commit API with real collaborators: a session store, a Local
// blob store served over HTTP, the hub on its memory backend, the capture
// API (for image views) and, unless an outbox is given, the alextest fake
// behind a real alex.Client.
type env struct {
	t        *testing.T
	api      *API
	srv      *httptest.Server
	hub      *hub.Hub
	store    session.Store
	blobs    blob.Store
	phone    *capture.API // the capture API, mounted: the phone's side of a session
	fake     *alextest.Server
	verifier *auth.Verifier
	log      *testutil.LogBuffer
	jwt      string // facility F2N060-A
}

type envOptions struct {
	store  session.Store // nil: memory
	blobs  blob.Store    // nil: a Local store served by the env's server
	outbox string        // non-empty: file to an alex.Outbox here instead of the fake
	cfg    Config
	// wrap, if set, wraps the committer (e.g. to slow it down).
	wrap func(alex.Committer) alex.Committer
	// alexTimeout bounds one ALEX attempt; zero: 5 s.
	alexTimeout time.Duration
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	e := &env{t: t, log: &testutil.LogBuffer{}, store: o.store}
	if e.store == nil {
		e.store = session.NewMemoryStore()
	}
	mux := http.NewServeMux()
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)

	var err error
	e.blobs = o.blobs
	if e.blobs == nil {
		local, err := blob.NewLocal(blob.LocalConfig{Dir: t.TempDir(), BaseURL: e.srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		mux.Handle("/blob/", local.Handler())
		e.blobs = local
	}
	mem := hub.NewMemory(hub.MemoryConfig{})
	t.Cleanup(func() { mem.Close() })
	e.hub = hub.New(mem)
	e.verifier, err = auth.NewVerifier([]byte("commit-test-secret-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	e.jwt = e.token(facility)

	logger := zerolog.New(e.log)
	views, err := capture.New(capture.Config{PublicURL: e.srv.URL}, capture.Deps{
		Hub: e.hub, Sessions: e.store, Blobs: e.blobs, Verifier: e.verifier, Log: logger})
	if err != nil {
		t.Fatal(err)
	}
	views.Register(mux)
	e.phone = views
	committer := e.committer(o.outbox, o.alexTimeout)
	if o.wrap != nil {
		committer = o.wrap(committer)
	}
	e.api, err = New(o.cfg, Deps{
		Sessions: e.store, Blobs: e.blobs, Hub: e.hub, ALEX: committer,
		Verifier: e.verifier, Images: views, Log: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.api.Register(mux)
	// Commits still filing in the background end before the fake ALEX and
	// the stores close (cleanups run last-registered first).
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := e.api.Shutdown(ctx); err != nil {
			t.Errorf("background commits still running: %v", err)
		}
	})
	return e
}

// committer returns the outbox, or a real ALEX client on a new fake with
// millisecond backoffs.
func (e *env) committer(outbox string, timeout time.Duration) alex.Committer {
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	if outbox != "" {
		ob, err := alex.NewOutbox(outbox)
		if err != nil {
			e.t.Fatal(err)
		}
		return ob
	}
	e.fake = alextest.NewServer(e.t, alextest.Options{Facilities: []string{facility}})
	c, err := alex.NewClient(alex.Config{
		BaseURL: e.fake.URL(), TokenURL: e.fake.TokenURL(),
		ClientID: e.fake.ClientID(), ClientSecret: e.fake.ClientSecret(), Scope: e.fake.Scope(),
		BaseBackoff: time.Millisecond, Timeout: timeout,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) token(fac string) string {
	tok, err := e.verifier.Issue(auth.Claims{Facility: fac, Provider: provider, Expires: time.Now().Add(time.Hour)})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// seeded is a session with images, as a phone would have left it.
type seeded struct {
	id     string
	images []session.Image
	data   map[string][]byte // image id → uploaded bytes
}

// seed opens a session for the test patient and uploads n images through
// the blob store's signed upload URLs, then registers them.
func (e *env) seed(n int) seeded {
	e.t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	s := session.Session{
		ID: uuid.NewString(), Facility: facility, EncounterID: "enc-" + rand.Text()[:8],
		PatientID: patientID, PatientNHI: patientNHI, PatientDisplay: patientDisplay, ProviderID: provider,
		MaxImages: 20, CreatedAt: now, ExpiresAt: now.Add(2 * time.Hour),
	}
	if _, _, err := e.store.Open(ctx, s, session.QRToken{Hash: rand.Text(), ExpiresAt: now.Add(10 * time.Minute)}, 0); err != nil {
		e.t.Fatal(err)
	}
	sd := seeded{id: s.ID, data: map[string][]byte{}}
	for i := range n {
		img := e.upload(s.ID, now.Add(time.Duration(i)*time.Second))
		sd.images = append(sd.images, img)
	}
	for _, img := range sd.images {
		sd.data[img.ID] = e.read(img.Key)
	}
	return sd
}

// upload stores a small JPEG-looking object under the image's stored key,
// as register leaves it, and adds the image with its hash and metadata.
func (e *env) upload(sessionID string, created time.Time) session.Image {
	e.t.Helper()
	ctx := context.Background()
	id := uuid.NewString()
	data := append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, []byte(rand.Text()+rand.Text())...)
	key := blob.Key(sessionID, id)
	if err := e.blobs.Put(ctx, key, bytes.NewReader(data), int64(len(data)), "image/jpeg"); err != nil {
		e.t.Fatal(err)
	}
	img := session.Image{
		ID: id, Key: key, ContentType: "image/jpeg", Size: int64(len(data)), SHA256: blob.Hash(data), CreatedAt: created,
		Metadata: session.Metadata{
			Laterality: "left", Notes: secretNotes,
			BodySite: session.BodySite{System: alex.SystemSNOMED, Code: "14975008", Display: "Forearm"},
		},
		Commit: session.Commit{Status: session.CommitPending},
	}
	if _, _, err := e.store.AddImage(ctx, sessionID, img, e.api.touch()); err != nil {
		e.t.Fatal(err)
	}
	return img
}

// read returns a stored object's bytes, or nil if it is gone.
func (e *env) read(key string) []byte {
	rc, err := e.blobs.Open(context.Background(), key)
	if err != nil {
		return nil
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return b
}

func (e *env) session(id string) session.Session {
	e.t.Helper()
	s, err := e.store.Get(context.Background(), id, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// post sends a commit request with the env's JWT; body may be a string
// (sent as is) or a value (sent as JSON).
func (e *env) post(body any) (int, []byte) {
	return e.postAs(e.jwt, body)
}

func (e *env) postAs(jwt string, body any) (int, []byte) {
	return e.postTo("/api/medtech/session/commit", jwt, body)
}

func (e *env) postTo(path, jwt string, body any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	if s, ok := body.(string); ok {
		rd = strings.NewReader(s)
	} else {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if jwt != "" {
		req.Header.Set("Authorization", "Bearer "+jwt)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// commit posts a commit of the whole session and decodes the 200 reply.
func (e *env) commit(req Request) Reply {
	e.t.Helper()
	status, body := e.post(req)
	if status != http.StatusOK {
		e.t.Fatalf("commit: %d %s", status, body)
	}
	var r Reply
	if err := json.Unmarshal(body, &r); err != nil {
		e.t.Fatal(err)
	}
	return r
}

// events returns the session channel's history.
func (e *env) events(sessionID string) []hub.Event {
	e.t.Helper()
	evs, _, err := e.hub.History(context.Background(), session.ChannelPrefix+sessionID, hub.Cursor{})
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

func eventTypes(evs []hub.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Type)
	}
	return out
}

// assertNoPHI fails if the log holds patient data, notes, tokens or
// ALEX's diagnostics.
func (e *env) assertNoPHI(extra ...string) {
	e.t.Helper()
	log := e.log.String()
	for _, s := range append([]string{patientID, patientNHI, patientDisplay, secretNotes, e.jwt, "alextest-", "Bearer"}, extra...) {
		if strings.Contains(log, s) {
			e.t.Errorf("log contains %q:\n%s", s, log)
		}
	}
}

// auditLines returns the decoded audit lines of the log.
func (e *env) auditLines() []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(e.log.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["audit"] == "commit" {
			out = append(out, m)
		}
	}
	return out
}

// replySummary is what a commit reply says overall, besides its results.
type replySummary struct {
	Status        string
	SessionStatus session.Status
	Committed     int
	Failed        int
	Results       int // how many results
}

// checkReply fails the test unless reply's summary is want.
func checkReply(t *testing.T, what string, want replySummary, reply Reply) {
	t.Helper()
	testutil.Equal(t, what, want, replySummary{reply.Status, reply.SessionStatus, reply.Committed, reply.Failed, len(reply.Results)})
}

// checkFailure checks a result that is not filed: its status and its
// error's code, with a message for the GP.
func checkFailure(t *testing.T, what string, status session.CommitStatus, code string, res Result) {
	t.Helper()
	testutil.Check(t, what+": status", status, res.Status)
	if res.Error == nil {
		t.Errorf("%s: no error, want %s", what, code)
		return
	}
	testutil.Check(t, what+": error code", code, res.Error.Code)
	if res.Error.Message == "" {
		t.Errorf("%s: error without a message", what)
	}
}
