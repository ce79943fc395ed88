package server_test

// Tests of the hardened edge (issue 13, items 5 and 6), each built from the
// review's reproduction: slow bodies, connection floods, and clients behind
// a trusted proxy.

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/handoff-health/handoff/internal/testutil"
)

// generous bounds a wait that must end; it is a failure bound, not a speed
// assertion.
const generous = 30 * time.Second

// rawConn opens a TCP connection to n from the local address from
// ("127.0.0.2" is a second client on the same machine).
func rawConn(t *testing.T, n *node, from string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", strings.TrimPrefix(n.url, "http://"))
	if err != nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// clientFrom is an HTTP client whose connections come from the local
// address from.
func clientFrom(t *testing.T, from string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 10 * time.Second}
	t.Cleanup(hc.CloseIdleConnections)
	return hc
}

func getStatus(t *testing.T, hc *http.Client, url string, header http.Header) int {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", req.URL.Path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// readUntilClosed reads c until the server closes it and returns what it
// sent; it fails if the connection is still open after the generous bound.
func readUntilClosed(t *testing.T, c net.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(generous))
	b, err := io.ReadAll(c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection still open after %v; got %q", generous, b)
	}
	return string(b)
}

// TestSlowBodiesAreCut: the reproduction sent "Content-Length: 100" and no
// body on ten connections and had them held for 250 s. Now each gets its
// answer and is closed once the body deadline passes, whether the route
// refused before reading (401) or waited for the body (408), and the node
// serves others meanwhile.
func TestSlowBodiesAreCut(t *testing.T) {
	t.Parallel()
	cfg := devConfig(t)
	cfg.BodyTimeout = time.Second
	n := startNode(t, cfg)
	jwt := n.devToken()
	head := func(auth string) string {
		return "POST /api/medtech/session/tokens HTTP/1.1\r\nHost: handoff\r\nContent-Type: application/json\r\n" +
			auth + "Content-Length: 100\r\n\r\n"
	}
	var conns []net.Conn
	for i := range 10 {
		c := rawConn(t, n, "127.0.0.1")
		auth := ""
		if i%2 == 1 {
			auth = "Authorization: Bearer " + jwt + "\r\n"
		}
		if _, err := io.WriteString(c, head(auth)); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	testutil.Check(t, "/healthz while ten bodies are missing", http.StatusOK, getStatus(t, clientFrom(t, "127.0.0.2"), n.url+"/healthz", nil))
	for i, c := range conns {
		got := readUntilClosed(t, c)
		want := "HTTP/1.1 401 "
		if i%2 == 1 {
			want = "HTTP/1.1 408 "
		}
		if !strings.HasPrefix(got, want) {
			t.Errorf("connection %d: answered %q, want %q and then closed", i, firstLine(got), want)
		}
		if i%2 == 1 && !strings.Contains(got, `"body_timeout"`) {
			t.Errorf("connection %d: 408 without body_timeout: %q", i, got)
		}
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// TestConnectionFloodPerAddress: the reproduction flooded a node until
// accept failed and /healthz took 2.4 s. Past --max-conns-per-addr the
// flooding address's connections are closed at accept, while another
// address gets /healthz, and a freed place can be used again.
func TestConnectionFloodPerAddress(t *testing.T) {
	t.Parallel()
	cfg := devConfig(t)
	cfg.MaxConnsPerAddr = 20
	cfg.ReadHeaderTimeout = time.Minute // the held connections must not time out mid-test
	n := startNode(t, cfg)
	var held []net.Conn
	for range 20 {
		held = append(held, rawConn(t, n, "127.0.0.1"))
	}
	closed := 0
	for range 20 {
		c := rawConn(t, n, "127.0.0.1")
		_ = c.SetReadDeadline(time.Now().Add(generous))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			closed++ // EOF or reset: refused at accept
		}
	}
	testutil.Check(t, "flood connections past the cap that were closed", 20, closed)

	other := clientFrom(t, "127.0.0.2")
	testutil.Check(t, "/healthz from 127.0.0.2 during the flood", http.StatusOK, getStatus(t, other, n.url+"/healthz", nil))
	if !strings.Contains(metricsFrom(t, other, n), `handoff_connections_refused_total{cap="per_addr"} 20`) {
		t.Error(`handoff_connections_refused_total{cap="per_addr"} is not 20`)
	}

	_ = held[0].Close()
	testutil.Eventually(t, "a place freed by a closed connection is given back", func() bool {
		resp, err := clientFrom(t, "127.0.0.1").Get(n.url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func metricsFrom(t *testing.T, hc *http.Client, n *node) string {
	t.Helper()
	resp, err := hc.Get(n.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestConnectionCapTotal: past --max-conns every address is refused; a
// trusted proxy is exempt from the per-address cap (all its clients share
// its address) but not from the total.
func TestConnectionCapTotal(t *testing.T) {
	t.Parallel()
	cfg := devConfig(t)
	cfg.MaxConns, cfg.MaxConnsPerAddr = 6, 2
	cfg.TrustedProxies = "127.0.0.1/32"
	cfg.ReadHeaderTimeout = time.Minute
	n := startNode(t, cfg)
	for range 6 {
		c := rawConn(t, n, "127.0.0.1")
		// Answered, so the connection was accepted within the caps.
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: handoff\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(generous))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
			t.Fatalf("connection from the trusted proxy within the total: %q %v", line, err)
		}
	}
	c := rawConn(t, n, "127.0.0.2")
	_ = c.SetReadDeadline(time.Now().Add(generous))
	if _, err := c.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("a connection past --max-conns was held open")
	}
}

// TestClaimsBehindTrustedProxy is the review's reproduction: behind the
// reverse proxy every phone shares its address, and five junk claims from
// anyone blocked a real phone with 429. Now the limiter keys on the
// X-Forwarded-For client and counts only failures: phone B, and a phone on
// junk client A's own address, claim their valid QR codes; A's junk past
// the limit gets 429 and B's own junk does not.
func TestClaimsBehindTrustedProxy(t *testing.T) {
	t.Parallel()
	cfg := devConfig(t)
	cfg.TrustedProxies = "127.0.0.1/32"
	cfg.ClaimsPerMinute = 10 // burst 5 (capture.DefaultClaimBurst)
	n := startNode(t, cfg)
	jwt := n.devToken()
	forB, forA := n.createSession(jwt, "enc-proxy-b"), n.createSession(jwt, "enc-proxy-a")
	hc := clientFrom(t, "127.0.0.1") // the proxy
	claim := func(client, token string) int {
		return getStatus(t, hc, n.url+"/api/medtech/session/tokens/"+token, http.Header{"X-Forwarded-For": {client}})
	}
	const a, b = "198.51.100.7", "203.0.113.9"
	junk := "AAAAAAAAAAAAAAAAAAAAAA" // well-formed, unknown
	for i := range 5 {
		if st := claim(a, junk); st != http.StatusNotFound {
			t.Fatalf("junk claim %d from A: %d", i, st)
		}
	}
	testutil.Check(t, "phone B's valid claim after A's junk", http.StatusOK, claim(b, forB.Token))
	testutil.Check(t, "a valid claim from A's own address", http.StatusOK, claim(a, forA.Token))
	testutil.Check(t, "A's junk past the limit", http.StatusTooManyRequests, claim(a, junk))
	testutil.Check(t, "B's own junk", http.StatusNotFound, claim(b, junk))
	testutil.Check(t, "A spoofing a left hop to step round its limit", http.StatusTooManyRequests, claim("192.0.2.1, "+a, junk))

	// Without the proxy trusted, X-Forwarded-For is the client's own claim
	// and is ignored: every request counts against the TCP peer.
	plain := startNode(t, devConfig(t))
	for range 5 {
		getStatus(t, hc, plain.url+"/api/medtech/session/tokens/"+junk, http.Header{"X-Forwarded-For": {a}})
	}
	testutil.Check(t, "untrusted peer claiming a fresh X-Forwarded-For", http.StatusTooManyRequests,
		getStatus(t, hc, plain.url+"/api/medtech/session/tokens/"+junk, http.Header{"X-Forwarded-For": {b}}))
}

// TestUnauthenticatedSocketsPerClientBehindProxy: the cap on sockets that
// have not authenticated counts the X-Forwarded-For client, not the proxy.
func TestUnauthenticatedSocketsPerClientBehindProxy(t *testing.T) {
	t.Parallel()
	cfg := devConfig(t)
	cfg.TrustedProxies = "127.0.0.1/32"
	cfg.MaxUnauthSocketsPerAddr = 2
	n := startNode(t, cfg)
	wsURL := "ws" + strings.TrimPrefix(n.url, "http") + "/realtime"
	dial := func(client string) int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ws, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"X-Forwarded-For": {client}}})
		if err == nil {
			t.Cleanup(func() { _ = ws.CloseNow() })
		}
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		return resp.StatusCode
	}
	for range 2 {
		testutil.Check(t, "a silent socket within the cap", http.StatusSwitchingProtocols, dial("198.51.100.7"))
	}
	testutil.Check(t, "a third silent socket from the same client", http.StatusTooManyRequests, dial("198.51.100.7"))
	testutil.Check(t, "another client behind the same proxy", http.StatusSwitchingProtocols, dial("203.0.113.9"))
}
