//go:build integration

package webui_test

// Issue 15, slice C: faster wound documentation on the desktop (apply side
// and site to all photos, the body-site type-ahead, the prompt before
// filing photos without a site), the phone's review list (enlarge to check
// focus, an action bar that never covers a Delete, Delete with undo), and
// setup (the loopback-QR hint, a desktop at 127.0.0.1 with a LAN
// --public-url, gzip).

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/handoff-health/handoff/internal/config"
	"github.com/handoff-health/handoff/internal/testutil"
)

// startStackPublicHost is startStack with --public-url naming publicHost
// (resolved to 127.0.0.1 by the browser's host rules) instead of the
// proxy's 127.0.0.1 address, as a laptop with a LAN --public-url is.
func startStackPublicHost(t *testing.T, publicHost string) (st *stack, loopbackBase string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err, "listen")
	proxy := startProxy(t, l.Addr().String())
	_, port, _ := net.SplitHostPort(proxy.addr())
	var cfg config.Config
	fs := flag.NewFlagSet("handoff", flag.ContinueOnError)
	must(t, config.Register(fs, &cfg).Parse(nil), "config")
	cfg.Dev = true
	cfg.Addr = l.Addr().String()
	cfg.PublicURL = "http://" + publicHost + ":" + port
	cfg.DataDir = t.TempDir()
	cfg.RedisAddrs, cfg.S3Bucket, cfg.ALEXBaseURL, cfg.AblyKey = "", "", "", ""
	srv := serveNode(t, cfg, l)
	return &stack{base: cfg.PublicURL, proxy: proxy, dataDir: cfg.DataDir, hub: srv.Hub()}, "http://" + proxy.addr()
}

