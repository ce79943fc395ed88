package server

import (
	"net/http"
	"strings"

	"github.com/handoff-health/handoff/internal/httpx"
)

// jsonUnmatched answers requests no route matches on the API paths with the
// JSON error shape instead of ServeMux's plain-text 404 and 405, keeping the
// mux's status and Allow header. Pages and other paths keep the mux's reply.
func jsonUnmatched(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api := strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/channels/") || r.URL.Path == "/messages"
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
