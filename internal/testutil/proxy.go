package testutil

import (
	"net"
	"sync"
	"testing"
)

// Proxy is a loopback TCP proxy for fault injection. The test can cut its
// connections, to drop a client's transport without the client's
// knowledge (a lost Wi-Fi link); stall them, so both ends keep an open
// TCP connection on which nothing arrives (a dead NAT entry, a frozen
// middlebox: only heartbeats can tell); and move its target (a load
// balancer sending the reconnect to another node). It stops when the test
// ends.
type Proxy struct {
	ln     net.Listener
	mu     sync.Mutex
	target string
	links  []*link
	// stalled, while non-nil, holds every pump of every connection, old
	// and new; Unstall closes it.
	stalled chan struct{}
	wg      sync.WaitGroup
}

// link is one proxied connection: the client's side, the target's, and
// dead, closed when Cut closes them (it frees a pump held by a stall).
type link struct {
	in, out net.Conn
	dead    chan struct{}
}

// StartProxy starts a proxy to target (host:port) on a free loopback port.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.Cut()
		p.Unstall()
		p.wg.Wait()
	})
	return p
}

// Port is the proxy's port on 127.0.0.1.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target := p.target
		p.mu.Unlock()
		out, err := net.Dial("tcp", target)
		if err != nil {
			_ = in.Close()
			continue
		}
		l := &link{in: in, out: out, dead: make(chan struct{})}
		p.mu.Lock()
		p.links = append(p.links, l)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pump(l, out, in)
		go p.pump(l, in, out)
	}
}

// pump copies src to dst until either fails. Each chunk read waits out a
// stall before it is written, and the next read waits for the write: so
// a stalled connection holds one chunk, and TCP's flow control stops the
// sender once the socket buffers fill, as on a real dead path. An end
// closing is passed on only after the stall too: a dead path carries no
// FIN either.
func (p *Proxy) pump(l *link, dst, src net.Conn) {
	defer p.wg.Done()
	defer func() { _ = dst.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if !p.waitStall(l) {
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// waitStall blocks while the proxy is stalled; false if the link was cut
// meanwhile.
func (p *Proxy) waitStall(l *link) bool {
	p.mu.Lock()
	ch := p.stalled
	p.mu.Unlock()
	if ch == nil {
		return true
	}
	select {
	case <-ch:
		return true
	case <-l.dead:
		return false
	}
}

// Retarget sends new connections to target.
func (p *Proxy) Retarget(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

// Cut closes every connection open through the proxy.
func (p *Proxy) Cut() {
	p.mu.Lock()
	for _, l := range p.links {
		_ = l.in.Close()
		_ = l.out.Close()
		close(l.dead)
	}
	p.links = nil
	p.mu.Unlock()
}

// Stall stops forwarding, both ways, on every connection, open or opened
// until Unstall; the TCP connections stay open and nothing is lost: what
// was sent meanwhile is delivered after Unstall, unless an end gave up.
func (p *Proxy) Stall() {
	p.mu.Lock()
	if p.stalled == nil {
		p.stalled = make(chan struct{})
	}
	p.mu.Unlock()
}

// Unstall resumes forwarding.
func (p *Proxy) Unstall() {
	p.mu.Lock()
	if p.stalled != nil {
		close(p.stalled)
		p.stalled = nil
	}
	p.mu.Unlock()
}
