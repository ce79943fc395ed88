package fanout

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/handoff-health/handoff/internal/testutil"
)

func TestCentrifugoTokenIsAnHS256JWT(t *testing.T) {
	t.Parallel()
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	tok, err := centrifugoToken(testSecret, "bench", exp)
	if err != nil {
		t.Fatal(err)
	}
	// An independent JWT library accepts it with the secret...
	var claims jwt.RegisteredClaims
	parsed, err := jwt.ParseWithClaims(tok, &claims, func(*jwt.Token) (any, error) { return []byte(testSecret), nil },
		jwt.WithValidMethods([]string{"HS256"}))
	if err != nil || !parsed.Valid {
		t.Fatalf("token refused: %v", err)
	}
	testutil.Equal(t, "sub", "bench", claims.Subject)
	testutil.Equal(t, "exp", exp.Unix(), claims.ExpiresAt.Unix())
	// ...and refuses it with another.
	if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return []byte("another secret"), nil }); err == nil {
		t.Fatal("token accepted with the wrong secret")
	}
	if _, err := centrifugoToken("", "bench", exp); err == nil {
		t.Fatal("a token minted without a secret")
	}
}

func TestParseCentrifugoPub(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		line      string
		off       uint64
		sched, st int64
		ok        bool
	}{
		{"with offset", `{"push":{"channel":"bench:a","pub":{"data":{"t":100,"r":150,"s":"1.2"},"offset":7}}}`, 7, 100, 150, true},
		{"no history, no offset", `{"push":{"channel":"bench:a","pub":{"data":{"t":100,"r":150,"s":"1.2","p":"xxxx"}}}}`, 0, 100, 150, true},
		{"fields in another order", `{"push":{"pub":{"offset":9,"data":{"r":150,"t":100}},"channel":"bench:a"}}`, 9, 100, 150, true},
		{"spaces", `{"push": {"channel": "c", "pub": {"data": {"t": 5, "r": 6}, "offset": 3}}}`, 3, 5, 6, true},
		{"no bench data", `{"push":{"channel":"c","pub":{"data":{"x":1}}}}`, 0, 0, 0, false},
		{"not JSON", `{"push":{"channel":"c","pub":{"data":{"t":1`, 0, 0, 0, false},
		{"an offset that is not a number", `{"push":{"channel":"c","pub":{"data":{"t":100,"r":150},"offset":"x"}}}`, 0, 0, 0, false},
	}
	for _, tc := range cases {
		off, sched, st, ok := parseCentrifugoPub([]byte(tc.line))
		testutil.Equal(t, tc.name, []any{tc.off, tc.sched, tc.st, tc.ok}, []any{off, sched, st, ok})
	}
}

func TestCentrifugoReplyError(t *testing.T) {
	t.Parallel()
	testutil.Equal(t, "result", nil, centrifugoReplyError([]byte(`{"result":{"offset":3,"epoch":"x"}}`)))
	testutil.Equal(t, "empty", nil, centrifugoReplyError([]byte(`{}`)))
	testutil.Equal(t, "error", error(centrifugoAPIError(102)),
		centrifugoReplyError([]byte(`{"error":{"code":102,"message":"unknown channel"}}`)))
	testutil.Equal(t, "batch with an error", error(centrifugoAPIError(103)),
		centrifugoReplyError([]byte(`{"replies":[{"publish":{}},{"error":{"code":103,"message":"permission denied"}}]}`)))
}

