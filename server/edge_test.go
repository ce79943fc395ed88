package server

// The node has no hook to mount a route that panics, and none should be
// added for tests, so panic recovery is tested on edge itself: the same
// middleware New wraps around the node's mux.

import (
	"encoding/json"
	"github.com/handoff-health/handoff/internal/testutil"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
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
	reg := prometheus.NewRegistry()
	m := newHTTPMetrics(reg)
	srv := httptest.NewServer(edge(mux, zerolog.New(logs), m, false))
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
		if resp.StatusCode != 500 || body.Error.Code != "internal" || body.Error.Message == "" {
			t.Fatalf("%d %+v", resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type %q", ct)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("X-Frame-Options") != "SAMEORIGIN" {
			t.Errorf("security headers lost: %v", resp.Header)
		}
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
		if resp.StatusCode != 200 || string(b) != "fine" {
			t.Fatalf("%d %q", resp.StatusCode, b)
		}
	})

	log := logs.String()
	if !strings.Contains(log, `"route":"GET /boom/{id}"`) || !strings.Contains(log, "handler panic") || !strings.Contains(log, `"status":500`) {
		t.Errorf("panic not logged by route:\n%s", log)
	}
	if strings.Contains(log, secret) {
		t.Errorf("log contains the panic value or the raw path:\n%s", log)
	}
	var pb dto.Metric
	if err := m.requests.WithLabelValues("GET /boom/{id}", "GET", "500").Write(&pb); err != nil || pb.GetCounter().GetValue() != 1 {
		t.Errorf("500s counted for the route: %v %v", pb.GetCounter().GetValue(), err)
	}
}
