//go:build integration

package webui_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestScreenshots walks the GP's whole flow in Chromium and takes PNGs of
// the desktop widget and the phone page on the way: into a temp dir in the
// suite, into docs/screenshots/ with HANDOFF_SCREENSHOTS=1 (make
// screenshots), or into $HANDOFF_SCREENSHOTS_DIR.
func TestScreenshots(t *testing.T) {
	// The suite walks the whole flow and writes the pictures to a temp
	// dir, so the walk is tested every run; `make screenshots` sets
	// HANDOFF_SCREENSHOTS=1 to write them into docs/screenshots/.
	dir := os.Getenv("HANDOFF_SCREENSHOTS_DIR")
	switch {
	case dir != "":
	case os.Getenv("HANDOFF_SCREENSHOTS") == "1":
		dir = filepath.Join("..", "docs", "screenshots")
	default:
		dir = t.TempDir()
	}
	must(t, os.MkdirAll(dir, 0o755), "screenshot dir")
	save := func(ctx context.Context, name string) {
		t.Helper()
		time.Sleep(300 * time.Millisecond) // let transitions settle
		b, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		must(t, err, "screenshot "+name)
		must(t, os.WriteFile(filepath.Join(dir, name), b, 0o644), "write "+name)
		t.Logf("wrote %s", filepath.Join(dir, name))
	}

	st := startStack(t)
	browser := newBrowser(t)
	desk, _ := newTab(t, browser, false)
	phone, _ := newTab(t, browser, true)
	photo := writePhoto(t, t.TempDir(), 3000, 2000)

	must(t, chromedp.Do(desk,
		chromedp.EmulateViewport(520, 860),
		chromedp.Navigate(st.base+"/desktop"),
		chromedp.WaitVisible(chromedp.CSS("#dev-form")),
	), "open desktop")
	waitJS(t, desk, `document.querySelector('#dev-patient').options.length > 0`, 10*time.Second, "demo patients")
	must(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#dev-start"))), "start")
	waitJS(t, desk, `document.querySelector('#conn').dataset.state === 'live' && document.querySelector('#qr').naturalWidth > 0`, 10*time.Second, "QR")
	save(desk, "desktop-qr.png")

	mobileURL := evalJS[string](t, desk, `document.querySelector('#mobile-link').value`)
	must(t, chromedp.Do(phone,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch),
		chromedp.Navigate(mobileURL),
		chromedp.WaitVisible(chromedp.CSS("#confirm-yes")),
	), "open phone")
	save(phone, "phone-confirm.png")
	must(t, chromedp.Do(phone,
		chromedp.Click(chromedp.CSS("#confirm-yes")),
		chromedp.WaitVisible(chromedp.CSS("#take-photo")),
	), "confirm")
	save(phone, "phone-capture.png")
	must(t, chromedp.Do(phone, chromedp.SetUploadFiles(chromedp.CSS("#camera"), []string{photo, photo})), "pick")
	waitJS(t, phone, `(() => { const it = [...document.querySelectorAll('.review-item')];
		return it.length === 2 && it.every(i => i.dataset.state === 'ready'); })()`, 20*time.Second, "prepared")
	must(t, chromedp.Do(phone, chromedp.Evaluate[chromedp.Void](`(() => {
		const item = document.querySelector('.review-item');
		item.querySelector('details').open = true;
		item.querySelector('[data-role="laterality"]').value = 'left';
		item.querySelector('[data-role="bodysite"]').value = '30021000';
	})()`)), "details")
	save(phone, "phone-review.png")
	must(t, chromedp.Do(phone, chromedp.Click(chromedp.CSS("#send"))), "send")
	waitJS(t, phone, `!document.querySelector('[data-screen="done"]').hidden`, 30*time.Second, "sent")
	save(phone, "phone-sent.png")

	waitJS(t, desk, `[...document.querySelectorAll('#grid .card img')].filter(i => i.naturalWidth > 0).length === 2`, 10*time.Second, "photos")
	must(t, chromedp.Do(desk, chromedp.Evaluate[chromedp.Void](`(() => {
		const s = document.querySelectorAll('#grid .card')[1].querySelector('[data-role="bodysite"]');
		s.value = '30021000'; s.dispatchEvent(new Event('change', {bubbles: true}));
		const l = document.querySelectorAll('#grid .card')[1].querySelector('[data-role="laterality"]');
		l.value = 'left'; l.dispatchEvent(new Event('change', {bubbles: true}));
		window.scrollTo(0, 0);
	})()`)), "edit")
	waitJS(t, desk, `document.querySelectorAll('#grid .card')[1].querySelector('[data-role="save"]').textContent === 'Saved'`, 10*time.Second, "saved")
	// The phone page is still open: the line says so once presence has it.
	waitJS(t, desk, `document.querySelector('#phone-line').dataset.state === 'connected'`, 10*time.Second, "phone connected")
	save(desk, "desktop-photos.png")
	must(t, chromedp.Do(desk, chromedp.EmulateViewport(1100, 760)), "wide")
	save(desk, "desktop-wide.png")
	fileAll(t, desk) // answers the no-site prompt (issue 15) if it comes
	waitJS(t, desk, `[...document.querySelectorAll('#grid .card')].every(c => c.dataset.commit === 'committed')`, 20*time.Second, "filed")
	save(desk, "desktop-filed.png")
}
