package server

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/internal/httpx"
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

// statusWriter records the status code for the access log. It forwards
// Unwrap so http.ResponseController (WebSocket hijack, flush) still works.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// errHandlerPanic is what a recovered panic is answered with: a plain
// error, so the client gets the JSON 500 that names nothing internal.
var errHandlerPanic = errors.New("handler panic")

// edge wraps the whole mux: security headers, panic recovery, metrics and
// one access-log line per request. The line names the route template
// (r.Pattern, set by ServeMux) and never the raw path or query, which may
// hold tokens; nor the client's headers.
func edge(next http.Handler, log zerolog.Logger, m *httpMetrics, hostFraming bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		securityHeaders(sw.Header(), hostFraming)
		defer func() {
			abort := false
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error().Str("route", r.Pattern).Msg("handler panic")
				if sw.status == 0 {
					sw.Header().Del("Content-Length")
					httpx.WriteError(sw, errHandlerPanic)
				} else {
					// A response already under way cannot become an error;
					// cut the connection so the client does not take the
					// truncated body for a whole one.
					abort = true
				}
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			elapsed := time.Since(start)
			m.requests.WithLabelValues(route, r.Method, strconv.Itoa(status)).Inc()
			m.duration.WithLabelValues(route).Observe(elapsed.Seconds())
			ev := log.Info()
			if status >= 500 {
				ev = log.Error()
			} else if route == "GET /healthz" || route == "GET /metrics" || route == "GET /readyz" {
				ev = log.Debug()
			}
			ev.Str("method", r.Method).Str("route", route).Int("status", status).
				Int64("bytes", sw.bytes).Dur("took", elapsed).Msg("http")
			if abort {
				panic(http.ErrAbortHandler)
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// securityHeaders applies to every response; the pages add their own
// Content-Security-Policy (webui.ContentSecurityPolicy). X-Frame-Options
// cannot name another origin, so when host applications may frame the
// desktop widget, framing is governed by the CSP's frame-ancestors alone.
func securityHeaders(h http.Header, hostFraming bool) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if !hostFraming {
		h.Set("X-Frame-Options", "SAMEORIGIN")
	}
}

// jsonUnmatched answers requests no route matches on the API paths with the
// JSON error shape instead of ServeMux's plain-text 404 and 405, keeping the
// mux's status and Allow header. Pages and other paths keep the mux's reply.
func jsonUnmatched(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api := strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/channels/")
		if _, pattern := mux.Handler(r); pattern != "" || !api {
			mux.ServeHTTP(w, r)
			return
		}
		rec := &headerRecorder{header: http.Header{}}
		mux.ServeHTTP(rec, r)
		if allow := rec.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		if rec.status == http.StatusMethodNotAllowed {
			httpx.WriteError(w, httpx.Errorf(rec.status, "method_not_allowed", "this path does not accept %s", r.Method))
			return
		}
		httpx.WriteError(w, httpx.Errorf(http.StatusNotFound, "not_found", "no such API endpoint"))
	})
}

// headerRecorder keeps the status and headers ServeMux would send and
// discards its plain-text body.
type headerRecorder struct {
	header http.Header
	status int
}

func (h *headerRecorder) Header() http.Header         { return h.header }
func (h *headerRecorder) WriteHeader(code int)        { h.status = code }
func (h *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
