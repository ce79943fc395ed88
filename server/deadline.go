package server

import (
	"net/http"
	"strings"
	"time"
)

// bodyDeadline gives a request that has a body d to send it. Without it a
// client that announces "Content-Length: 100" and sends nothing holds its
// connection, and a goroutine, for as long as it likes. The deadline is on
// the connection, set through http.ResponseController:
//   - upload routes replace it with one that fits their size (the local
//     blob store's handler does);
//   - WebSocket upgrades get none, since they carry no body and manage
//     their own deadlines once upgraded;
//   - once the body has been read to its end, net/http itself clears the
//     deadline as it starts its background read, so a handler that then
//     works longer than d (a commit waiting on ALEX) is not cancelled
//     (TestBodyDeadlineLiftedAfterBody holds it to that).
//
// A handler that never reads the body it was sent (a refusal before
// decoding) leaves the deadline in place for net/http's discard of that
// body, so the connection is closed at the deadline instead of held.
func bodyDeadline(d time.Duration) middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if d > 0 && r.ContentLength != 0 && !isUpgrade(r) {
				_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
			}
			next.ServeHTTP(w, r)
		})
	}
}

// isUpgrade reports a protocol upgrade request (WebSocket).
func isUpgrade(r *http.Request) bool {
	for _, v := range r.Header.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}
