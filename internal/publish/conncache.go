package publish

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"

	"github.com/handoff-health/handoff/internal/auth"
)

// An integrator publishing with an API key sends the same Authorization
// header on every request of a keep-alive connection, and checking it
// (base64 decode, SHA-256 of the secret, constant-time compare) was a
// fifth of a publish. So each connection remembers the one header that
// last verified on it and what it verified as; the next request on that
// connection with the same bytes skips the check.
//
// Why a remembered header is as good as a checked one:
//   - only the exact bytes that verified hit it, and they are compared in
//     constant time: behind a proxy that pools connections, requests of
//     several clients can share one, and a guess must not learn how much
//     of another client's secret it got right;
//   - the entry carries the keys' generation (auth.APIKeys.Generation),
//     read before the check; a key added, replaced or removed at runtime
//     (the test provisioner) moves the generation on, and the next request
//     verifies again;
//   - a failed check is never remembered, and a different header is
//     checked and, if it verifies, replaces the entry;
//   - the entry lives and dies with the connection, so nothing is bounded
//     or evicted.
//
// X-Ably-ClientId is not part of the entry: it is read on every request.

// ConnContext is the http.Server's ConnContext hook: it gives every
// connection the place where its verified credential is remembered.
// Without it (a server that does not set it, or a test calling the
// handler directly) every request is checked in full.
func ConnContext(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, &connState{})
}

type connKey struct{}

// connState is one connection's memory. HTTP/1 requests on a connection
// are serial but HTTP/2 streams are not, so the entry is swapped whole.
type connState struct {
	basic atomic.Pointer[basicEntry]
}

// basicEntry is a verified Basic Authorization header. It is immutable.
type basicEntry struct {
	authz   string // the whole header value, secret included
	gen     uint64 // the keys' generation read before the check
	keyName string
	cap     auth.Capability
}

func connStateOf(r *http.Request) *connState {
	cs, _ := r.Context().Value(connKey{}).(*connState)
	return cs
}

// cachedBasic returns the key name and capability remembered for authz on
// r's connection, or ok false when the connection has none, remembers
// another header, or the keys changed since.
func (h *Handler) cachedBasic(r *http.Request, authz string) (keyName string, c auth.Capability, ok bool) {
	cs := connStateOf(r)
	if cs == nil {
		return "", auth.Capability{}, false
	}
	e := cs.basic.Load()
	if e == nil || e.gen != h.keys.Generation() || !equalConstantTime(e.authz, authz) {
		return "", auth.Capability{}, false
	}
	return e.keyName, e.cap, true
}

// rememberBasic stores authz, verified at generation gen, on r's
// connection.
func rememberBasic(r *http.Request, authz string, gen uint64, keyName string, c auth.Capability) {
	if cs := connStateOf(r); cs != nil {
		cs.basic.Store(&basicEntry{authz: authz, gen: gen, keyName: keyName, cap: c})
	}
}

// equalConstantTime reports whether a == b in a time that depends only on
// their lengths (subtle.ConstantTimeCompare without converting the strings
// to byte slices).
func equalConstantTime(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var v byte
	for i := 0; i < len(a); i++ {
		v |= a[i] ^ b[i]
	}
	return v == 0
}
