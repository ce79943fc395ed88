package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/handoff-health/handoff/internal/testutil"
)

// requestCount reads handoff_http_requests_total for one label set.
func requestCount(t *testing.T, m *httpMetrics, route, method, status string) float64 {
	t.Helper()
	var pb dto.Metric
	if err := m.requests.WithLabelValues(route, method, status).Write(&pb); err != nil {
		t.Fatal(err)
	}
	return pb.GetCounter().GetValue()
}

// latencyCount reads how many latencies handoff_http_request_duration_seconds
// observed for route.
func latencyCount(t *testing.T, m *httpMetrics, route string) uint64 {
	t.Helper()
	var pb dto.Metric
	obs, err := m.duration.GetMetricWithLabelValues(route)
	if err != nil {
		t.Fatal(err)
	}
	if err := obs.(prometheus.Histogram).Write(&pb); err != nil {
		t.Fatal(err)
	}
	return pb.GetHistogram().GetSampleCount()
}

func TestCountRequests(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "missing" {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		_, _ = io.WriteString(w, "item")
	})
	mux.HandleFunc("POST /silent", func(http.ResponseWriter, *http.Request) {})
	m := newHTTPMetrics(prometheus.NewRegistry())
	h := countRequests(m)(mux)
	for _, target := range []struct{ method, path string }{
		{"GET", "/items/secret-token-1"}, {"GET", "/items/secret-token-2"}, {"GET", "/items/missing"},
		{"POST", "/silent"}, {"GET", "/nowhere/secret-token-3"},
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(target.method, target.path, nil))
	}
	cases := []struct {
		route, method, status string
		want                  float64
	}{
		{"GET /items/{id}", "GET", "200", 2},
		{"GET /items/{id}", "GET", "404", 1},
		{"POST /silent", "POST", "200", 1}, // nothing written is a 200
		{"unmatched", "GET", "404", 1},
	}
	for _, tc := range cases {
		testutil.Check(t, tc.route+" "+tc.status, tc.want, requestCount(t, m, tc.route, tc.method, tc.status))
	}
	testutil.Check(t, "latencies of GET /items/{id}", uint64(3), latencyCount(t, m, "GET /items/{id}"))

	// No label value is a raw path.
	ch := make(chan prometheus.Metric, 100)
	m.requests.Collect(ch)
	close(ch)
	for metric := range ch {
		var pb dto.Metric
		if err := metric.Write(&pb); err != nil {
			t.Fatal(err)
		}
		for _, l := range pb.GetLabel() {
			if l.GetName() == "route" && (l.GetValue() != "unmatched" && l.GetValue()[0] == '/') {
				t.Errorf("route label %q is a raw path", l.GetValue())
			}
		}
	}
}
