package capture

import (
	"fmt"
	"net/http"
	"os"
	"strings"

	qrcode "github.com/yeqown/go-qrcode/v2"

	"github.com/handoff-health/handoff/internal/session"
)

// The QR code is served at qrUrl, /api/medtech/session/tokens/{token}/qr.svg,
// without a desktop JWT: an <img> tag cannot send one, and none is needed.
// The token in the path is the capability: whoever holds it can already
// claim the session, and the image only encodes mobileUrl, which contains
// the same token. So the endpoint reveals nothing its caller does not have.
// It serves only tokens that can still be claimed (404 unknown, 410 used,
// expired or replaced), never caches, and like every route here is logged
// by its template, never its path.

// qrDebugEnv turns on go-qrcode's debug mode, which logs the encoded data
// blocks (the token's bytes) and writes images to disk. New refuses to start
// with it set rather than leak tokens.
const qrDebugEnv = "QRCODE_DEBUG"

func qrDebugSet() bool {
	switch os.Getenv(qrDebugEnv) {
	case "", "0", "false", "FALSE":
		return false
	}
	return true
}

// qrQuietZone is the blank border scanners need, in modules (the QR spec
// asks for 4).
const qrQuietZone = 4

// qr serves the QR code of a claimable token as SVG.
func (a *API) qr(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	if !tokenShape(token, qrTokenBytes) {
		a.fail(w, r, apiError(session.ErrTokenNotFound))
		return
	}
	if _, err := a.store.PeekQR(r.Context(), session.HashToken(token), a.now()); err != nil {
		a.fail(w, r, apiError(err))
		return
	}
	svg, err := qrSVG(a.mobileURL(token))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "image/svg+xml")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// The SVG is drawn with two shapes; opened directly it may run nothing.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_, _ = w.Write(svg)
}

// matrixWriter captures the module matrix go-qrcode computes; the library
// ships raster and terminal writers only, and an SVG is a few lines.
type matrixWriter struct{ bitmap [][]bool }

func (m *matrixWriter) Write(mat qrcode.Matrix) error { m.bitmap = mat.Bitmap(); return nil }
func (m *matrixWriter) Close() error                  { return nil }

// qrSVG renders text as a QR code (error correction M, enough for a screen)
// in a square SVG of one unit per module, with dark runs of each row merged
// into one path segment to keep it small.
func qrSVG(text string) ([]byte, error) {
	code, err := qrcode.NewWith(text, qrcode.WithErrorCorrectionLevel(qrcode.ErrorCorrectionMedium))
	if err != nil {
		return nil, fmt.Errorf("capture: encode QR code: %w", err)
	}
	var m matrixWriter
	if err := code.Save(&m); err != nil {
		return nil, fmt.Errorf("capture: render QR code: %w", err)
	}
	size := len(m.bitmap) + 2*qrQuietZone
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" shape-rendering="crispEdges">`, size, size)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="`, size, size)
	for y, row := range m.bitmap {
		for x := 0; x < len(row); {
			if !row[x] {
				x++
				continue
			}
			run := 1
			for x+run < len(row) && row[x+run] {
				run++
			}
			fmt.Fprintf(&b, "M%d %dh%dv1h-%dz", x+qrQuietZone, y+qrQuietZone, run, run)
			x += run
		}
	}
	b.WriteString(`"/></svg>`)
	return []byte(b.String()), nil
}