func TestPublishBodies(t *testing.T) {
	t.Parallel()
	body := func(server string, batch int) []byte {
		t.Helper()
		c := FanoutConfig{Target: Target{Server: server, URL: "http://127.0.0.1:1", APIKey: "k:s"}, Batch: batch, Payload: 100}
		// newPublisher dials; build the same struct without a connection.
		p := &publisher{batch: c.Batch, pad: strings.Repeat("x", 40), id: 3,
			centrifugo: server == ServerCentrifugo, chanJSON: [][]byte{[]byte(`"bench:a\"b"`)}}
		p.buildBody(job{channel: 0, sched: 111}, 222)
		if !json.Valid(p.body) {
			t.Fatalf("%s batch %d: invalid JSON %s", server, batch, p.body)
		}
		return p.body
	}
	type data struct {
		T int64  `json:"t"`
		R int64  `json:"r"`
		S string `json:"s"`
		P string `json:"p"`
	}
	want := data{T: 111, R: 222, S: "3.1", P: strings.Repeat("x", 40)}

	var one struct {
		Channel string `json:"channel"`
		Data    data   `json:"data"`
	}
	_ = json.Unmarshal(body(ServerCentrifugo, 1), &one)
	testutil.Equal(t, "centrifugo publish", `bench:a"b`, one.Channel)
	testutil.Equal(t, "centrifugo publish data", want, one.Data)

	var batch struct {
		Commands []struct {
			Publish struct {
				Channel string `json:"channel"`
				Data    data   `json:"data"`
			} `json:"publish"`
		} `json:"commands"`
	}
	_ = json.Unmarshal(body(ServerCentrifugo, 3), &batch)
	testutil.Equal(t, "centrifugo batch commands", 3, len(batch.Commands))
	testutil.Equal(t, "centrifugo batch, last", "3.3", batch.Commands[2].Publish.Data.S)
	testutil.Equal(t, "centrifugo batch channel", `bench:a"b`, batch.Commands[1].Publish.Channel)

	var msgs []struct {
		Name string `json:"name"`
		Data data   `json:"data"`
	}
	_ = json.Unmarshal(body(ServerHandoff, 2), &msgs)
	testutil.Equal(t, "handoff batch", 2, len(msgs))
	testutil.Equal(t, "handoff message", "bench", msgs[0].Name)
	var single struct {
		Name string `json:"name"`
		Data data   `json:"data"`
	}
	_ = json.Unmarshal(body(ServerHandoff, 1), &single)
	testutil.Equal(t, "handoff single", want, single.Data)
}

func TestParseCentrifugoFlags(t *testing.T) {
	base := []string{"--server", "centrifugo", "--target", "http://127.0.0.1:8000", "--jwt-secret", testSecret}
	c, err := ParseFanout(append(base, "--api-key", "plainkey", "--namespace", ""), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "server", ServerCentrifugo, c.Server)
	testutil.Equal(t, "namespace", "", c.Namespace)
	testutil.Equal(t, "api key (no keyName: needed)", "plainkey", c.APIKey)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown server", []string{"--server", "nats", "--dev", "--api-key", "k:s"}, "--server"},
		{"dev token", []string{"--server", "centrifugo", "--dev", "--api-key", "k"}, "--dev"},
		{"no api key", base, "--api-key"},
		{"bad namespace", append(base, "--api-key", "k", "--namespace", "a:b"), "--namespace"},
	} {
		t.Setenv("HANDOFF_JWT_SECRET", "")
		t.Setenv("HANDOFF_BENCH_API_KEY", "")
		_, err := ParseFanout(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error naming %s", tc.name, err, tc.want)
		}
	}
}

// tinyCentrifugo speaks just enough of Centrifugo's JSON client protocol
// and HTTP API for the bench: connect with an HS256 token, subscribe,
// publish with X-API-Key, publication pushes with per-channel offsets.
// Every connection gets a ping on subscribing and must answer it.
type tinyCentrifugo struct {
	t      *testing.T
	secret string
	apiKey string
	refuse string // a channel whose subscribe is refused

	mu      sync.Mutex
	subs    map[string][]*websocket.Conn
	offsets map[string]uint64
	pongs   int
}

