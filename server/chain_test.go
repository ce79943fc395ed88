package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/handoff-health/handoff/internal/testutil"
)

// TestChainOrder: the first middleware is the outermost.
func TestChainOrder(t *testing.T) {
	t.Parallel()
	var trace []string
	mark := func(name string) middleware {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				trace = append(trace, name+" in")
				next.ServeHTTP(w, r)
				trace = append(trace, name+" out")
			})
		}
	}
	h := chain(mark("a"), mark("b"), mark("c"))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		trace = append(trace, "handler")
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	testutil.Equal(t, "call order", "a in,b in,c in,handler,c out,b out,a out", strings.Join(trace, ","))
}

// TestObserveShares: every layer of one request records into one
// response, so the access log and metrics see the status recovery wrote.
func TestObserveShares(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	outer := observe(rec)
	inner := observe(outer)
	if inner != outer {
		t.Fatal("observe wrapped an observed writer again")
	}
	inner.WriteHeader(http.StatusAccepted)
	_, _ = inner.Write([]byte("abc"))
	testutil.Check(t, "status", http.StatusAccepted, outer.finalStatus())
	testutil.Check(t, "bytes", int64(3), outer.bytes)
	if outer.Unwrap() != http.ResponseWriter(rec) {
		t.Error("Unwrap does not return the wrapped writer")
	}
	testutil.Check(t, "status of an empty reply", http.StatusOK, observe(httptest.NewRecorder()).finalStatus())
}
