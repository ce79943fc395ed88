//go:build integration

package webui_test

// Helpers of the browser tests (e2e_test.go, realtime_browser_test.go,
// screenshots_test.go): a real handoff server in dev mode behind a proxy
// that can cut its WebSockets, headless Chromium, and a camera-like JPEG
// with EXIF.

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"image"
	"image/color"
	"image/jpeg"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/config"
	"github.com/handoff-health/handoff/internal/testutil"
	"github.com/handoff-health/handoff/server"
)

// stack is one handoff server (embedded defaults, dev mode) that the
// browser reaches through proxy; base is the proxy's URL, which is also the
// server's public URL, so the pages, the QR link and the signed blob URLs
// all share one origin.
type stack struct {
	base    string
	proxy   *flakyProxy
	dataDir string
	// hub is the server's hub, for publishing what no API would (a forged
	// event, as a compromised credential once could).
	hub *hub.Hub
}

func startStack(t testing.TB) *stack {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err, "listen")
	proxy := startProxy(t, l.Addr().String())

	// The defaults of `handoff serve`, then what this test needs. Settings
	// that would leave the embedded defaults are cleared, whatever the
	// environment says.
	var cfg config.Config
	fs := flag.NewFlagSet("handoff", flag.ContinueOnError)
	must(t, config.Register(fs, &cfg).Parse(nil), "config")
	cfg.Dev = true
	cfg.Addr = l.Addr().String()
	cfg.PublicURL = "http://" + proxy.addr()
	cfg.DataDir = t.TempDir()
	cfg.RedisAddrs, cfg.S3Bucket, cfg.ALEXBaseURL, cfg.AblyKey = "", "", "", ""
	cfg.LogLevel = "warn"

	srv := serveNode(t, cfg, l)
	return &stack{base: cfg.PublicURL, proxy: proxy, dataDir: cfg.DataDir, hub: srv.Hub()}
}

// newBrowser starts a headless chromium for the test and returns its root
// context; tabs are children of it.
func newBrowser(t testing.TB) context.Context { return testutil.NewBrowser(t) }

// pageErrors collects uncaught exceptions, console errors and browser log
// errors (CSP violations among them) of one tab.
type pageErrors struct {
	mu   sync.Mutex
	msgs []string
}

func (p *pageErrors) add(s string) {
	p.mu.Lock()
	p.msgs = append(p.msgs, s)
	p.mu.Unlock()
}

func (p *pageErrors) list() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.msgs...)
}

// newTab opens a tab (in a fresh browser context when isolated) and starts
// collecting its errors.
func newTab(t testing.TB, browser context.Context, isolated bool) (context.Context, *pageErrors) {
	t.Helper()
	var opts []chromedp.ContextOption
	if isolated {
		opts = append(opts, chromedp.WithNewBrowserContext())
	}
	ctx, cancel := chromedp.NewContext(browser, opts...)
	t.Cleanup(cancel)
	errs := &pageErrors{}
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	entries := chromedp.Events(ctx, log.EntryAdded)
	if _, err := chromedp.Call(ctx, log.Enable, struct{}{}); err != nil {
		t.Fatalf("log.enable: %v", err)
	}
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg = d.Exception.Description
			}
			errs.add("exception: " + msg)
		}
	}()
	go func() {
		for ev, err := range entries {
			if err != nil {
				return
			}
			if ev.Entry.Level == log.EntryLevelError && !expectedLogError(ev.Entry.Text) {
				errs.add("log: " + ev.Entry.Text + " " + ev.Entry.URL)
			}
		}
	}()
	return ctx, errs
}

// expectedLogError: errors a browser logs for what the test does on
// purpose (the socket refused while the network is "down").
func expectedLogError(text string) bool {
	return strings.Contains(text, "WebSocket connection") || strings.Contains(text, "net::ERR_")
}

func must(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// waitJS polls a JS expression until it is truthy.
func waitJS(t testing.TB, ctx context.Context, expr string, timeout time.Duration, what string) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(100*time.Millisecond)))
	must(t, err, "waiting for "+what)
}

func evalJS[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	must(t, err, "evaluating "+expr)
	return v
}

