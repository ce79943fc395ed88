package server

import (
	"errors"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/internal/httpx"
)

// errHandlerPanic is what a recovered panic is answered with: a plain
// error, so the client gets the JSON 500 that names nothing internal.
var errHandlerPanic = errors.New("handler panic")

// recoverPanics turns a handler's panic into a JSON 500 and one log line
// naming the route, never the panic value (it may hold request data). A
// response already under way cannot become an error, so the connection is
// cut instead and the client does not take the truncated body for a whole
// one.
func recoverPanics(log zerolog.Logger) middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rw := observe(w)
			defer func() {
				p := recover()
				if p == nil {
					return
				}
				if p == http.ErrAbortHandler {
					rw.silent = true
					panic(p)
				}
				log.Error().Str("route", r.Pattern).Msg("handler panic")
				if rw.status != 0 {
					panic(http.ErrAbortHandler)
				}
				rw.Header().Del("Content-Length")
				httpx.WriteError(rw, errHandlerPanic)
			}()
			next.ServeHTTP(rw, r)
		})
	}
}
