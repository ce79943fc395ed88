package httpx

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
)

// ErrUnavailable answers a request that failed because a service the node
// depends on (Redis, the hub backend, the blob store) could not be reached.
// It is a 503, which clients retry: an outage is never reported as
// "forbidden", "not found" or a 500 that reads like a bug.
var ErrUnavailable = Errorf(http.StatusServiceUnavailable, "unavailable", "a service this server depends on is unavailable; retry shortly")

// Unavailable returns an error that is answered as ErrUnavailable and
// still wraps cause, for the log. Use it where a caller knows an error is
// an outage that IsUnavailable cannot recognise by itself.
func Unavailable(cause error) error { return &unavailableError{cause} }

type unavailableError struct{ cause error }

func (e *unavailableError) Error() string   { return "unavailable: " + e.cause.Error() }
func (e *unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.cause} }

// IsUnavailable reports whether err means a dependency could not answer,
// rather than a bug or a refusal. It recognises, through any wrapping:
//   - an error that says so itself with an Unavailable() bool method
//     (hub.ErrUnavailable does), or wraps ErrUnavailable;
//   - network failures: net.Error (refused, reset, timed out), EOF on a
//     dropped connection, an expired deadline;
//   - the Redis replies that mean "not now": LOADING, CLUSTERDOWN,
//     MASTERDOWN, READONLY (a demoted master), TRYAGAIN, NOREPLICAS, BUSY.
//
// The package imports none of them: they are recognised by behaviour, so
// the one error mapping needs no knowledge of who failed.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var self interface{ Unavailable() bool }
	if errors.As(err, &self) && self.Unavailable() {
		return true
	}
	var ne net.Error
	switch {
	case errors.Is(err, ErrUnavailable), errors.As(err, &ne),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	}
	var re interface {
		error
		RedisError()
	}
	if errors.As(err, &re) {
		for _, p := range redisOutages {
			if strings.HasPrefix(re.Error(), p) {
				return true
			}
		}
	}
	return false
}

// redisOutages are the Redis error replies that mean the server cannot
// serve the command now, but will: failover, loading, a cluster in repair.
var redisOutages = []string{"LOADING ", "CLUSTERDOWN ", "MASTERDOWN ", "READONLY ", "TRYAGAIN ", "NOREPLICAS ", "BUSY "}
