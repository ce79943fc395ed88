package server

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/handoff-health/handoff/internal/testutil"
)

func TestSecurityHeadersMiddleware(t *testing.T) {
	t.Parallel()
	type headers struct{ NoSniff, Referrer, FrameOptions string }
	cases := []struct {
		name        string
		hostFraming bool
		want        headers
	}{
		{"same-origin framing", false, headers{"nosniff", "no-referrer", "SAMEORIGIN"}},
		// X-Frame-Options cannot name the host applications; the page's
		// CSP frame-ancestors does.
		{"host applications may frame", true, headers{"nosniff", "no-referrer", ""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := securityHeaders(tc.hostFraming)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusTeapot)
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			got := headers{rec.Header().Get("X-Content-Type-Options"), rec.Header().Get("Referrer-Policy"), rec.Header().Get("X-Frame-Options")}
			testutil.Equal(t, "security headers", tc.want, got)
			testutil.Check(t, "handler's status", http.StatusTeapot, rec.Code)
		})
	}
}
