//go:build integration

package chaos

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// balancer is a round-robin TCP balancer on loopback, the load balancer a
// deployment puts in front of its nodes. Each accepted connection goes to
// the next node; a node that refuses the dial (it is dead) is skipped.
// Working at TCP level, it carries HTTP and WebSocket alike, and a node's
// death resets the connections it held, as a real one does.
type balancer struct {
	l        net.Listener
	backends []string

	mu     sync.Mutex
	next   int
	conns  map[net.Conn]struct{}
	active map[string]int // backend → client connections open through it
}

func startBalancer(t *testing.T) *balancer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("balancer: %v", err)
	}
	b := &balancer{l: l, conns: map[net.Conn]struct{}{}, active: map[string]int{}}
	t.Cleanup(b.close)
	return b
}

// serve starts accepting once the backends are known.
func (b *balancer) serve(backends ...string) {
	b.backends = backends
	go func() {
		for {
			c, err := b.l.Accept()
			if err != nil {
				return
			}
			go b.handle(c)
		}
	}()
}

func (b *balancer) addr() string { return b.l.Addr().String() }

func (b *balancer) pick() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	addr := b.backends[b.next%len(b.backends)]
	b.next++
	return addr
}

func (b *balancer) track(c net.Conn, on bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conns == nil {
		return false // closed
	}
	if on {
		b.conns[c] = struct{}{}
	} else {
		delete(b.conns, c)
	}
	return true
}

func (b *balancer) handle(c net.Conn) {
	defer c.Close()
	var up net.Conn
	var backend string
	for range b.backends {
		var err error
		backend = b.pick()
		if up, err = net.DialTimeout("tcp", backend, time.Second); err == nil {
			break
		}
	}
	if up == nil {
		return // no node alive: the client sees its connection closed
	}
	defer up.Close()
	if !b.track(c, true) || !b.track(up, true) {
		return
	}
	defer b.track(c, false)
	defer b.track(up, false)
	b.count(backend, 1)
	defer b.count(backend, -1)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done // either side ended: end both, as a proxy that lost a peer does
	c.Close()
	up.Close()
	<-done
}

func (b *balancer) count(backend string, d int) {
	b.mu.Lock()
	b.active[backend] += d
	b.mu.Unlock()
}

// open reports how many client connections are open through backend.
func (b *balancer) open(backend string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.active[backend]
}

func (b *balancer) close() {
	b.l.Close()
	b.mu.Lock()
	conns := b.conns
	b.conns = nil
	b.mu.Unlock()
	for c := range conns {
		c.Close()
	}
}
