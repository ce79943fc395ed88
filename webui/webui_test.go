package webui

import (
	"encoding/xml"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func serve(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	h := Handler(Options{})
	tests := []struct {
		method, target string
		status         int
		contentType    string
		cacheControl   string
		csp            bool
	}{
		{"GET", "/desktop", 200, "text/html; charset=utf-8", "no-store", true},
		{"HEAD", "/desktop", 200, "text/html; charset=utf-8", "no-store", true},
		{"GET", "/m/Zm9vYmFyYmF6cXV4", 200, "text/html; charset=utf-8", "no-store", true},
		{"GET", "/static/desktop.js", 200, "text/javascript; charset=utf-8", "no-cache", false},
		{"GET", "/static/realtime.js", 200, "text/javascript; charset=utf-8", "no-cache", false},
		{"GET", "/static/phone.js", 200, "text/javascript; charset=utf-8", "no-cache", false},
		{"GET", "/static/base.css", 200, "text/css; charset=utf-8", "no-cache", false},
		{"GET", "/static/favicon.svg", 200, "image/svg+xml", "no-cache", false},
		{"GET", "/static/missing.js", 404, "", "", false},
		{"GET", "/static/", 404, "", "", false},
		{"GET", "/static/README.md", 404, "", "", false},
		{"GET", "/m/", 404, "", "", false},
		{"POST", "/desktop", 405, "", "", false},
		{"GET", "/elsewhere", 404, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			t.Parallel()
			res := serve(t, h, tt.method, tt.target, nil)
			if res.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d", res.StatusCode, tt.status)
			}
			if tt.status != 200 {
				return
			}
			if got := res.Header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type = %q, want %q", got, tt.contentType)
			}
			if got := res.Header.Get("Cache-Control"); got != tt.cacheControl {
				t.Errorf("Cache-Control = %q, want %q", got, tt.cacheControl)
			}
			if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
			}
			if tt.csp {
				if got := res.Header.Get("Content-Security-Policy"); got != ContentSecurityPolicy(nil) {
					t.Errorf("Content-Security-Policy = %q", got)
				}
				if got := res.Header.Get("Referrer-Policy"); got != "no-referrer" {
					t.Errorf("Referrer-Policy = %q, want no-referrer", got)
				}
			}
			if tt.method == "HEAD" && body(t, res) != "" {
				t.Error("HEAD answered with a body")
			}
		})
	}
}

func TestCSPIsStrict(t *testing.T) {
	t.Parallel()
	for _, want := range []string{"default-src 'self'", "script-src 'self';", "style-src 'self';", "connect-src 'self' ws: wss: https:"} {
		if !strings.Contains(ContentSecurityPolicy(nil), want) {
			t.Errorf("CSP lacks %q", want)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "*;"} {
		if strings.Contains(ContentSecurityPolicy(nil), bad) {
			t.Errorf("CSP contains %q", bad)
		}
	}
}

func TestAssetRevalidation(t *testing.T) {
	t.Parallel()
	h := Handler(Options{})
	res := serve(t, h, "GET", "/static/realtime.js", nil)
	etag := res.Header.Get("ETag")
	if !regexp.MustCompile(`^"[0-9a-f]{24}"$`).MatchString(etag) {
		t.Fatalf("ETag = %q, want a quoted content hash", etag)
	}
	for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag} {
		res := serve(t, h, "GET", "/static/realtime.js", map[string]string{"If-None-Match": inm})
		if res.StatusCode != http.StatusNotModified {
			t.Errorf("If-None-Match %s: status = %d, want 304", inm, res.StatusCode)
		}
		if b := body(t, res); b != "" {
			t.Errorf("304 has a body of %d bytes", len(b))
		}
	}
	res = serve(t, h, "GET", "/static/realtime.js", map[string]string{"If-None-Match": `"stale"`})
	if res.StatusCode != 200 {
		t.Errorf("stale ETag: status = %d, want 200", res.StatusCode)
	}
}

