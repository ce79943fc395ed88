//go:build integration

package webui_test

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// flakyProxy forwards TCP to target and can cut and refuse WebSocket
// connections (the realtime socket) while plain HTTP passes, like a
// network path that drops long-lived connections.
type flakyProxy struct {
	l      net.Listener
	target string

	mu      sync.Mutex
	blocked bool
	// silent WebSockets forward nothing and close nothing: a network
	// that drops packets without a word (see silence).
	silent bool
	ws     map[net.Conn]net.Conn
}

func startProxy(t testing.TB, target string) *flakyProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err, "proxy listen")
	p := &flakyProxy{l: l, target: target, ws: map[net.Conn]net.Conn{}}
	t.Cleanup(func() { l.Close(); p.dropWebSockets() })
	go p.serve()
	return p
}

func (p *flakyProxy) addr() string { return p.l.Addr().String() }

func (p *flakyProxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *flakyProxy) handle(c net.Conn) {
	head := make([]byte, 4096)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(head)
	_ = c.SetReadDeadline(time.Time{})
	if err != nil {
		c.Close()
		return
	}
	head = head[:n]
	isWS := bytes.Contains(bytes.ToLower(head), []byte("upgrade: websocket"))
	p.mu.Lock()
	if isWS && p.blocked {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.mu.Unlock()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	if isWS {
		p.mu.Lock()
		p.ws[c] = up
		p.mu.Unlock()
	}
	if _, err := up.Write(head); err != nil {
		c.Close()
		up.Close()
		return
	}
	go func() { _, _ = io.Copy(p.unlessSilent(up, isWS), c); up.Close() }()
	_, _ = io.Copy(p.unlessSilent(c, isWS), up)
	c.Close()
	p.mu.Lock()
	delete(p.ws, c)
	p.mu.Unlock()
}

// silence makes every WebSocket, open or new, forward nothing without
// closing, until restore: the silent drop of a dead Wi-Fi or NAT.
func (p *flakyProxy) silence() {
	p.mu.Lock()
	p.silent = true
	p.mu.Unlock()
}

// unlessSilent is w for a connection that is not a WebSocket; for a
// WebSocket, bytes written while the proxy is silent are dropped.
func (p *flakyProxy) unlessSilent(w io.Writer, isWS bool) io.Writer {
	if !isWS {
		return w
	}
	return writerFunc(func(b []byte) (int, error) {
		p.mu.Lock()
		silent := p.silent
		p.mu.Unlock()
		if silent {
			return len(b), nil
		}
		return w.Write(b)
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// cut drops every open WebSocket and refuses new ones until restore.
func (p *flakyProxy) cut() int {
	p.mu.Lock()
	p.blocked = true
	p.mu.Unlock()
	return p.dropWebSockets()
}

func (p *flakyProxy) restore() {
	p.mu.Lock()
	p.blocked, p.silent = false, false
	p.mu.Unlock()
}

func (p *flakyProxy) dropWebSockets() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.ws)
	for c, up := range p.ws {
		c.Close()
		up.Close()
		delete(p.ws, c)
	}
	return n
}
