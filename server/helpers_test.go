package server_test

// Helpers of the server tests: a real node (server.New + Serve on a
// loopback listener) with its log captured, and HTTP and socket helpers.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ably/ably-go/ably"
	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/client"
	"github.com/handoff-health/handoff/internal/config"
	"github.com/handoff-health/handoff/internal/testutil"
	"github.com/handoff-health/handoff/server"
)

const (
	testJWTSecret = "0123456789abcdef0123456789abcdef-server-test"
	apiKeyName    = "integrator"
	apiKeySecret  = "s3cret-api-key-s3cret"
	apiKeys       = apiKeyName + ":" + apiKeySecret
)

// defaults returns the settings of `handoff serve` with no flags, then
// clears whatever would leave the embedded defaults, whatever the
// environment says: memory hub, local blobs in a temp dir, the outbox.
func defaults(t *testing.T) config.Config {
	t.Helper()
	var cfg config.Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	if err := config.Register(fs, &cfg).Parse(nil); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.LogFormat, cfg.LogLevel = "json", "debug"
	cfg.JWTSecret, cfg.APIKeys, cfg.HostOrigins = "", "", ""
	cfg.RedisAddrs, cfg.RedisMaster, cfg.RedisPassword = "", "", ""
	cfg.S3Bucket, cfg.S3Endpoint, cfg.ALEXBaseURL, cfg.AblyKey = "", "", "", ""
	cfg.ShutdownTimeout = 10 * time.Second
	return cfg
}

// devConfig is a dev-mode node on embedded defaults with an API key.
func devConfig(t *testing.T) config.Config {
	cfg := defaults(t)
	cfg.Dev = true
	cfg.APIKeys = apiKeys
	return cfg
}

// node is one running handoff node.
type node struct {
	t      *testing.T
	srv    *server.Server
	url    string // http://127.0.0.1:PORT, also the public URL
	port   int
	log    *testutil.LogBuffer
	cancel context.CancelFunc
	done   chan error

	stopOnce sync.Once
	stopErr  error
}