func TestDevFlagAndHostOrigins(t *testing.T) {
	t.Parallel()
	tests := []struct {
		opts Options
		want []string
	}{
		{Options{}, []string{`data-dev="false"`, `data-host-origins=""`}},
		{Options{Dev: true}, []string{`data-dev="true"`}},
		{Options{HostOrigins: []string{"https://a.example", `https://b.example"><x`}},
			[]string{`data-host-origins="https://a.example https://b.example&#34;&gt;&lt;x"`}},
	}
	for _, tt := range tests {
		page := body(t, serve(t, Handler(tt.opts), "GET", "/desktop", nil))
		for _, w := range tt.want {
			if !strings.Contains(page, w) {
				t.Errorf("Options %+v: page lacks %s", tt.opts, w)
			}
		}
	}
}

// element is one start tag of a page.
type element struct {
	name  string
	attrs map[string]string
}

// parseHTML lists the start tags of an HTML page. encoding/xml in its
// non-strict HTML mode is enough for the pages' plain markup, and keeps the
// module free of an HTML parser dependency.
func parseHTML(t *testing.T, page string) []element {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(page))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	var out []element
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			e := element{name: strings.ToLower(se.Name.Local), attrs: map[string]string{}}
			for _, a := range se.Attr {
				e.attrs[strings.ToLower(a.Name.Local)] = a.Value
			}
			out = append(out, e)
		}
	}
}

// TestPagesHaveNoInlineCode checks what the CSP would block anyway, so a
// page that works in a lax browser cannot break under the real policy: no
// inline script, no style element or attribute, no event-handler
// attributes, no javascript: URLs; and every asset a page names exists.
func TestPagesHaveNoInlineCode(t *testing.T) {
	t.Parallel()
	h := Handler(Options{Dev: true})
	for _, target := range []string{"/desktop", "/m/sometoken"} {
		t.Run(target, func(t *testing.T) {
			page := body(t, serve(t, h, "GET", target, nil))
			elems := parseHTML(t, page)
			if len(elems) < 20 {
				t.Fatalf("parsed only %d elements; the parser is not seeing the page", len(elems))
			}
			scripts := 0
			for _, e := range elems {
				if e.name == "script" {
					scripts++
					if e.attrs["src"] == "" {
						t.Errorf("<script> without src")
					}
					if e.attrs["type"] != "module" {
						t.Errorf("<script src=%q> is not a module", e.attrs["src"])
					}
				}
				if e.name == "style" {
					t.Errorf("<style> element")
				}
				for name, v := range e.attrs {
					if name == "style" {
						t.Errorf("<%s style=%q>", e.name, v)
					}
					if strings.HasPrefix(name, "on") {
						t.Errorf("<%s %s=...> event handler attribute", e.name, name)
					}
					if strings.HasPrefix(strings.TrimSpace(strings.ToLower(v)), "javascript:") {
						t.Errorf("<%s %s=%q>", e.name, name, v)
					}
				}
				for _, a := range []string{"src", "href"} {
					ref := e.attrs[a]
					if !strings.HasPrefix(ref, "/static/") {
						continue
					}
					if res := serve(t, h, "GET", ref, nil); res.StatusCode != 200 {
						t.Errorf("<%s %s=%q>: asset answers %d", e.name, a, ref, res.StatusCode)
					}
				}
			}
			if scripts != 1 {
				t.Errorf("%d scripts, want exactly one entry module", scripts)
			}
			// A second, cruder look at the raw text catches what a lenient
			// parser could misread.
			for _, re := range []*regexp.Regexp{
				regexp.MustCompile(`(?i)<script(\s[^>]*)?>\s*[^<\s]`),
				regexp.MustCompile(`(?i)\sstyle\s*=`),
				regexp.MustCompile(`(?i)\son[a-z]+\s*=`),
			} {
				if m := re.FindString(page); m != "" {
					t.Errorf("raw page matches %s: %q", re, m)
				}
			}
		})
	}
}

