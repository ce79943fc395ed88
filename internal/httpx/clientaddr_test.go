package httpx_test

import (
	"net/http/httptest"
	"testing"

	"github.com/handoff-health/handoff/internal/httpx"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestClientAddrKey: with nothing stored by the edge, the key is the TCP
// peer, and an IPv6 client counts as its /64.
func TestClientAddrKey(t *testing.T) {
	t.Parallel()
	for remote, want := range map[string]string{
		"192.0.2.7:5555":             "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:443": "2001:db8:1:2::/64",
		"[::ffff:192.0.2.7]:80":      "192.0.2.7",
		"not-an-address":             "not-an-address",
		"[fe80::1%eth0]:80":          "fe80::/64",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		testutil.Equal(t, "ClientAddr("+remote+")", want, httpx.ClientAddr(r))
	}
}

// TestClientIP: X-Forwarded-For is believed only from a trusted peer, and
// then only up to the rightmost hop that is not a trusted proxy; what the
// client wrote to the left of that is ignored.
func TestClientIP(t *testing.T) {
	t.Parallel()
	proxies, err := httpx.ParseProxies("10.0.0.0/8, 192.0.2.10, 2001:db8:ff::/48")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"untrusted peer: header ignored", "198.51.100.9:1000", []string{"203.0.113.5"}, "198.51.100.9"},
		{"trusted peer, no header", "10.1.2.3:1000", nil, "10.1.2.3"},
		{"one proxy", "10.1.2.3:1000", []string{"203.0.113.5"}, "203.0.113.5"},
		{"client-written hops to the left are ignored", "10.1.2.3:1000", []string{"1.2.3.4, 203.0.113.5"}, "203.0.113.5"},
		{"two trusted proxies", "10.1.2.3:1000", []string{"6.6.6.6, 203.0.113.5, 192.0.2.10"}, "203.0.113.5"},
		{"several header lines, in order", "10.1.2.3:1000", []string{"6.6.6.6", "203.0.113.5, 10.9.9.9"}, "203.0.113.5"},
		{"hop with a port", "10.1.2.3:1000", []string{"203.0.113.5:4711"}, "203.0.113.5"},
		{"IPv6 hop", "[2001:db8:ff::1]:443", []string{"[2001:db8:1:2::9]:443"}, "2001:db8:1:2::9"},
		{"malformed hop: the proxy that passed it on", "10.1.2.3:1000", []string{"203.0.113.5, junk"}, "10.1.2.3"},
		{"all hops trusted: the leftmost", "10.1.2.3:1000", []string{"10.7.7.7, 10.8.8.8"}, "10.7.7.7"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		for _, v := range c.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		testutil.Equal(t, c.name, c.want, proxies.ClientIP(r).String())
	}
	var none httpx.Proxies
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.1.2.3:1000"
	r.Header.Set("X-Forwarded-For", "203.0.113.5")
	testutil.Equal(t, "no trusted proxies: the peer", "10.1.2.3", none.ClientIP(r).String())
	testutil.Equal(t, "ClientAddr after WithClientIP", "203.0.113.5", httpx.ClientAddr(httpx.WithClientIP(r, proxies.ClientIP(r))))
}

func TestParseProxiesRefusesJunk(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"10.0.0.0/33", "proxy.example", "10.0.0.0/8,nope"} {
		if _, err := httpx.ParseProxies(bad); err == nil {
			t.Errorf("ParseProxies(%q) accepted it", bad)
		}
	}
	if _, err := httpx.ParseProxies(""); err != nil {
		t.Errorf("empty list: %v", err)
	}
}
