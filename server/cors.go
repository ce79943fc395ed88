package server

import (
	"net/http"
	"strings"
)

// ablyCORS lets browser ably-js on any page call the Ably REST routes
// cross-origin, as Ably itself does. ably-js's fetch sends
// credentials:'include' whenever it sends an Authorization header, so the
// origin is echoed (never "*") with Allow-Credentials, and the headers it
// reads are exposed: Link for history pages, X-Ably-Errorcode and
// X-Ably-Errormessage, without which it ignores an error body.
//
// Echoing any origin is safe here because these routes never take ambient
// credentials: a request is authorised only by the key or token it carries
// itself, never by a cookie. The capture API and the pages are not covered.
func ablyCORS() middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origin := r.Header.Get("Origin")
			if origin == "" || !isAblyRESTPath(r.URL.Path) {
				next.ServeHTTP(w, r)
				return
			}
			h := w.Header()
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Add("Vary", "Access-Control-Request-Method")
				h.Add("Vary", "Access-Control-Request-Headers")
				h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
				h.Set("Access-Control-Allow-Headers", ablyRequestHeaders)
				h.Set("Access-Control-Max-Age", "86400")
				w.WriteHeader(http.StatusNoContent)
				return
			}
			h.Set("Access-Control-Expose-Headers", "Link, X-Ably-Errorcode, X-Ably-Errormessage, X-Ably-Serverid")
			next.ServeHTTP(w, r)
		})
	}
}

// ablyRequestHeaders are the headers ably-js sends on REST requests.
const ablyRequestHeaders = "Authorization, Content-Type, Accept, X-Ably-Version, Ably-Agent, X-Ably-ClientId, X-Ably-Lib"

// isAblyRESTPath reports whether path is one of the Ably REST routes that
// internal/publish serves (its Register): a route added there must be
// added here too, or browser ably-js cannot call it cross-origin.
func isAblyRESTPath(path string) bool {
	return path == "/time" || path == "/stats" || path == "/messages" ||
		strings.HasPrefix(path, "/channels/") || strings.HasPrefix(path, "/keys/")
}
