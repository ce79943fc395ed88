package server

import (
	"net"
	"net/netip"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/handoff-health/handoff/internal/httpx"
)

// fdReserve is the share of the descriptor limit kept for what is not a
// client connection: the Redis pool (go-redis opens up to 10 per CPU plus
// Pub/Sub), S3 and ALEX connections, image files being written, logs.
const fdReserve = 128

// connCaps bounds the connections the node holds: all together, and per
// TCP peer address. A connection over either cap is closed as soon as it is
// accepted, without an answer. A 503 would mean reading the request first,
// which is the time and descriptor a flood is trying to take; closing frees
// both at once, and browsers and the realtime clients retry with backoff.
//
// The per-address cap can only see the TCP peer, as the request (and its
// X-Forwarded-For) has not been read yet. Behind a proxy every client is
// the proxy, so trusted proxies are exempt from it (they still count
// towards the total); the proxy limits its own clients, and the
// unauthenticated-socket and claim limits, which do read X-Forwarded-For,
// still apply per client.
type connCaps struct {
	max, perAddr int // 0: no cap
	proxies      httpx.Proxies
	refused      *prometheus.CounterVec

	mu     sync.Mutex
	total  int
	byAddr map[string]int
}

func newConnCaps(max, perAddr int, proxies httpx.Proxies, reg prometheus.Registerer) *connCaps {
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "handoff_connections_refused_total",
		Help: "Connections closed at accept because a connection cap was reached, by cap (total, per_addr).",
	}, []string{"cap"})
	reg.MustRegister(refused)
	return &connCaps{max: max, perAddr: perAddr, proxies: proxies, refused: refused, byAddr: make(map[string]int)}
}

// capMaxConns lowers max so that accepted connections cannot exhaust the
// process's descriptors: with a 1024 limit, a flood is refused by the cap
// while accept still works, instead of accept failing with "too many open
// files" for everyone. It reports whether it lowered max.
func capMaxConns(max, limit int) (int, bool) {
	room := limit - fdReserve
	if limit <= 2*fdReserve {
		room = limit / 2
	}
	if room < 1 {
		room = 1
	}
	if max == 0 || max > room {
		return room, true
	}
	return max, false
}

// listen wraps l so every accepted connection is counted until it closes.
func (c *connCaps) listen(l net.Listener) net.Listener {
	return &cappedListener{Listener: l, caps: c}
}

// acquire counts a connection from peer, or names the cap it would break.
func (c *connCaps) acquire(peer net.Addr) (release func(), refusedBy string) {
	ip := netip.Addr{}
	if ap, err := netip.ParseAddrPort(peer.String()); err == nil {
		ip = ap.Addr().Unmap()
	}
	key := ""
	if c.perAddr > 0 && !c.proxies.Trusts(ip) {
		key = httpx.AddrKey(ip, peer.String())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.max > 0 && c.total >= c.max:
		return nil, "total"
	case key != "" && c.byAddr[key] >= c.perAddr:
		return nil, "per_addr"
	}
	c.total++
	if key != "" {
		c.byAddr[key]++
	}
	return sync.OnceFunc(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.total--
		if key != "" {
			if c.byAddr[key]--; c.byAddr[key] <= 0 {
				delete(c.byAddr, key)
			}
		}
	}), ""
}

type cappedListener struct {
	net.Listener
	caps *connCaps
}

// Accept returns the next connection within the caps; one over a cap is
// closed here and never reaches net/http.
func (l *cappedListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		release, refusedBy := l.caps.acquire(conn.RemoteAddr())
		if refusedBy == "" {
			return &cappedConn{Conn: conn, release: release}, nil
		}
		l.caps.refused.WithLabelValues(refusedBy).Inc()
		_ = conn.Close()
	}
}

// cappedConn gives its place back when closed, however often Close is
// called (net/http and a hijacking WebSocket library may both call it).
type cappedConn struct {
	net.Conn
	release func()
}

func (c *cappedConn) Close() error {
	c.release()
	return c.Conn.Close()
}