func newTinyCentrifugo(t *testing.T) (*tinyCentrifugo, *httptest.Server) {
	c := &tinyCentrifugo{t: t, secret: testSecret, apiKey: "tiny-key", subs: map[string][]*websocket.Conn{}, offsets: map[string]uint64{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/connection/websocket", c.socket)
	mux.HandleFunc("POST /api/publish", c.publish)
	mux.HandleFunc("POST /api/batch", c.batch)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return c, srv
}

func (c *tinyCentrifugo) validToken(tok string) bool {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return false
	}
	mac := hmac.New(sha256.New, []byte(c.secret))
	mac.Write([]byte(parts[0] + "." + parts[1]))
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	return err == nil && hmac.Equal(sig, mac.Sum(nil))
}

func (c *tinyCentrifugo) socket(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ctx := r.Context()
	var cmd struct {
		ID        uint32                    `json:"id"`
		Connect   *struct{ Token string }   `json:"connect"`
		Subscribe *struct{ Channel string } `json:"subscribe"`
	}
	read := func() bool {
		_, b, err := ws.Read(ctx)
		cmd.Connect, cmd.Subscribe = nil, nil
		return err == nil && json.Unmarshal(b, &cmd) == nil
	}
	write := func(s string) { _ = ws.Write(ctx, websocket.MessageText, []byte(s)) }
	if !read() || cmd.Connect == nil || !c.validToken(cmd.Connect.Token) {
		write(fmt.Sprintf(`{"id":%d,"error":{"code":101,"message":"unauthorized"}}`, cmd.ID))
		ws.Close(3500, "unauthorized")
		return
	}
	write(fmt.Sprintf(`{"id":%d,"connect":{"client":"c1","version":"0.0.0","ping":25,"pong":true}}`, cmd.ID))
	if !read() || cmd.Subscribe == nil {
		ws.Close(3501, "bad request")
		return
	}
	if cmd.Subscribe.Channel == c.refuse {
		write(fmt.Sprintf(`{"id":%d,"error":{"code":103,"message":"permission denied"}}`, cmd.ID))
		return
	}
	// The reply and a ping in one frame, as Centrifugo batches them.
	write(fmt.Sprintf("{\"id\":%d,\"subscribe\":{}}\n{}", cmd.ID))
	c.mu.Lock()
	c.subs[cmd.Subscribe.Channel] = append(c.subs[cmd.Subscribe.Channel], ws)
	c.mu.Unlock()
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			return
		}
		if string(b) == "{}" {
			c.mu.Lock()
			c.pongs++
			c.mu.Unlock()
		}
	}
}

func (c *tinyCentrifugo) publish(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-API-Key") != c.apiKey {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	var req tinyPublish
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		_, _ = io.WriteString(w, `{"error":{"code":107,"message":"bad request"}}`)
		return
	}
	_, _ = io.WriteString(w, c.deliver(r.Context(), req))
}

