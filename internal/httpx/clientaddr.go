package httpx

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies is the set of networks whose X-Forwarded-For this node believes:
// the TLS-terminating proxies or load balancers in front of it. The zero
// value trusts no one, so a client can never choose its own address.
type Proxies struct {
	nets []netip.Prefix
}

// ParseProxies parses a comma-separated list of CIDRs ("10.0.0.0/8") or
// single addresses ("192.0.2.10", taken as /32 or /128).
func ParseProxies(list string) (Proxies, error) {
	var p Proxies
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return Proxies{}, fmt.Errorf("%q is not a CIDR like 10.0.0.0/8 or an IP address", s)
			}
			a = a.Unmap()
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		p.nets = append(p.nets, pfx.Masked())
	}
	return p, nil
}

// Trusts reports whether a is one of the trusted proxies.
func (p Proxies) Trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, n := range p.nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP is the address of the client that sent r. It is the TCP peer,
// unless the peer is a trusted proxy: then X-Forwarded-For is read from the
// right, skipping trusted proxies, and the first hop that is not one is the
// client. Hops left of it were written by the client itself and are never
// believed. A malformed hop stops the walk at the proxy that passed it on.
func (p Proxies) ClientIP(r *http.Request) netip.Addr {
	ip := peerIP(r.RemoteAddr)
	if !ip.IsValid() || !p.Trusts(ip) {
		return ip
	}
	hops := forwardedHops(r.Header.Values("X-Forwarded-For"))
	for i := len(hops) - 1; i >= 0; i-- {
		hop := parseHop(hops[i])
		if !hop.IsValid() {
			return ip
		}
		ip = hop
		if !p.Trusts(hop) {
			return hop
		}
	}
	return ip
}

// forwardedHops flattens every X-Forwarded-For header, in order, into hops.
func forwardedHops(values []string) []string {
	var hops []string
	for _, v := range values {
		for _, h := range strings.Split(v, ",") {
			hops = append(hops, strings.TrimSpace(h))
		}
	}
	return hops
}

// parseHop reads one X-Forwarded-For entry: an IP, or an IP with a port
// ("192.0.2.7:5555", "[2001:db8::1]:443"), which some balancers write.
func parseHop(s string) netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap()
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// peerIP parses a RemoteAddr ("ip:port"); the zero Addr if it is not one.
func peerIP(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

type clientIPKey struct{}

// WithClientIP returns r carrying ip as its client address, for ClientAddr.
// The node's edge middleware calls it once per request.
func WithClientIP(r *http.Request, ip netip.Addr) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), clientIPKey{}, ip))
}

// ClientAddr is the key every per-address limit counts r against: the
// client IP the edge stored (WithClientIP), or the TCP peer when none was
// stored. An IPv6 client counts as its /64, since one client is routinely
// given a whole /64 and could otherwise step round any limit.
func ClientAddr(r *http.Request) string {
	ip, ok := r.Context().Value(clientIPKey{}).(netip.Addr)
	if !ok {
		ip = peerIP(r.RemoteAddr)
	}
	return AddrKey(ip, r.RemoteAddr)
}

// AddrKey is ClientAddr's key for ip; fallback names an address that did
// not parse, so it still gets a bucket of its own.
func AddrKey(ip netip.Addr, fallback string) string {
	if !ip.IsValid() {
		return fallback
	}
	if ip.Is6() {
		p, _ := ip.WithZone("").Prefix(64)
		return p.String()
	}
	return ip.String()
}
