package realtime

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/handoff-health/handoff/internal/testutil"
	"github.com/handoff-health/handoff/protocol"
)

// TestUnauthenticatedSocketsCappedPerAddress (issue 13, item 5): sockets
// that have not authenticated count against their client address; one more
// is refused with 429 before the upgrade, while another address still
// connects, and authenticating a socket gives its place back.
func TestUnauthenticatedSocketsCappedPerAddress(t *testing.T) {
	t.Parallel()
	v := newVerifier(t)
	n := startNode(t, memoryHub(t), v, Config{MaxUnauthPerAddr: 3, AuthTimeout: time.Minute})
	silent := make([]*raw, 3)
	for i := range silent {
		silent[i] = dialRaw(t, n.url, nil) // no token: waits for an auth frame
	}
	testutil.Check(t, "status of a 4th unauthenticated socket from 127.0.0.1", http.StatusTooManyRequests, dialStatus(t, n.url, "127.0.0.1"))
	testutil.Check(t, "status of a 4th socket even with a token", http.StatusTooManyRequests,
		dialStatusHeader(t, n.url, "127.0.0.1", bearer(issue(t, v, "f", "p", time.Hour))))
	testutil.Check(t, "status from another address, 127.0.0.2", http.StatusSwitchingProtocols, dialStatus(t, n.url, "127.0.0.2"))

	silent[0].send(map[string]string{"type": string(protocol.OpAuth), "token": issue(t, v, "f", "p", time.Hour)})
	if f := silent[0].next(); f.Type != protocol.FrameConnected {
		t.Fatalf("after its auth frame: %q, want connected", f.Type)
	}
	testutil.Check(t, "status once one socket authenticated", http.StatusSwitchingProtocols, dialStatus(t, n.url, "127.0.0.1"))
}

func dialStatus(t *testing.T, url, from string) int {
	return dialStatusHeader(t, url, from, nil)
}

// dialStatusHeader opens a socket from the local address from and returns
// the status of the upgrade; a socket that opened is closed by the test's
// end.
func dialStatusHeader(t *testing.T, url, from string, h http.Header) int {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	t.Cleanup(hc.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: hc, HTTPHeader: h})
	if err == nil {
		t.Cleanup(func() { _ = ws.CloseNow() })
	}
	if resp == nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	return resp.StatusCode
}
