package server

import "net/http"

// securityHeaders applies to every response; the pages add their own
// Content-Security-Policy (webui.ContentSecurityPolicy). X-Frame-Options
// cannot name another origin, so when host applications may frame the
// desktop widget, framing is governed by the CSP's frame-ancestors alone.
func securityHeaders(hostFraming bool) middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "no-referrer")
			if !hostFraming {
				h.Set("X-Frame-Options", "SAMEORIGIN")
			}
			next.ServeHTTP(w, r)
		})
	}
}
