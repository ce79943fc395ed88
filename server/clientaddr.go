package server

import (
	"net/http"

	"github.com/handoff-health/handoff/internal/httpx"
)

// clientAddress decides, once per request, which client sent it (the TCP
// peer, or X-Forwarded-For through a trusted proxy: httpx.Proxies.ClientIP)
// and stores it for httpx.ClientAddr, which every per-address limit uses:
// the QR claim limiter and the cap on unauthenticated sockets.
func clientAddress(proxies httpx.Proxies) middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, httpx.WithClientIP(r, proxies.ClientIP(r)))
		})
	}
}