// batch serves /api/batch: each publish command in turn, one reply each.
func (c *tinyCentrifugo) batch(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-API-Key") != c.apiKey {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	var req struct {
		Commands []struct {
			Publish *tinyPublish `json:"publish"`
		} `json:"commands"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		_, _ = io.WriteString(w, `{"error":{"code":107,"message":"bad request"}}`)
		return
	}
	replies := make([]string, len(req.Commands))
	for i, cmd := range req.Commands {
		replies[i] = `{"error":{"code":107,"message":"bad request"}}`
		if cmd.Publish != nil {
			replies[i] = c.deliver(r.Context(), *cmd.Publish)
		}
	}
	_, _ = io.WriteString(w, `{"replies":[`+strings.Join(replies, ",")+`]}`)
}

type tinyPublish struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

// deliver pushes one publication to its channel's sockets and returns the
// command's reply.
func (c *tinyCentrifugo) deliver(ctx context.Context, p tinyPublish) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	subs, ok := c.subs[p.Channel]
	if !ok {
		return `{"error":{"code":102,"message":"unknown channel"}}`
	}
	c.offsets[p.Channel]++
	push := fmt.Sprintf(`{"push":{"channel":%q,"pub":{"data":%s,"offset":%d}}}`, p.Channel, p.Data, c.offsets[p.Channel])
	// Delivered under the lock, so each channel's offsets go out in order.
	for _, ws := range subs {
		_ = ws.Write(ctx, websocket.MessageText, []byte(push))
	}
	return `{"result":{}}`
}

func TestCentrifugoSocketRefusals(t *testing.T) {
	t.Parallel()
	tiny, srv := newTinyCentrifugo(t)
	tiny.refuse = "bench:no"
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + centrifugoPath
	ctx := context.Background()
	good, _ := centrifugoToken(testSecret, "bench", time.Now().Add(time.Hour))
	bad, _ := centrifugoToken("not the secret", "bench", time.Now().Add(time.Hour))

	if _, err := openCentrifugoSocket(ctx, wsURL, bad, "bench:yes", http.DefaultClient, newReceiver()); err == nil || !strings.Contains(err.Error(), "101") {
		t.Fatalf("a bad token: got %v, want Centrifugo's error 101", err)
	}
	if _, err := openCentrifugoSocket(ctx, wsURL, good, "bench:no", http.DefaultClient, newReceiver()); err == nil || !strings.Contains(err.Error(), "103") {
		t.Fatalf("a refused subscribe: got %v, want Centrifugo's error 103", err)
	}
	s, err := openCentrifugoSocket(ctx, wsURL, good, "bench:yes", http.DefaultClient, newReceiver())
	if err != nil {
		t.Fatal(err)
	}
	s.close()
}

func TestCentrifugoFrameRecordsEveryLine(t *testing.T) {
	t.Parallel()
	rc := newReceiver()
	s := &socket{rc: rc, centrifugo: true}
	frame := strings.Join([]string{
		`{"push":{"channel":"c","pub":{"data":{"t":10,"r":11},"offset":1}}}`,
		`{"push":{"channel":"c","pub":{"data":{"t":12,"r":13},"offset":3}}}`, // a gap
		`{"push":{"channel":"c","pub":{"data":{"t":14,"r":15},"offset":3}}}`, // a duplicate
		`{"push":{"channel":"c","pub":{"data":{"t":16,"r":17}}}}`,            // no offset
		`{"push":{"channel":"c","pub":{"data":{"x":1}}}}`,                    // not the bench's
		`{"push":{"channel":"c","unsubscribe":{"code":2000}}}`,
		`{"id":5,"error":{"code":100,"message":"internal"}}`,
		``,
	}, "\n")
	s.centrifugoFrame(100, []byte(frame))
	got := map[string]uint64{"received": rc.received.Load(), "gaps": rc.gaps.Load(), "dups": rc.dups.Load(),
		"unordered": rc.unordered.Load(), "malformed": rc.malformed.Load(), "errors": rc.errorFrames.Load()}
	testutil.Equal(t, "counts", map[string]uint64{"received": 4, "gaps": 1, "dups": 1, "unordered": 1, "malformed": 1, "errors": 2}, got)
}

// A whole fanout run against the tiny server: every publish reaches every
// subscriber of its channel, in order, and pings are answered.
func TestRunFanoutAgainstACentrifugo(t *testing.T) {
	tiny, srv := newTinyCentrifugo(t)
	c, err := ParseFanout([]string{"--server", "centrifugo", "--target", srv.URL, "--jwt-secret", testSecret,
		"--api-key", tiny.apiKey, "--sockets", "12", "--channels", "4", "--rate", "200", "--publishers", "2",
		"--warmup", "100ms", "--duration", "400ms", "--source-ips", "1"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	res, err := RunFanout(context.Background(), c, &progress)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if !res.OK {
		t.Fatalf("run not clean: %+v", res)
	}
	testutil.Equal(t, "server", ServerCentrifugo, res.Server)
	testutil.Equal(t, "every accepted message reached its 3 subscribers", res.Publishes.Messages*3, res.Deliveries.Received)
	if res.Publishes.Messages == 0 || res.Latency.Count == 0 {
		t.Fatalf("nothing published or measured: %+v", res)
	}
	testutil.Equal(t, "every delivery carried an offset", uint64(0), res.Integrity.Unordered)
	tiny.mu.Lock()
	defer tiny.mu.Unlock()
	testutil.Equal(t, "every socket answered its ping", 12, tiny.pongs)

	// A wrong key is a counted error, not a silent pass.
	c.APIKey = "wrong"
	res, err = RunFanout(context.Background(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.OK || res.Publishes.ErrorKinds["status 401"] == 0 {
		t.Fatalf("a refused key gave %+v", res.Publishes)
	}
}

// TestReadReply: a reply is read whole into the reused buffer, one past
// centrifugoReplyLimit is cut there, and the rest of the body is drained
// (so the connection can carry the next request).
func TestReadReply(t *testing.T) {
	t.Parallel()
	buf := make([]byte, 0, 4)
	got, err := readReply(buf, strings.NewReader(`{"result":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "short reply", `{"result":{}}`, string(got))

	long := strings.NewReader(strings.Repeat("x", centrifugoReplyLimit+100))
	got, err = readReply(got[:0], long)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "long reply cut at the limit", centrifugoReplyLimit, len(got))
	testutil.Equal(t, "the rest drained", 0, long.Len())
}
