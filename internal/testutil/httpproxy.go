package testutil

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
)

// HTTPProxy is a loopback HTTP reverse proxy for REST fault injection: it
// forwards every request to its target except the one a pending HTTPFault
// matches, which it answers itself. It stops when the test ends.
type HTTPProxy struct {
	srv   *httptest.Server
	rp    *httputil.ReverseProxy
	mu    sync.Mutex
	fault *HTTPFault
	hits  int
}

// HTTPFault is an answer the proxy gives once, to the first request
// Match accepts.
type HTTPFault struct {
	Match  func(*http.Request) bool
	Status int
	Header http.Header
	Body   []byte
	// Forward sends the request on to the target first and discards its
	// answer: the request took effect but its answer was lost. Without it
	// the target never sees the request.
	Forward bool
}

// StartHTTPProxy starts a proxy to target (host:port) on a free loopback
// port.
func StartHTTPProxy(t testing.TB, target string) *HTTPProxy {
	t.Helper()
	// Its own transport, so its idle connections to target end with it.
	tr := &http.Transport{}
	p := &HTTPProxy{rp: httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})}
	p.rp.Transport = tr
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(func() {
		p.srv.Close()
		tr.CloseIdleConnections()
	})
	return p
}

// Port is the proxy's port on 127.0.0.1.
func (p *HTTPProxy) Port() int { return p.srv.Listener.Addr().(*net.TCPAddr).Port }

// FailNext arms f, replacing a fault not yet used.
func (p *HTTPProxy) FailNext(f HTTPFault) {
	p.mu.Lock()
	p.fault = &f
	p.mu.Unlock()
}

// Faulted is how many requests were answered by a fault.
func (p *HTTPProxy) Faulted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hits
}

func (p *HTTPProxy) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	f := p.fault
	if f != nil && (f.Match == nil || f.Match(r)) {
		p.fault = nil
		p.hits++
	} else {
		f = nil
	}
	p.mu.Unlock()
	if f == nil {
		p.rp.ServeHTTP(w, r)
		return
	}
	if f.Forward {
		p.rp.ServeHTTP(httptest.NewRecorder(), r)
	}
	for k, vs := range f.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(f.Status)
	_, _ = w.Write(f.Body)
}
