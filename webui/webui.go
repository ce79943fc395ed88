// Package webui serves the pages a GP touches: the desktop widget that sits
// beside the patient record (/desktop) and the phone capture page that a QR
// code opens (/m/{token}). Pages and assets are plain HTML, CSS and ES
// modules embedded in the binary; there is no build step.
//
// The pages run under a strict Content-Security-Policy (no inline script or
// style, no eval), so everything they do lives in files under static/.
package webui

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed pages/*.html
var pageFiles embed.FS

//go:embed static
var staticFiles embed.FS

// ContentSecurityPolicy is the policy of the HTML pages: only their own
// scripts and styles (no inline script), images from self, blob: and data:
// (previews and the QR code) or a presigned store URL, connections back to
// this origin or the store, and framing by this origin and the host
// applications allowed to embed the desktop widget.
func ContentSecurityPolicy(hostOrigins []string) string {
	return "default-src 'self'; script-src 'self'; style-src 'self'; " +
		"img-src 'self' blob: data: https:; connect-src 'self' ws: wss: https:; " +
		"base-uri 'none'; form-action 'self'; frame-ancestors " +
		strings.Join(append([]string{"'self'"}, hostOrigins...), " ")
}

// Options configures the pages.
type Options struct {
	// Dev shows the demo form on /desktop, which gets a dev token from
	// POST /api/dev/token and picks a demo patient from GET /api/dev/patients.
	// Zero (production): the page waits for its host application to hand it
	// a JWT and patient context (URL fragment or postMessage; see docs/webui.md).
	Dev bool
	// HostOrigins lists the origins, besides the page's own, whose
	// postMessage "handoff:init" the desktop page accepts, e.g.
	// "https://widgets.example.org". Zero: only the page's own origin.
	HostOrigins []string
	// VolatileSessions tells the desktop that capture sessions live in this
	// process's memory only (no Redis), so it can say plainly that a
	// restart loses unfiled photos (issue 15).
	VolatileSessions bool
}

// Handler serves GET /desktop, GET /m/{token} and GET /static/…. Mount it
// on exactly those patterns; it answers 404 for anything else.
func Handler(opts Options) http.Handler {
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic("webui: embedded static directory missing: " + err.Error())
	}
	assets := newAssetServer(static)
	desktop := mustPage("desktop.html", pageData{Dev: opts.Dev, HostOrigins: strings.Join(opts.HostOrigins, " "), Volatile: opts.VolatileSessions},
		ContentSecurityPolicy(opts.HostOrigins))
	// Only the desktop widget is embedded by host applications.
	phone := mustPage("phone.html", pageData{}, ContentSecurityPolicy(nil))

	mux := http.NewServeMux()
	mux.Handle("GET /desktop", desktop)
	// The token is read by the page from location.pathname; the server never
	// looks at it, so it cannot end up in a log line from here.
	mux.Handle("GET /m/{token}", phone)
	mux.Handle("GET /static/", http.StripPrefix("/static/", assets))
	return mux
}

// pageData is what the HTML templates receive. Nothing here is secret: the
// pages are public, and credentials reach them only at run time.
type pageData struct {
	Dev         bool
	HostOrigins string
	Volatile    bool
}

// page is one rendered HTML page. It is rendered once, at start: the
// templates depend only on Options.
type page struct {
	body []byte
	gzip []byte // nil: not worth compressing
	csp  string
}

func mustPage(name string, data pageData, csp string) page {
	t, err := template.ParseFS(pageFiles, "pages/"+name)
	if err != nil {
		panic("webui: parse " + name + ": " + err.Error())
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		panic("webui: render " + name + ": " + err.Error())
	}
	return page{body: b.Bytes(), gzip: gzipBytes(b.Bytes()), csp: csp}
}

func (p page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// The pages show patient context once running; no proxy or browser may
	// keep them, and the phone URL carries a one-time token that must not
	// leak through a Referer.
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", p.csp)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	body, _ := pickBody(w, r, p.body, p.gzip)
	writeBody(w, r, body)
}
