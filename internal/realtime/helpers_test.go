package realtime

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/client"
	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/testutil"
	"github.com/handoff-health/handoff/protocol"
)

// testSecret signs every test token; 32 bytes as auth requires.
var testSecret = []byte("0123456789abcdef0123456789abcdef")

func newVerifier(t testing.TB) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// issue returns a token for facility fac valid for ttl.
func issue(t testing.TB, v *auth.Verifier, fac, sub string, ttl time.Duration) string {
	t.Helper()
	tok, err := v.Issue(auth.Claims{Facility: fac, Provider: sub, Expires: time.Now().Add(ttl)})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// startHub runs a hub over b until the test ends.
func startHub(t testing.TB, b hub.Backend) *hub.Hub {
	t.Helper()
	h := hub.New(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = h.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		_ = b.Close()
		<-done
	})
	return h
}

func memoryHub(t testing.TB) *hub.Hub {
	return startHub(t, hub.NewMemory(hub.MemoryConfig{}))
}

// node is one realtime server on its own httptest listener.
type node struct {
	hub  *hub.Hub
	srv  *Server
	http *httptest.Server
	url  string // ws://127.0.0.1:port/realtime
}

func startNode(t testing.TB, h *hub.Hub, v *auth.Verifier, cfg Config) *node {
	t.Helper()
	srv := New(h, v, cfg, zerolog.Nop())
	mux := http.NewServeMux()
	mux.Handle("GET "+Path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// net/http would swallow a handler panic; make it fail the test.
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("handler panicked: %v", p)
			}
		}()
		srv.ServeHTTP(w, r)
	}))
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
	})
	return &node{hub: h, srv: srv, http: hs, url: "ws" + strings.TrimPrefix(hs.URL, "http") + Path}
}

// frame is any server frame, decoded as clients decode it.
type frame = protocol.ServerFrame

// raw is a bare WebSocket client speaking the protocol by hand.
type raw struct {
	t  testing.TB
	ws *websocket.Conn
}

// dialRaw opens a socket; header may carry Authorization.
func dialRaw(t testing.TB, url string, header http.Header) *raw {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	ws.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = ws.CloseNow() })
	return &raw{t: t, ws: ws}
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// connect dials with a bearer token and consumes the connected frame.
func connect(t testing.TB, url, tok string) *raw {
	t.Helper()
	r := dialRaw(t, url, bearer(tok))
	if f := r.next(); f.Type != protocol.FrameConnected {
		t.Fatalf("first frame %q, want connected", f.Type)
	}
	return r
}

func (r *raw) sendText(s string) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.ws.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

func (r *raw) send(v any) {
	r.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		r.t.Fatal(err)
	}
	r.sendText(string(b))
}

// read returns the next frame or the error that ended the socket.
func (r *raw) read(timeout time.Duration) (frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, b, err := r.ws.Read(ctx)
	if err != nil {
		return frame{}, err
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		r.t.Fatalf("server sent undecodable frame %q: %v", b, err)
	}
	return f, nil
}

func (r *raw) next() frame {
	r.t.Helper()
	f, err := r.read(5 * time.Second)
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	return f
}

// expectClose reads until the socket closes and checks the close code.
func (r *raw) expectClose(want websocket.StatusCode) {
	r.t.Helper()
	for {
		_, err := r.read(15 * time.Second)
		if err == nil {
			continue
		}
		if got := websocket.CloseStatus(err); got != want {
			r.t.Fatalf("socket ended with %v (code %d), want close code %d", err, got, want)
		}
		return
	}
}

// publish publishes n events of type typ on channel and returns them.
func publish(t testing.TB, h *hub.Hub, channel, typ string, n int) []hub.Event {
	t.Helper()
	out := make([]hub.Event, 0, n)
	for i := 0; i < n; i++ {
		ev, err := h.Publish(context.Background(), channel, hub.Publication{Type: typ, Data: json.RawMessage(`{"n":` + itoa(i) + `}`)})
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		out = append(out, ev)
	}
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }

// eventFrameOf is the frame that carries ev, as a client decodes it.
func eventFrameOf(ev hub.Event) frame {
	return frame{Type: protocol.FrameEvent, Event: &protocol.Event{
		ID: ev.ID, Channel: ev.Channel, Type: ev.Type, Data: ev.Data, TS: ev.TS,
		MsgID: ev.MsgID, ClientID: ev.ClientID, ConnectionID: ev.ConnectionID,
	}}
}

// closeStatus is websocket.CloseStatus, named for readability in asserts.
func closeStatus(err error) websocket.StatusCode { return websocket.CloseStatus(err) }

// metricValue reads a counter or gauge without registering it anywhere.
func metricValue(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	if c := out.GetCounter(); c != nil {
		return c.GetValue()
	}
	return out.GetGauge().GetValue()
}

// waitForKind reads the client until an event of kind arrives; a
// published event before it fails the test, because it would mean the
// caller saw data it was not told how to place.
func waitForKind(t testing.TB, cl *client.Client, kind client.Kind) client.Event {
	t.Helper()
	ev := testutil.Next(t, cl, kind, client.KindEvent)
	if ev.Kind != kind {
		t.Fatalf("event %s arrived while waiting for %v", ev.ID, kind)
	}
	return ev
}

func countConns(n *node) int {
	n.srv.mu.Lock()
	defer n.srv.mu.Unlock()
	return len(n.srv.conns)
}

// balancer stands in for a load balancer: every new connection goes to
// whichever node it currently points at, whatever host the URL names.
type balancer struct {
	mu     sync.Mutex
	target string
}

func (lb *balancer) point(n *node) {
	u, _ := url.Parse(n.http.URL)
	lb.mu.Lock()
	lb.target = u.Host
	lb.mu.Unlock()
}

func (lb *balancer) httpClient() *http.Client {
	d := &net.Dialer{}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			lb.mu.Lock()
			target := lb.target
			lb.mu.Unlock()
			return d.DialContext(ctx, network, target)
		},
	}}
}
