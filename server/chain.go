package server

import (
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/internal/httpx"
)

// middleware is one cross-cutting HTTP concern wrapped around a handler.
type middleware func(http.Handler) http.Handler

// chain composes middlewares; the first is the outermost, so it sees the
// request first and the finished response last.
func chain(mws ...middleware) middleware {
	return func(h http.Handler) http.Handler {
		for i := len(mws) - 1; i >= 0; i-- {
			h = mws[i](h)
		}
		return h
	}
}

// edgeLimits are the edge's settings: whether host applications may frame
// the pages, whose X-Forwarded-For to believe, and the API body deadline.
type edgeLimits struct {
	hostFraming bool
	proxies     httpx.Proxies
	bodyTimeout time.Duration
}

// edge is everything between the listener and the node's routes, in one
// place. Security headers go on first so even a recovered panic's 500
// carries them; the access log and metrics sit outside panic recovery so
// they see the status it answered with. Ably's CORS answers preflights
// before any route, and is itself outside the log: a preflight carries
// nothing worth a line. The client address is outermost:
// it derives the request every later layer shares, so the route template
// ServeMux records on it is seen by the access log and metrics too. The
// body deadline is set before any handler can read the body.
func edge(next http.Handler, log zerolog.Logger, m *httpMetrics, lim edgeLimits) http.Handler {
	return chain(
		clientAddress(lim.proxies),
		securityHeaders(lim.hostFraming),
		ablyCORS(),
		accessLog(log),
		countRequests(m),
		recoverPanics(log),
		bodyDeadline(lim.bodyTimeout),
	)(next)
}

// response records what the handler did, for the middlewares outside it.
// Every layer shares the outermost one (see observe), so they agree on the
// status. It forwards Unwrap so http.ResponseController (WebSocket hijack,
// flush) still works.
type response struct {
	http.ResponseWriter
	status int
	bytes  int64
	// silent marks a handler's own http.ErrAbortHandler: net/http's way to
	// drop a connection quietly, which is neither logged nor counted.
	silent bool
}

// observe returns w's shared *response, making it when w is not one yet.
func observe(w http.ResponseWriter) *response {
	if r, ok := w.(*response); ok {
		return r
	}
	return &response{ResponseWriter: w}
}

func (w *response) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *response) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *response) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finalStatus is the status the client got: a handler that wrote nothing
// answered 200.
func (w *response) finalStatus() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// routeOf names a request by its route template (r.Pattern, set by
// ServeMux), never by its raw path or query, which can carry a QR token or
// session id.
func routeOf(r *http.Request) string {
	if r.Pattern == "" {
		return "unmatched"
	}
	return r.Pattern
}