// writePhoto writes a camera-like JPEG (w×h): a synthetic skin-toned
// field with a reddish oval "lesion" (no real patient), carrying an EXIF
// APP1 block with a GPS position and Orientation 6 (rotate 90° clockwise),
// as a phone photo taken in portrait would.
func writePhoto(t testing.TB, dir string, w, h int) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	cx, cy := float64(w)*0.55, float64(h)*0.45
	rx, ry := float64(w)*0.16, float64(h)*0.12
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			// Skin: warm, lit from the top left.
			shade := 1 - 0.18*float64(x+y)/float64(w+h)
			r, g, b := 224*shade, 180*shade, 150*shade
			dx, dy := (float64(x)-cx)/rx, (float64(y)-cy)/ry
			if d := dx*dx + dy*dy; d < 1.6 {
				// The lesion: darker red at the centre, fading at the edge.
				k := 1.0
				if d > 1 {
					k = (1.6 - d) / 0.6
				}
				r, g, b = r*(1-0.25*k), g*(1-0.6*k), b*(1-0.55*k)
			}
			img.Set(x, y, color.RGBA{uint8(r), uint8(g), uint8(b), 255})
		}
	}
	var enc bytes.Buffer
	must(t, jpeg.Encode(&enc, img, &jpeg.Options{Quality: 90}), "jpeg encode")
	b := enc.Bytes()
	out := append(append(append([]byte{}, b[:2]...), exifAPP1()...), b[2:]...)
	p := filepath.Join(dir, "wound.jpg")
	must(t, os.WriteFile(p, out, 0o600), "write photo")
	if !hasExif(out) {
		t.Fatal("test photo has no EXIF block; the generator is broken")
	}
	return p
}

// exifAPP1 builds an APP1 segment: "Exif\0\0" + a big-endian TIFF with
// IFD0 {Orientation=6, GPSInfo→GPS IFD} and a GPS IFD {GPSLatitudeRef=S,
// GPSLatitude=36/1 51/1 0/1}.
func exifAPP1() []byte {
	var tiff bytes.Buffer
	be := binary.BigEndian
	w16 := func(v uint16) { _ = binary.Write(&tiff, be, v) }
	w32 := func(v uint32) { _ = binary.Write(&tiff, be, v) }
	tiff.WriteString("MM")
	w16(42)
	w32(8) // IFD0 offset
	// IFD0: 2 entries at 8; next-IFD 0; GPS IFD follows at 8+2+2*12+4 = 38.
	w16(2)
	w16(0x0112) // Orientation
	w16(3)      // SHORT
	w32(1)
	w16(6)
	w16(0)
	w16(0x8825) // GPSInfo
	w16(4)      // LONG
	w32(1)
	w32(38)
	w32(0)
	// GPS IFD at 38: 2 entries; rationals at 38+2+2*12+4 = 68.
	w16(2)
	w16(0x0001) // GPSLatitudeRef
	w16(2)      // ASCII
	w32(2)
	tiff.WriteString("S\x00\x00\x00")
	w16(0x0002) // GPSLatitude
	w16(5)      // RATIONAL
	w32(3)
	w32(68)
	w32(0)
	for _, v := range []uint32{36, 1, 51, 1, 0, 1} {
		w32(v)
	}
	payload := append([]byte("Exif\x00\x00"), tiff.Bytes()...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	be.PutUint16(seg[2:], uint16(len(payload)+2))
	return append(seg, payload...)
}

// hasExif reports whether a JPEG has an APP1 Exif segment before its scan.
func hasExif(b []byte) bool {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return false
	}
	for i := 2; i+4 <= len(b); {
		if b[i] != 0xFF {
			return false
		}
		marker := b[i+1]
		if marker == 0xDA { // start of scan: no more metadata segments
			return false
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if marker == 0xE1 && i+4+6 <= len(b) && string(b[i+4:i+10]) == "Exif\x00\x00" {
			return true
		}
		i += 2 + n
	}
	return false
}

// serveNode starts a node with cfg on l and stops it when the test ends.
func serveNode(t testing.TB, cfg config.Config, l net.Listener) *server.Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		cancel()
		t.Fatalf("server.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		srv.Close()
	})
	return srv
}
