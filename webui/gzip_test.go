package webui

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestGzip: assets and pages are gzipped for clients that accept it, with
// Vary: Accept-Encoding, a distinct ETag for the gzip variant, and
// revalidation against the variant the client would get.
func TestGzip(t *testing.T) {
	t.Parallel()
	h := Handler(Options{})
	for _, target := range []string{"/static/desktop.js", "/static/base.css", "/desktop", "/m/sometoken"} {
		plain := serve(t, h, "GET", target, nil)
		plainBody := body(t, plain)
		gz := serve(t, h, "GET", target, map[string]string{"Accept-Encoding": "gzip, deflate, br"})
		if got := gz.Header.Get("Content-Encoding"); got != "gzip" {
			t.Fatalf("%s: Content-Encoding = %q, want gzip", target, got)
		}
		for _, res := range []*http.Response{plain, gz} {
			if !strings.Contains(res.Header.Get("Vary"), "Accept-Encoding") {
				t.Errorf("%s: Vary = %q", target, res.Header.Get("Vary"))
			}
		}
		if plain.Header.Get("Content-Encoding") != "" {
			t.Errorf("%s: gzip sent to a client that did not ask", target)
		}
		zr, err := gzip.NewReader(gz.Body)
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		inflated, _ := io.ReadAll(zr)
		if !bytes.Equal(inflated, []byte(plainBody)) {
			t.Errorf("%s: the gzip variant inflates to something else", target)
		}
		if strings.HasPrefix(target, "/static/") {
			pe, ge := plain.Header.Get("ETag"), gz.Header.Get("ETag")
			if pe == ge || ge != strings.TrimSuffix(pe, `"`)+`-gz"` {
				t.Errorf("%s: ETags %s and %s, want a distinct -gz variant", target, pe, ge)
			}
			// If-None-Match is compared with the variant this client gets.
			cases := []struct {
				ae, inm string
				want    int
			}{
				{"gzip", ge, 304}, {"", pe, 304}, {"gzip", pe, 200}, {"", ge, 200},
			}
			for _, c := range cases {
				res := serve(t, h, "GET", target, map[string]string{"Accept-Encoding": c.ae, "If-None-Match": c.inm})
				if res.StatusCode != c.want {
					t.Errorf("%s: Accept-Encoding %q, If-None-Match %s: %d, want %d", target, c.ae, c.inm, res.StatusCode, c.want)
				}
			}
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	t.Parallel()
	for header, want := range map[string]bool{
		"": false, "gzip": true, "GZIP": true, "deflate, gzip;q=0.5": true, "gzip;q=0": false,
		"br": false, "*": true, "*;q=0": false, "gzip;q=0, *": false, "identity": false, "x-gzip": true,
	} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}

// TestTinyAssetsStayPlain: a file gzip would not shrink is served as is.
func TestTinyAssetsStayPlain(t *testing.T) {
	t.Parallel()
	if gzipBytes([]byte("<svg/>")) != nil {
		t.Error("a 6-byte body was gzipped")
	}
}