// startNode builds a node from cfg (Addr and PublicURL are set to its own
// loopback listener) and serves it until the test ends.
func startNode(t *testing.T, cfg config.Config) *node {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = l.Addr().String()
	cfg.PublicURL = "http://" + cfg.Addr
	logs := &testutil.LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, zerolog.New(logs).Level(zerolog.DebugLevel))
	if err != nil {
		cancel()
		l.Close()
		t.Fatalf("server.New: %v", err)
	}
	n := &node{t: t, srv: srv, url: cfg.PublicURL, port: l.Addr().(*net.TCPAddr).Port, log: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { n.done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		if err := n.stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return n
}

// stop shuts the node down gracefully and returns what Serve returned.
func (n *node) stop() error {
	n.stopOnce.Do(func() {
		n.cancel()
		select {
		case n.stopErr = <-n.done:
		case <-time.After(30 * time.Second):
			n.t.Error("Serve did not return after its context ended")
		}
		n.srv.Close()
	})
	return n.stopErr
}

// reply is one HTTP response, read whole.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// errCode is the code of an error reply.
func (r reply) errCode() string {
	var b struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(r.body, &b)
	return b.Error.Code
}

// ablyCode is the numeric code of an Ably-shaped error reply.
func (r reply) ablyCode() int {
	var b struct {
		Error struct{ Code int } `json:"error"`
	}
	_ = json.Unmarshal(r.body, &b)
	return b.Error.Code
}

// do sends a request. body may be nil, a string (sent as is) or anything
// else (sent as JSON); bearer, when set, is the Authorization credential.
func (n *node) do(method, path, bearer string, body any) reply {
	n.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			n.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	target := path
	if !strings.HasPrefix(path, "http") {
		target = n.url + path
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		n.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return send(n.t, req)
}

func send(t *testing.T, req *http.Request) reply {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// must checks the status of r and decodes it into v (when not nil).
func must(t *testing.T, r reply, status int, v any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if v != nil {
		r.decode(t, v)
	}
}

// devToken gets a desktop JWT from the dev endpoint.
func (n *node) devToken() string {
	n.t.Helper()
	var tok struct {
		Token      string `json:"token"`
		FacilityID string `json:"facilityId"`
	}
	must(n.t, n.do("POST", "/api/dev/token", "", nil), http.StatusOK, &tok)
	if tok.Token == "" {
		n.t.Fatal("dev token reply has no token")
	}
	if tok.FacilityID == "" {
		n.t.Fatal("dev token reply has no facilityId")
	}
	return tok.Token
}

// Patient data the tests send; the log test looks for each of them.
const (
	testPatientID = "PAT-5521-ZK"
	testNHI       = "ZZZ00AW"
	testDisplay   = "Hemi W. R."
)

type created struct {
	SessionID string `json:"sessionId"`
	Token     string `json:"token"`
	MobileURL string `json:"mobileUrl"`
	QRURL     string `json:"qrUrl"`
	Channel   string `json:"channel"`
}

// createSession creates a capture session for the desktop holding jwt.
func (n *node) createSession(jwt, encounter string) created {
	n.t.Helper()
	var c created
	must(n.t, n.do("POST", "/api/medtech/session/tokens", jwt, map[string]any{
		"encounterId": encounter, "patientId": testPatientID, "patientNhi": testNHI, "patientDisplay": testDisplay,
	}), http.StatusCreated, &c)
	if c.SessionID == "" {
		n.t.Fatal("create reply has no sessionId")
	}
	if c.Token == "" {
		n.t.Fatal("create reply has no token")
	}
	testutil.Equal(n.t, "create reply channel", "session:"+c.SessionID, c.Channel)
	return c
}

// claim claims a QR token as the phone and returns the mobile token.
func (n *node) claim(token string) string {
	n.t.Helper()
	var c struct {
		MobileToken string `json:"mobileToken"`
	}
	must(n.t, n.do("GET", "/api/medtech/session/tokens/"+token, "", nil), http.StatusOK, &c)
	if c.MobileToken == "" {
		n.t.Fatal("no mobile token")
	}
	return c.MobileToken
}

type presigned struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Key     string            `json:"key"`
}

// addImage presigns, uploads data with a plain HTTP client as a phone
// would, and registers it; it returns the presign reply.
func (n *node) addImage(mobile, imageID string, data []byte) presigned {
	n.t.Helper()
	var p presigned
	must(n.t, n.do("POST", "/api/medtech/session/presigned-url", mobile,
		map[string]any{"imageId": imageID, "contentType": "image/jpeg", "size": len(data)}), http.StatusOK, &p)
	if p.Method != http.MethodPut {
		n.t.Fatalf("upload method %q: only PUT is exercised", p.Method)
	}
	req, err := http.NewRequest(p.Method, p.URL, bytes.NewReader(data))
	if err != nil {
		n.t.Fatal(err)
	}
	for k, v := range p.Headers {
		req.Header.Set(k, v)
	}
	if up := send(n.t, req); up.status/100 != 2 {
		n.t.Fatalf("upload: %d %s", up.status, up.body)
	}
	must(n.t, n.do("POST", "/api/medtech/session/images", mobile, map[string]any{
		"imageId": imageID, "key": p.Key,
		"metadata": map[string]any{
			"laterality": "left",
			"bodySite":   map[string]string{"system": "http://snomed.info/sct", "code": "14975008", "display": "Forearm"},
			"notes":      "healing well",
		},
	}), http.StatusCreated, nil)
	return p
}

// realtime returns a running client of n's socket authenticated with jwt.
func (n *node) realtime(t *testing.T, jwt string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{
		URL:        "ws" + strings.TrimPrefix(n.url, "http") + "/realtime",
		Token:      func(context.Context) (string, error) { return jwt, nil },
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

// ablyREST is the real ably-go REST client pointed at n.
func (n *node) ablyREST(t *testing.T, key string) *ably.REST {
	t.Helper()
	c, err := ably.NewREST(
		ably.WithKey(key),
		ably.WithEndpoint("127.0.0.1"),
		ably.WithPort(n.port),
		ably.WithTLS(false),
		ably.WithUseBinaryProtocol(false),
		ably.WithInsecureAllowBasicAuthWithoutTLS(),
		ably.WithLogHandler(ablyLog{t}),
	)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ablyLog sends ably-go's own log (it reports refused keys as errors) to
// the test log instead of stdout.
type ablyLog struct{ t *testing.T }

func (l ablyLog) Printf(level ably.LogLevel, format string, v ...any) {
	l.t.Logf("ably-go %s: "+format, append([]any{level}, v...)...)
}

// metric returns the lines of n's /metrics whose name is name.
func (n *node) metric(name string) []string {
	n.t.Helper()
	r := n.do("GET", "/metrics", "", nil)
	must(n.t, r, http.StatusOK, nil)
	var out []string
	for _, line := range strings.Split(string(r.body), "\n") {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			out = append(out, line)
		}
	}
	return out
}
