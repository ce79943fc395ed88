package server

import (
	"net/http"
	"time"

	"github.com/rs/zerolog"
)

// accessLog writes one line per request: method, route template, status,
// bytes and duration. Never the raw path or query, which may hold tokens,
// nor the client's headers. Server errors log at error level; health and
// metrics scrapes at debug, so they do not drown the rest.
func accessLog(log zerolog.Logger) middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rw := observe(w)
			// Deferred, so a request cut by recoverPanics is logged too.
			defer func() {
				if rw.silent {
					return
				}
				route, status := routeOf(r), rw.finalStatus()
				ev := log.Info()
				if status >= 500 {
					ev = log.Error()
				} else if route == "GET /healthz" || route == "GET /metrics" || route == "GET /readyz" {
					ev = log.Debug()
				}
				ev.Str("method", r.Method).Str("route", route).Int("status", status).
					Int64("bytes", rw.bytes).Dur("took", time.Since(start)).Msg("http")
			}()
			next.ServeHTTP(rw, r)
		})
	}
}
