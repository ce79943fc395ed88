package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/handoff-health/handoff/internal/testutil"
)

// TestAblyCORS: browser ably-js on another origin can call the Ably REST
// routes with credentials:'include' (the origin echoed, never "*"), and can
// read the headers it needs; the capture API and pages get no CORS at all.
func TestAblyCORS(t *testing.T) {
	t.Parallel()
	n := startNode(t, devConfig(t))
	const origin = "https://pms.example"

	req, _ := http.NewRequest("OPTIONS", n.url+"/channels/session%3Aabc/messages", nil)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,x-ably-version,ably-agent")
	r := send(t, req)
	testutil.Check(t, "preflight status", http.StatusNoContent, r.status)
	testutil.Check(t, "preflight origin", origin, r.header.Get("Access-Control-Allow-Origin"))
	testutil.Check(t, "preflight credentials", "true", r.header.Get("Access-Control-Allow-Credentials"))
	allowed := strings.ToLower(r.header.Get("Access-Control-Allow-Headers"))
	for _, h := range []string{"authorization", "content-type", "accept", "x-ably-version", "ably-agent", "x-ably-clientid"} {
		if !strings.Contains(allowed, h) {
			t.Errorf("preflight Allow-Headers %q lacks %s", allowed, h)
		}
	}
	if m := r.header.Get("Access-Control-Allow-Methods"); !strings.Contains(m, "POST") || !strings.Contains(m, "GET") {
		t.Errorf("preflight Allow-Methods %q", m)
	}

	// An error reply: the browser must be able to read X-Ably-Errorcode.
	req, _ = http.NewRequest("GET", n.url+"/channels/session%3Aabc/messages?envelope=json", nil)
	req.Header.Set("Origin", origin)
	r = send(t, req)
	testutil.Check(t, "error reply origin", origin, r.header.Get("Access-Control-Allow-Origin"))
	testutil.Check(t, "error reply credentials", "true", r.header.Get("Access-Control-Allow-Credentials"))
	exposed := strings.ToLower(r.header.Get("Access-Control-Expose-Headers"))
	for _, h := range []string{"link", "x-ably-errorcode", "x-ably-errormessage"} {
		if !strings.Contains(exposed, h) {
			t.Errorf("Expose-Headers %q lacks %s", exposed, h)
		}
	}
	if r.header.Get("X-Ably-Errorcode") == "" {
		t.Errorf("an unauthenticated history call carries no X-Ably-Errorcode (status %d)", r.status)
	}
	if h := r.header.Get("WWW-Authenticate"); strings.HasPrefix(h, "Basic") {
		t.Errorf("a 401 to a page offers %q: a Basic challenge makes the browser prompt and stalls ably-js", h)
	}
	if v := r.header.Values("Vary"); !strings.Contains(strings.Join(v, ","), "Origin") {
		t.Errorf("Vary %v lacks Origin", v)
	}

	req, _ = http.NewRequest("GET", n.url+"/time", nil)
	req.Header.Set("Origin", origin)
	r = send(t, req)
	testutil.Check(t, "time status", http.StatusOK, r.status)
	testutil.Check(t, "time origin", origin, r.header.Get("Access-Control-Allow-Origin"))

	// Every Ably REST route publish.Register mounts answers a preflight
	// (ably-js's rest.stats() and batch publish included).
	for _, rt := range []struct{ method, path string }{
		{"POST", "/channels/session%3Aabc/messages"}, {"GET", "/channels/session%3Aabc/history"},
		{"GET", "/channels/session%3Aabc/presence"}, {"POST", "/messages"}, {"GET", "/time"},
		{"GET", "/stats"}, {"POST", "/keys/bench/requestToken"},
	} {
		req, _ = http.NewRequest("OPTIONS", n.url+rt.path, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", rt.method)
		r = send(t, req)
		testutil.Check(t, rt.path+" preflight status", http.StatusNoContent, r.status)
		testutil.Check(t, rt.path+" preflight origin", origin, r.header.Get("Access-Control-Allow-Origin"))
	}

	for _, path := range []string{"/api/medtech/session/tokens", "/desktop", "/healthz"} {
		req, _ = http.NewRequest("OPTIONS", n.url+path, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		r = send(t, req)
		if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("%s: Access-Control-Allow-Origin %q, want none outside the Ably routes", path, got)
		}
	}
}
