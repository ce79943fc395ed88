package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics counts requests by route template, never by raw path: a raw
// path can carry a QR token or session id.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "handoff_http_requests_total", Help: "HTTP requests by route template, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "handoff_http_request_duration_seconds", Help: "HTTP request latency by route template.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// countRequests records every request in m, by route template, method and
// status, and its latency by route template.
func countRequests(m *httpMetrics) middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rw := observe(w)
			// Deferred, so a request cut by recoverPanics is counted too.
			defer func() {
				if rw.silent {
					return
				}
				route := routeOf(r)
				m.requests.WithLabelValues(route, r.Method, strconv.Itoa(rw.finalStatus())).Inc()
				m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
			}()
			next.ServeHTTP(rw, r)
		})
	}
}