func jsAssets(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := fs.WalkDir(staticFiles, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".js" {
			return err
		}
		b, err := fs.ReadFile(staticFiles, p)
		out[strings.TrimPrefix(p, "static/")] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestScriptsAvoidUnsafeAPIs keeps the pages' scripts away from what the
// CSP forbids (eval), from building markup out of strings (XSS), and from
// the places PHI and tokens must never go (localStorage, the console).
func TestScriptsAvoidUnsafeAPIs(t *testing.T) {
	t.Parallel()
	banned := []string{
		"eval(", "new Function", "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
		"localStorage", "console.log", "console.info", "console.debug", "setTimeout('", `setTimeout("`,
	}
	for name, src := range jsAssets(t) {
		src = stripComments(src)
		for _, b := range banned {
			if strings.Contains(src, b) {
				t.Errorf("%s uses %s", name, b)
			}
		}
	}
}

// stripComments drops block comments and whole-line // comments, which may
// name a banned API to explain why it is not used.
func stripComments(src string) string {
	src = regexp.MustCompile(`(?s)/\*.*?\*/`).ReplaceAllString(src, "")
	return regexp.MustCompile(`(?m)^\s*//.*$`).ReplaceAllString(src, "")
}

var importRe = regexp.MustCompile(`(?m)^\s*import\s[^'"]*['"]([^'"]+)['"]`)

func TestModuleImportsResolve(t *testing.T) {
	t.Parallel()
	assets := jsAssets(t)
	for name, src := range assets {
		for _, m := range importRe.FindAllStringSubmatch(src, -1) {
			spec := m[1]
			if !strings.HasPrefix(spec, "./") {
				t.Errorf("%s imports %q: only relative imports of embedded modules work without a build step", name, spec)
				continue
			}
			if _, ok := assets[path.Clean(path.Join(path.Dir(name), spec))]; !ok {
				t.Errorf("%s imports %q, which is not embedded", name, spec)
			}
		}
	}
}

// TestBodySiteCodes checks the SNOMED CT codes of bodysites.js for shape:
// a concept id is 6-18 digits whose last digit is a Verhoeff check digit
// and whose partition (the two digits before it) is 00 or 10 for concepts.
// It catches a typo; that each code names the intended body structure was
// checked by hand (see bodysites.js).
func TestBodySiteCodes(t *testing.T) {
	t.Parallel()
	src := jsAssets(t)["bodysites.js"]
	codes := regexp.MustCompile(`code: '(\d+)'`).FindAllStringSubmatch(src, -1)
	if len(codes) < 20 {
		t.Fatalf("found %d body sites, want about 20 or more", len(codes))
	}
	var seen []string
	for _, m := range codes {
		c := m[1]
		if slices.Contains(seen, c) {
			t.Errorf("code %s listed twice", c)
		}
		seen = append(seen, c)
		if len(c) < 6 || len(c) > 18 {
			t.Errorf("code %s: wrong length", c)
			continue
		}
		if p := c[len(c)-3 : len(c)-1]; p != "00" && p != "10" {
			t.Errorf("code %s: partition %s is not a concept id", c, p)
		}
		if !verhoeffValid(c) {
			t.Errorf("code %s: Verhoeff check digit does not match", c)
		}
	}
}

func verhoeffValid(num string) bool {
	d := [10][10]int{
		{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 2, 3, 4, 0, 6, 7, 8, 9, 5}, {2, 3, 4, 0, 1, 7, 8, 9, 5, 6},
		{3, 4, 0, 1, 2, 8, 9, 5, 6, 7}, {4, 0, 1, 2, 3, 9, 5, 6, 7, 8}, {5, 9, 8, 7, 6, 0, 4, 3, 2, 1},
		{6, 5, 9, 8, 7, 1, 0, 4, 3, 2}, {7, 6, 5, 9, 8, 2, 1, 0, 4, 3}, {8, 7, 6, 5, 9, 3, 2, 1, 0, 4},
		{9, 8, 7, 6, 5, 4, 3, 2, 1, 0},
	}
	p := [8][10]int{
		{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 5, 7, 6, 2, 8, 3, 0, 9, 4}, {5, 8, 0, 3, 7, 9, 6, 1, 4, 2},
		{8, 9, 1, 6, 0, 4, 3, 5, 2, 7}, {9, 4, 5, 3, 1, 2, 6, 8, 7, 0}, {4, 2, 8, 6, 5, 7, 3, 9, 0, 1},
		{2, 7, 9, 3, 8, 0, 6, 4, 1, 5}, {7, 0, 4, 6, 9, 1, 3, 2, 5, 8},
	}
	c := 0
	for i := 0; i < len(num); i++ {
		c = d[c][p[i%8][num[len(num)-1-i]-'0']]
	}
	return c == 0
}