// newBrowserMapping is newBrowser with host names mapped to 127.0.0.1.
func newBrowserMapping(t *testing.T, hosts ...string) context.Context {
	t.Helper()
	var rules []string
	for _, h := range hosts {
		rules = append(rules, "MAP "+h+" 127.0.0.1")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(testutil.Chromium(t)), chromedp.Headless, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("host-resolver-rules", strings.Join(rules, ", ")),
		chromedp.UserDataDir(t.TempDir()),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	must(t, chromedp.Do(ctx), "starting chromium")
	return ctx
}

// failOnPageErrors reports a tab's errors (CSP violations among them).
func failOnPageErrors(t *testing.T, name string, errs *pageErrors) {
	t.Cleanup(func() {
		for _, e := range errs.list() {
			t.Errorf("%s page: %s", name, e)
		}
	})
}

// openDesktop starts a demo session on the desktop at base (viewport w×h)
// and returns the phone link.
func openDesktop(t *testing.T, desk context.Context, base string, w, h int64) string {
	t.Helper()
	must(t, chromedp.Do(desk,
		chromedp.EmulateViewport(w, h),
		chromedp.Navigate(base+"/desktop"),
		chromedp.WaitVisible(chromedp.CSS("#dev-form")),
	), "open desktop")
	waitJS(t, desk, `document.querySelector('#dev-patient').options.length > 0`, 10*time.Second, "demo patients")
	must(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#dev-start"))), "start session")
	waitJS(t, desk, `document.querySelector('#mobile-link').value.includes('/m/')`, 10*time.Second, "mobile link")
	waitJS(t, desk, `document.querySelector('#conn').dataset.state === 'live'`, 10*time.Second, "socket live")
	return evalJS[string](t, desk, `document.querySelector('#mobile-link').value`)
}

// openConfirmedPhone claims the code on a 390×844 touch phone and confirms.
func openConfirmedPhone(t *testing.T, phone context.Context, mobileURL string) {
	t.Helper()
	openPhone(t, phone, mobileURL)
	confirmPhone(t, phone)
}

// pickPhotos picks n photos on the phone and waits until all are ready.
func pickPhotos(t *testing.T, phone context.Context, n int) {
	t.Helper()
	var paths []string
	for range n {
		paths = append(paths, writePhoto(t, t.TempDir(), 900, 600))
	}
	must(t, chromedp.Do(phone, chromedp.SetUploadFiles(chromedp.CSS("#camera"), paths)), "pick photos")
	waitJS(t, phone, fmt.Sprintf(`(() => { const it = [...document.querySelectorAll('.review-item')];
		return it.length === %d && it.every(i => i.dataset.state === 'ready'); })()`, n), 30*time.Second, "photos prepared")
}

// fileAll presses "File to record", answering the no-site prompt with
// "File without site" if it comes.
func fileAll(t *testing.T, desk context.Context) {
	t.Helper()
	must(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#commit"))), "commit")
	waitJS(t, desk, `document.querySelector('#nosite-dialog').open ||
		[...document.querySelectorAll('#grid .card')].some(c => c.dataset.commit !== 'pending')`, 10*time.Second, "filing or the prompt")
	if evalJS[bool](t, desk, `document.querySelector('#nosite-dialog').open`) {
		must(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#nosite-file"))), "file without site")
	}
}

// setField sets a card control's value and fires its events.
func setField(t *testing.T, desk context.Context, card int, role, value string, events ...string) {
	t.Helper()
	js := fmt.Sprintf(`(() => { const el = document.querySelectorAll('#grid .card')[%d].querySelector('[data-role=%q]');
		el.value = %q; for (const e of %s) el.dispatchEvent(new Event(e, {bubbles: true})); })()`,
		card, role, value, jsonString(t, events))
	must(t, chromedp.Do(desk, chromedp.Evaluate[chromedp.Void](js)), "set "+role)
}

func jsonString(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	must(t, err, "json")
	return string(b)
}

// TestDesktopWoundDocumentation: three photos from the phone; the GP finds
// "Sacrum" by typing "sacr", sets the side, and applies both to every
// photo with one action (each saved by its own PATCH); text naming no site
// is refused on the card; filing a photo without a site asks first, in
// the page, and "Add body sites" files nothing and puts focus on that
// photo's site. The filed Media reads "Left sacrum".
func TestDesktopWoundDocumentation(t *testing.T) {
	st := startStack(t)
	browser := newBrowser(t)
	desk, deskErrs := newTab(t, browser, false)
	phone, phoneErrs := newTab(t, browser, true)
	failOnPageErrors(t, "desktop", deskErrs)
	failOnPageErrors(t, "phone", phoneErrs)

	openConfirmedPhone(t, phone, openDesktop(t, desk, st.base, 1280, 900))
	pickPhotos(t, phone, 3)
	must(t, chromedp.Do(phone, chromedp.Click(chromedp.CSS("#send"))), "send")
	waitJS(t, phone, `!document.querySelector('[data-screen="done"]').hidden`, 30*time.Second, "phone says sent")
	waitJS(t, desk, `document.querySelectorAll('#grid .card').length === 3`, 10*time.Second, "three cards")
	waitJS(t, desk, `[...document.querySelectorAll('#grid .card [data-role="apply-all"]')].every(b => !b.hidden)`, 5*time.Second, "apply-all offered")

	// Type-ahead: "sacr" resolves to Sacrum when the field is left.
	setField(t, desk, 0, "bodysite", "sacr", "input", "change")
	waitJS(t, desk, `document.querySelector('#grid .card [data-role="bodysite"]').value === 'Sacrum'`, 5*time.Second, "sacr → Sacrum")
	if n := evalJS[int](t, desk, `[...document.querySelectorAll('#bodysite-list option')].filter(o => /sacrum|coccyx|sole of foot|dorsum of foot|axilla|heel/i.test(o.value)).length`); n != 6 {
		t.Errorf("the body-site list has %d of sacrum, coccyx, sole, dorsum of foot, axilla, heel; want 6", n)
	}
	// Text naming no site is refused, and nothing is saved for it.
	setField(t, desk, 1, "bodysite", "elbowish knee", "input", "change")
	waitJS(t, desk, `!document.querySelectorAll('#grid .card')[1].querySelector('[data-role="site-error"]').hidden`, 5*time.Second, "site error shown")
	if got := evalJS[string](t, desk, `document.querySelectorAll('#grid .card')[1].querySelector('[data-role="bodysite"]').getAttribute('aria-invalid')`); got != "true" {
		t.Errorf("aria-invalid = %q on a site that matches nothing", got)
	}
	setField(t, desk, 0, "laterality", "left", "change")
	waitJS(t, desk, `document.querySelector('#grid .card [data-role="save"]').textContent === 'Saved'`, 10*time.Second, "first card saved")

	// Apply to all: every card shows and saves left + sacrum.
	must(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS(`#grid .card [data-role="apply-all"]`))), "apply to all")
	waitJS(t, desk, `[...document.querySelectorAll('#grid .card')].every(c =>
		c.querySelector('[data-role="bodysite"]').value === 'Sacrum' && c.querySelector('[data-role="laterality"]').value === 'left' &&
		c.querySelector('[data-role="save"]').textContent === 'Saved')`, 10*time.Second, "all cards saved with left sacrum")
	if !evalJS[bool](t, desk, `document.querySelectorAll('#grid .card')[1].querySelector('[data-role="site-error"]').hidden`) {
		t.Error("the site error stayed after a valid site was applied")
	}
	sessionID := evalJS[string](t, desk, `document.body.dataset.sessionId`)
	snap := snapshot(t, st.base, sessionID)
	for _, img := range snap.Images {
		if img.Metadata.BodySite.Code != "54735007" || img.Metadata.Laterality != "left" {
			t.Errorf("image %s metadata on the server = %+v, want left sacrum", img.ID, img.Metadata)
		}
	}

	// The third photo's site is cleared: filing asks first.
	setField(t, desk, 2, "bodysite", "", "input", "change")
	waitJS(t, desk, `document.querySelectorAll('#grid .card')[2].querySelector('[data-role="save"]').textContent === 'Saved'`, 10*time.Second, "cleared site saved")
	must(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#commit"))), "commit")
	waitJS(t, desk, `document.querySelector('#nosite-dialog').open`, 5*time.Second, "no-site prompt")
	if text := evalJS[string](t, desk, `document.querySelector('#nosite-text').textContent`); !strings.Contains(text, "Photo 3") {
		t.Errorf("prompt says %q, want it to name photo 3", text)
	}
	if id := evalJS[string](t, desk, `document.activeElement.id`); id != "nosite-add" {
		t.Errorf("focus in the prompt is on %q, want Add body sites", id)
	}
	must(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#nosite-add"))), "add body sites")
	waitJS(t, desk, `!document.querySelector('#nosite-dialog').open`, 5*time.Second, "prompt closed")
	if !evalJS[bool](t, desk, `document.activeElement === document.querySelectorAll('#grid .card')[2].querySelector('[data-role="bodysite"]')`) {
		t.Error("focus is not on the site of the photo without one")
	}
	if evalJS[bool](t, desk, `[...document.querySelectorAll('#grid .card')].some(c => c.dataset.commit !== 'pending')`) {
		t.Fatal("a photo was filed although the GP chose to add sites")
	}
	// Escape also cancels.
	must(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#commit"))), "commit again")
	waitJS(t, desk, `document.querySelector('#nosite-dialog').open`, 5*time.Second, "prompt again")
	must(t, chromedp.Do(desk, chromedp.KeyEvent("\x1b")), "escape")
	waitJS(t, desk, `!document.querySelector('#nosite-dialog').open`, 5*time.Second, "escape closes the prompt")
	if evalJS[bool](t, desk, `[...document.querySelectorAll('#grid .card')].some(c => c.dataset.commit !== 'pending')`) {
		t.Fatal("Escape filed photos")
	}

	fileAll(t, desk)
	waitJS(t, desk, `[...document.querySelectorAll('#grid .card')].every(c => c.dataset.commit === 'committed')`, 20*time.Second, "filed")
	firstID := evalJS[string](t, desk, `document.querySelector('#grid .card').dataset.imageId`)
	media := readOutbox(t, st.dataDir, firstID)
	testutil.Check(t, "filed bodySite.text", "Left sacrum", media.BodySite.Text)
	testutil.Check(t, "filed coding.display (the SNOMED term)", "Bone structure of sacrum", media.BodySite.Coding[0].Display)
}

type snapshotView struct {
	Images []struct {
		ID       string `json:"id"`
		Metadata struct {
			Laterality string `json:"laterality"`
			BodySite   struct {
				Code string `json:"code"`
			} `json:"bodySite"`
		} `json:"metadata"`
	} `json:"images"`
}

func snapshot(t *testing.T, base, sessionID string) snapshotView {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/api/medtech/session/"+sessionID, nil)
	must(t, err, "snapshot request")
	req.Header.Set("Authorization", "Bearer "+devToken(t, base))
	res, err := http.DefaultClient.Do(req)
	must(t, err, "snapshot")
	defer res.Body.Close()
	var s snapshotView
	must(t, json.NewDecoder(res.Body).Decode(&s), "snapshot body")
	if len(s.Images) == 0 {
		t.Fatalf("snapshot %d has no images", res.StatusCode)
	}
	return s
}

// TestPhoneReviewList, on a 390×844 touch phone with four photos: the
// last photo's Delete, scrolled into view, is what a tap at its centre
// hits (the sticky action bar once covered it and the tap hit "Add
// more"); Delete offers Undo, which brings the photo back, and a delete
// left alone is final; a thumbnail opens full screen to check focus,
// with pinch-zoom allowed, and Close returns focus.
func TestPhoneReviewList(t *testing.T) {
	st := startStack(t)
	browser := newBrowser(t)
	desk, deskErrs := newTab(t, browser, false)
	phone, phoneErrs := newTab(t, browser, true)
	failOnPageErrors(t, "desktop", deskErrs)
	failOnPageErrors(t, "phone", phoneErrs)
	openConfirmedPhone(t, phone, openDesktop(t, desk, st.base, 520, 900))
	pickPhotos(t, phone, 4)

	lastDeleteClear := `(() => {
		const del = [...document.querySelectorAll('.review-item [data-role="delete"]')].at(-1);
		const r = del.getBoundingClientRect();
		const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
		return hit === del || del.contains(hit);
	})()`
	for _, scroll := range []string{`scrollIntoView({block: 'nearest'})`, `scrollIntoView({block: 'end'})`, `focus()`} {
		must(t, chromedp.Do(phone, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0); [...document.querySelectorAll('.review-item [data-role="delete"]')].at(-1).`+scroll)), scroll)
		if !evalJS[bool](t, phone, lastDeleteClear) {
			t.Errorf("after %s the last Delete is covered (elementFromPoint at its centre is another element)", scroll)
		}
	}
	lastID := evalJS[string](t, phone, `document.querySelector('.review-item:last-child [data-role="name"]').textContent`)

	// Delete, then Undo: the photo is back, in its place.
	must(t, chromedp.Do(phone, chromedp.Click(chromedp.CSS(`.review-item:last-child [data-role="delete"]`))), "delete")
	waitJS(t, phone, `document.querySelectorAll('.review-item').length === 3 && !document.querySelector('#toast').hidden`, 5*time.Second, "removed with undo")
	if text := evalJS[string](t, phone, `document.querySelector('#toast-text').textContent`); !strings.Contains(text, "removed") {
		t.Errorf("toast says %q", text)
	}
	must(t, chromedp.Do(phone, chromedp.Click(chromedp.CSS("#toast-undo"))), "undo")
	waitJS(t, phone, `document.querySelectorAll('.review-item').length === 4 && document.querySelector('#toast').hidden`, 5*time.Second, "photo restored")
	testutil.Check(t, "restored photo is last again", lastID, evalJS[string](t, phone, `document.querySelector('.review-item:last-child [data-role="name"]').textContent`))
	if !evalJS[bool](t, phone, `document.querySelector('.review-item:last-child img').naturalWidth > 0`) {
		t.Error("the restored photo's image is gone")
	}

	// Delete left alone: final once the undo has gone.
	must(t, chromedp.Do(phone, chromedp.Click(chromedp.CSS(`.review-item:last-child [data-role="delete"]`))), "delete again")
	waitJS(t, phone, `document.querySelector('#toast').hidden && document.querySelectorAll('.review-item').length === 3`, 20*time.Second, "undo window over")

	// Enlarge to check focus.
	meta := evalJS[string](t, phone, `document.querySelector('meta[name=viewport]').content`)
	if strings.Contains(meta, "user-scalable=no") || strings.Contains(meta, "maximum-scale=1") {
		t.Errorf("viewport %q forbids pinch-zoom", meta)
	}
	must(t, chromedp.Do(phone, chromedp.Click(chromedp.CSS(`.review-item [data-role="enlarge"]`))), "enlarge")
	waitJS(t, phone, `document.querySelector('#photo-view').open && document.querySelector('#photo-view-img').naturalWidth > 0`, 5*time.Second, "full-screen view")
	if !evalJS[bool](t, phone, `(() => { const r = document.querySelector('#photo-view').getBoundingClientRect(); return r.width >= 389 && r.height >= 700; })()`) {
		t.Error("the view is not full screen")
	}
	testutil.Check(t, "focus in the view", "photo-view-close", evalJS[string](t, phone, `document.activeElement.id`))
	must(t, chromedp.Do(phone, chromedp.Click(chromedp.CSS("#photo-view-close"))), "close view")
	waitJS(t, phone, `!document.querySelector('#photo-view').open`, 5*time.Second, "view closed")
	if !evalJS[bool](t, phone, `document.activeElement === document.querySelector('.review-item [data-role="enlarge"]')`) {
		t.Error("focus did not return to the thumbnail")
	}

	must(t, chromedp.Do(phone, chromedp.Click(chromedp.CSS("#send"))), "send")
	waitJS(t, phone, `!document.querySelector('[data-screen="done"]').hidden`, 30*time.Second, "sent")
	testutil.Check(t, "phone result", "3 photos sent", evalJS[string](t, phone, `document.querySelector('#done-title').textContent`))
	waitJS(t, desk, `document.querySelectorAll('#grid .card').length === 3`, 10*time.Second, "three photos on the desktop")
}

// TestSetupQRAndThumbnails: the quick start's 127.0.0.1 code shows the
// loopback hint with the LAN command; a desktop opened at 127.0.0.1 while
// --public-url names the LAN host shows the QR and the thumbnails (loaded
// from its own origin, under the strict CSP), no hint, and gets its
// assets gzipped.
func TestSetupQRAndThumbnails(t *testing.T) {
	t.Run("loopback hint", func(t *testing.T) {
		st := startStack(t)
		browser := newBrowser(t)
		desk, errs := newTab(t, browser, false)
		failOnPageErrors(t, "desktop", errs)
		openDesktop(t, desk, st.base, 420, 900)
		waitJS(t, desk, `!document.querySelector('#qr-loopback').hidden`, 5*time.Second, "loopback hint")
		hint := evalJS[string](t, desk, `document.querySelector('#qr-loopback').textContent`)
		for _, w := range []string{"127.0.0.1", "--dev-allow-lan", "--addr :8080", "--public-url http://<laptop-ip>:8080"} {
			if !strings.Contains(hint, w) {
				t.Errorf("hint lacks %q: %q", w, hint)
			}
		}
		if !evalJS[bool](t, desk, `(() => { const r = document.querySelector('#qr-loopback').getBoundingClientRect(); return r.width > 0 && r.right <= innerWidth; })()`) {
			t.Error("the hint does not fit a 420 px desktop")
		}
	})
	t.Run("desktop at 127.0.0.1, LAN public URL", func(t *testing.T) {
		st, loopbackBase := startStackPublicHost(t, "clinic-laptop.test")
		browser := newBrowserMapping(t, "clinic-laptop.test")
		desk, deskErrs := newTab(t, browser, false)
		phone, phoneErrs := newTab(t, browser, true)
		failOnPageErrors(t, "desktop", deskErrs)
		failOnPageErrors(t, "phone", phoneErrs)
		mobileURL := openDesktop(t, desk, loopbackBase, 1280, 900)
		if !strings.HasPrefix(mobileURL, st.base+"/m/") {
			t.Fatalf("mobile link %q is not on the public URL %s", mobileURL, st.base)
		}
		waitJS(t, desk, `document.querySelector('#qr').complete && document.querySelector('#qr').naturalWidth > 0`, 10*time.Second, "QR shown")
		if !evalJS[bool](t, desk, `document.querySelector('#qr-loopback').hidden`) {
			t.Error("loopback hint shown for a LAN public URL")
		}
		openConfirmedPhone(t, phone, mobileURL)
		pickPhotos(t, phone, 1)
		must(t, chromedp.Do(phone, chromedp.Click(chromedp.CSS("#send"))), "send")
		waitJS(t, desk, `document.querySelector('#grid .card img')?.naturalWidth > 0`, 15*time.Second, "thumbnail shown")
		// Chromium asked for gzip; what came over the wire was smaller.
		gz := evalJS[bool](t, desk, `(() => { const e = performance.getEntriesByType('resource').find(r => r.name.endsWith('/static/desktop-photos.js'));
			return !!e && e.encodedBodySize > 0 && e.encodedBodySize < e.decodedBodySize; })()`)
		if !gz {
			t.Error("desktop-photos.js was not served compressed")
		}
	})
}
