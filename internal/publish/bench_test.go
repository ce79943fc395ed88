package publish

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/auth"
)

// The publish route's cost in the server: routing, authentication, body
// decoding, the hub publish and the reply, with no network in between
// (the sockets cost the same before and after any change here). The Redis
// rows are in bench_redis_test.go.

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// benchPublish runs the publish route on backend: serially on one channel,
// and from 64 concurrent publishers on 1,000 channels.
func benchPublish(b *testing.B, backend hub.Backend) {
	h := hub.New(backend)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = h.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	keys, err := auth.ParseAPIKeys(testKeys, testCaps)
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	handler := New(h, keys, Config{}, zerolog.Nop())
	handler.Register(mux)
	token, err := handler.tokens.issue(tokenClaims{KeyName: keyName, Issued: 1, Expires: 1 << 62, Capability: `{"*":["*"]}`})
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"name":"note.added","data":{"noteId":"n-1","text":"a short clinical note of about this size"}}`)
	withID := []byte(`{"id":"ID","name":"note.added","data":{"noteId":"n-1","text":"a short clinical note of about this size"}}`)
	basic := func(r *http.Request) { r.SetBasicAuth(keyName, keySecret) }
	bearer := func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+base64.StdEncoding.EncodeToString([]byte(token)))
	}
	// ably-go's default (binary protocol) asks for a msgpack reply, and
	// sends its body as msgpack.
	basicMsgpack := func(r *http.Request) {
		basic(r)
		r.Header.Set("Accept", "application/x-msgpack")
	}
	mpBody, err := ablyproto.JSONToMsgpack(body)
	if err != nil {
		b.Fatal(err)
	}
	basicMsgpackBody := func(r *http.Request) {
		basicMsgpack(r)
		r.Header.Set("Content-Type", "application/x-msgpack")
	}
	var ids atomic.Int64
	// requests builds a publisher's requests. With keepAlive they share
	// one connection's context (ConnContext, as the server gives each
	// connection), as a keep-alive publisher's requests do; without, each
	// request comes as if on a new connection: nothing is remembered.
	requests := func(channels int, authz func(*http.Request), keepAlive bool) []*http.Request {
		reqs := make([]*http.Request, channels)
		conn := ConnContext(context.Background(), nil)
		for i := range reqs {
			if keepAlive {
				reqs[i], _ = http.NewRequestWithContext(conn, http.MethodPost, "/channels/bench:"+strconv.Itoa(i)+"/messages", nil)
			} else {
				reqs[i], _ = http.NewRequest(http.MethodPost, "/channels/bench:"+strconv.Itoa(i)+"/messages", nil)
			}
			reqs[i].Header.Set("Content-Type", "application/json")
			authz(reqs[i])
		}
		return reqs
	}
	// serve publishes through reqs while next says so.
	serve := func(b *testing.B, reqs []*http.Request, id bool, next func() bool) {
		var rd bytes.Reader
		w := &discardWriter{h: http.Header{}}
		n := int(ids.Add(1)) * 7919
		for next() {
			n++
			r := reqs[n%len(reqs)]
			if id {
				rd.Reset(bytes.Replace(withID, []byte("ID"), strconv.AppendInt(nil, ids.Add(1), 10), 1))
			} else if r.Header.Get("Content-Type") == "application/x-msgpack" {
				rd.Reset(mpBody)
			} else {
				rd.Reset(body)
			}
			r.Body = io.NopCloser(&rd)
			clear(w.h)
			mux.ServeHTTP(w, r)
			if w.code != http.StatusCreated {
				b.Errorf("status %d", w.code)
				return
			}
		}
	}
	for _, c := range []struct {
		name     string
		par, chs int
		authz    func(*http.Request)
		id       bool
		// keepAlive: every request of a publisher on one connection;
		// otherwise each on a new one (the rows' names before issue 14's
		// per-connection key cache).
		keepAlive bool
	}{
		{"serial-key", 0, 1, basic, false, false},
		{"serial-key-keepalive", 0, 1, basic, false, true},
		{"serial-token", 0, 1, bearer, false, false},
		{"serial-key-id", 0, 1, basic, true, false},
		{"serial-key-msgpack-reply", 0, 1, basicMsgpack, false, false},
		{"serial-key-msgpack", 0, 1, basicMsgpackBody, false, false},
		{"64pub-1000ch-key", 64, 1000, basic, false, false},
		{"64pub-1000ch-key-keepalive", 64, 1000, basic, false, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			if c.par == 0 {
				reqs := requests(c.chs, c.authz, c.keepAlive)
				b.ResetTimer()
				serve(b, reqs, c.id, b.Loop)
				return
			}
			procs := max(1, c.par/runtime.GOMAXPROCS(0))
			sets := make(chan []*http.Request, procs*runtime.GOMAXPROCS(0))
			for range cap(sets) {
				sets <- requests(c.chs, c.authz, c.keepAlive)
			}
			b.SetParallelism(procs)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) { serve(b, <-sets, c.id, pb.Next) })
		})
	}
	b.Run("batch-100ch-key", func(b *testing.B) { benchBatch(b, mux) })
}

// benchBatch publishes one message to 100 channels per POST /messages
// (case C′): ns/msg is the cost per event.
func benchBatch(b *testing.B, mux *http.ServeMux) {
	var spec bytes.Buffer
	spec.WriteString(`{"channels":[`)
	for i := range 100 {
		if i > 0 {
			spec.WriteByte(',')
		}
		spec.WriteString(`"bench:` + strconv.Itoa(i) + `"`)
	}
	spec.WriteString(`],"messages":{"name":"note.added","data":{"noteId":"n-1","text":"a short clinical note of about this size"}}}`)
	body := spec.Bytes()
	r, _ := http.NewRequest(http.MethodPost, "/messages", nil)
	r.Header.Set("Content-Type", "application/json")
	r.SetBasicAuth(keyName, keySecret)
	var rd bytes.Reader
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		r.Body = io.NopCloser(&rd)
		clear(w.h)
		mux.ServeHTTP(w, r)
		if w.code != http.StatusCreated {
			b.Fatalf("status %d", w.code)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/msg")
}

func BenchmarkPublishHTTPMemory(b *testing.B) {
	benchPublish(b, hub.NewMemory(hub.MemoryConfig{}))
}
