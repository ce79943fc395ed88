package server

// The node has no hook to mount a route that panics, and none should be
// added for tests, so panic recovery is tested on edge itself: the same
// chain New wraps around the node's mux.

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/internal/testutil"
)

func TestEdgeRecoversPanics(t *testing.T) {
	t.Parallel()
	const secret = "PANIC-VALUE-WITH-PHI"
	mux := http.NewServeMux()
	mux.HandleFunc("GET /boom/{id}", func(http.ResponseWriter, *http.Request) { panic(secret) })
	mux.HandleFunc("GET /boom-after-write/{id}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/jpeg")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("partial"))
		http.NewResponseController(w).Flush()
		panic(secret)
	})
	mux.HandleFunc("GET /abort", func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "fine") })

	logs := &testutil.LogBuffer{}
	m := newHTTPMetrics(prometheus.NewRegistry())
	srv := httptest.NewServer(edge(mux, zerolog.New(logs), m, edgeLimits{}))
	t.Cleanup(srv.Close)

	t.Run("before the response: 500 JSON error", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/boom/" + secret)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		testutil.Check(t, "status", http.StatusInternalServerError, resp.StatusCode)
		testutil.Check(t, "error code", "internal", body.Error.Code)
		if body.Error.Message == "" {
			t.Error("error message is empty")
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type %q", ct)
		}
		testutil.Check(t, "X-Content-Type-Options on the 500", "nosniff", resp.Header.Get("X-Content-Type-Options"))
		testutil.Check(t, "X-Frame-Options on the 500", "SAMEORIGIN", resp.Header.Get("X-Frame-Options"))
	})

	t.Run("after the response started: the connection is cut", func(t *testing.T) {
		// A 200 already sent cannot become a 500; the client must not take
		// the truncated body for a whole one.
		resp, err := http.Get(srv.URL + "/boom-after-write/x")
		if err != nil {
			return // cut before the client saw the headers: also fine
		}
		defer resp.Body.Close()
		if _, err := io.ReadAll(resp.Body); err == nil {
			t.Fatal("a truncated response read as complete")
		}
	})

	t.Run("ErrAbortHandler aborts", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/abort")
		if err == nil {
			resp.Body.Close()
			t.Fatalf("got a response: %d", resp.StatusCode)
		}
	})

	t.Run("the server keeps serving", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/ok")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		testutil.Check(t, "status", http.StatusOK, resp.StatusCode)
		testutil.Check(t, "body", "fine", string(b))
	})

	log := logs.String()
	for _, want := range []string{`"route":"GET /boom/{id}"`, "handler panic", `"status":500`} {
		if !strings.Contains(log, want) {
			t.Errorf("panic log lacks %s:\n%s", want, log)
		}
	}
	if strings.Contains(log, secret) {
		t.Errorf("log contains the panic value or the raw path:\n%s", log)
	}
	testutil.Check(t, "500s counted for the route", 1.0, requestCount(t, m, "GET /boom/{id}", "GET", "500"))
	// The started response that was cut is reported with the status sent;
	// a handler's own ErrAbortHandler is neither logged nor counted.
	testutil.Check(t, "cut 200s counted for the route", 1.0, requestCount(t, m, "GET /boom-after-write/{id}", "GET", "200"))
	testutil.Check(t, "aborts counted", 0.0, requestCount(t, m, "GET /abort", "GET", "200"))
	if strings.Contains(log, `"route":"GET /abort"`) {
		t.Errorf("a handler's own abort was logged:\n%s", log)
	}
}

// TestRecoverPanicsAlone: without the rest of the edge, recovery still
// answers 500 before a response starts and passes net/http's abort on.
func TestRecoverPanicsAlone(t *testing.T) {
	t.Parallel()
	logs := &testutil.LogBuffer{}
	h := recoverPanics(zerolog.New(logs))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "99")
		panic("boom")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	testutil.Check(t, "status", http.StatusInternalServerError, rec.Code)
	testutil.Check(t, "Content-Length of the handler dropped", "", rec.Header().Get("Content-Length"))
	if !strings.Contains(logs.String(), "handler panic") {
		t.Errorf("no panic log line: %s", logs)
	}

	abort := recoverPanics(zerolog.Nop())(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic(http.ErrAbortHandler)
	}))
	defer func() {
		if p := recover(); p != http.ErrAbortHandler {
			t.Errorf("panic passed on = %v, want http.ErrAbortHandler", p)
		}
	}()
	abort.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	t.Fatal("ErrAbortHandler was swallowed")
}
