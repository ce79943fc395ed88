//go:build integration

package webui_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image/jpeg"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/handoff-health/handoff/internal/testutil"
)

// TestEndToEnd is the GP's job in a real browser against a real server
// (server.New in dev mode: memory hub, local blobs, ALEX outbox):
//
//  1. the desktop page starts a session from the demo form and shows the
//     QR link;
//  2. a phone (its own browser context, phone viewport) opens the link,
//     confirms the patient, picks a 3000×2000 JPEG carrying EXIF GPS and
//     Orientation=6, and sends it;
//  3. the photo appears on the desktop without a reload; the stored image
//     is upright (1365×2048), at most 2048 px, and has no EXIF;
//  4. the desktop's socket is cut and new sockets refused; the phone sends
//     a second photo during the gap; when the network returns the desktop
//     resumes (no reload) and shows it;
//  5. the desktop sets side and body site and files both photos; the
//     cards show "filed" and the outbox holds a Media per photo with the
//     body site and image bytes free of EXIF.
//
// Every uncaught exception, console error and CSP violation on either page
// fails the test.
func TestEndToEnd(t *testing.T) {
	st := startStack(t)
	browser := newBrowser(t)
	desk, deskErrs := newTab(t, browser, false)
	phone, phoneErrs := newTab(t, browser, true)
	t.Cleanup(func() {
		for _, e := range deskErrs.list() {
			t.Errorf("desktop page: %s", e)
		}
		for _, e := range phoneErrs.list() {
			t.Errorf("phone page: %s", e)
		}
	})
	photo := writePhoto(t, t.TempDir(), 3000, 2000)

	// 1. Desktop: demo form → session → QR link, socket live.
	must(t, chromedp.Do(desk,
		chromedp.EmulateViewport(520, 900),
		chromedp.Navigate(st.base+"/desktop"),
		chromedp.WaitVisible(chromedp.CSS("#dev-form")),
	), "open desktop")
	waitJS(t, desk, `document.querySelector('#dev-patient').options.length > 0`, 10*time.Second, "demo patients")
	must(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#dev-start"))), "start session")
	waitJS(t, desk, `document.querySelector('#mobile-link').value.includes('/m/')`, 10*time.Second, "mobile link")
	waitJS(t, desk, `document.querySelector('#qr').complete && document.querySelector('#qr').naturalWidth > 0`, 10*time.Second, "QR image")
	waitJS(t, desk, `document.querySelector('#conn').dataset.state === 'live'`, 10*time.Second, "socket live")
	mobileURL := evalJS[string](t, desk, `document.querySelector('#mobile-link').value`)
	if !strings.HasPrefix(mobileURL, st.base+"/m/") {
		t.Fatalf("mobile link is not on %s/m/", st.base)
	}
	must(t, chromedp.Do(desk, chromedp.Evaluate[chromedp.Void](`window.__sameDocument = true`)), "mark document")

	// 2. Phone: claim, confirm, pick, send.
	must(t, chromedp.Do(phone,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch),
		chromedp.Navigate(mobileURL),
		chromedp.WaitVisible(chromedp.CSS("#confirm-yes")),
	), "open phone page")
	if got := evalJS[string](t, phone, `document.querySelector('#confirm-patient').textContent`); got != "Jane Sample" {
		t.Errorf("phone asks about %q, want Jane Sample", got)
	}
	must(t, chromedp.Do(phone,
		chromedp.Click(chromedp.CSS("#confirm-yes")),
		chromedp.WaitVisible(chromedp.CSS("#take-photo")),
	), "confirm patient")
	sendPhoto(t, phone, photo)

	// 3. Desktop: the photo arrives live; the stored image is clean.
	waitJS(t, desk, `document.querySelectorAll('#grid .card').length === 1`, 10*time.Second, "photo on the desktop")
	waitJS(t, desk, `!document.querySelector('#pair-connected').hidden`, 5*time.Second, "phone connected")
	waitJS(t, desk, `document.querySelector('#grid .card img').naturalWidth > 0`, 10*time.Second, "thumbnail loaded")
	stored := httpGet(t, evalJS[string](t, desk, `document.querySelector('#grid .card img').src`))
	checkCleanJPEG(t, "stored image", stored)

	// 4. Cut the desktop's socket; a photo sent during the gap still shows.
	if n := st.proxy.cut(); n == 0 {
		t.Fatal("no realtime socket to cut")
	}
	waitJS(t, desk, `document.querySelector('#conn').dataset.state === 'reconnecting'`, 10*time.Second, "reconnecting shown")
	must(t, chromedp.Do(phone, chromedp.Click(chromedp.CSS("#take-more"))), "take more")
	sendPhoto(t, phone, photo)
	if evalJS[int](t, desk, `document.querySelectorAll('#grid .card').length`) != 1 {
		t.Fatal("the desktop saw the second photo while its socket was down; the cut did not work")
	}
	st.proxy.restore()
	waitJS(t, desk, `document.querySelector('#conn').dataset.state === 'live'`, 30*time.Second, "socket live again")
	waitJS(t, desk, `document.querySelectorAll('#grid .card').length === 2`, 10*time.Second, "gap photo on the desktop")
	if !evalJS[bool](t, desk, `window.__sameDocument === true`) {
		t.Error("the desktop page reloaded")
	}

	// 5. Side and body site on the first photo, then file both.
	must(t, chromedp.Do(desk, chromedp.Evaluate[chromedp.Void](`(() => {
		const card = document.querySelector('#grid .card');
		for (const [role, value] of [['laterality', 'left'], ['bodysite', '14975008']]) {
			const s = card.querySelector('[data-role="' + role + '"]');
			s.value = value;
			s.dispatchEvent(new Event('change', {bubbles: true}));
		}
	})()`)), "set body site")
	waitJS(t, desk, `document.querySelector('#grid .card [data-role="save"]').textContent === 'Saved'`, 10*time.Second, "metadata saved")
	firstID := evalJS[string](t, desk, `document.querySelector('#grid .card').dataset.imageId`)
	fileAll(t, desk) // answers the no-site prompt (issue 15) if it comes
	waitJS(t, desk, `[...document.querySelectorAll('#grid .card')].every(c => c.dataset.commit === 'committed')`, 20*time.Second, "photos filed")
	if s := evalJS[string](t, desk, `document.querySelector('#grid .card [data-role="state"]').textContent`); !strings.Contains(s, "Filed to record") {
		t.Errorf("card state = %q", s)
	}

	media := readOutbox(t, st.dataDir, firstID)
	if len(media.BodySite.Coding) != 1 || media.BodySite.Coding[0].Code != "14975008" ||
		media.BodySite.Coding[0].System != "http://snomed.info/sct" {
		t.Errorf("outbox bodySite = %+v, want SNOMED 14975008", media.BodySite)
	}
	if !strings.Contains(strings.ToLower(media.BodySite.Text), "left") {
		t.Errorf("outbox bodySite.text = %q, want the side in it", media.BodySite.Text)
	}
	if media.Subject.Reference != "Patient/demo-pt-001" {
		t.Errorf("outbox subject = %q", media.Subject.Reference)
	}
	data, err := base64.StdEncoding.DecodeString(media.Content.Data)
	must(t, err, "outbox base64")
	checkCleanJPEG(t, "outbox image", data)
}

// sendPhoto picks photo on the phone's capture screen and sends it.
func sendPhoto(t *testing.T, phone context.Context, photo string) {
	t.Helper()
	must(t, chromedp.Do(phone,
		chromedp.WaitVisible(chromedp.CSS("#take-photo")),
		chromedp.SetUploadFiles(chromedp.CSS("#camera"), []string{photo}),
	), "pick photo")
	waitJS(t, phone, `document.querySelector('.review-item')?.dataset.state === 'ready'`, 20*time.Second, "photo prepared")
	must(t, chromedp.Do(phone, chromedp.Click(chromedp.CSS("#send"))), "send")
	waitJS(t, phone, `!document.querySelector('[data-screen="done"]').hidden`, 30*time.Second, "phone says sent")
}

func httpGet(t *testing.T, url string) []byte {
	t.Helper()
	res, err := http.Get(url)
	must(t, err, "GET image")
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	must(t, err, "read image")
	if res.StatusCode != 200 {
		t.Fatalf("GET image: %d", res.StatusCode)
	}
	return b
}

// checkCleanJPEG: a JPEG without EXIF, shrunk to 2048 px on the long edge
// and turned upright (the test photo is 3000×2000 with Orientation=6).
func checkCleanJPEG(t *testing.T, what string, b []byte) {
	t.Helper()
	if hasExif(b) || bytes.Contains(b, []byte("Exif\x00\x00")) {
		t.Errorf("%s still carries EXIF", what)
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s is not a JPEG: %v", what, err)
	}
	testutil.Check(t, what+" width (shrunk, upright)", 1365, cfg.Width)
	testutil.Check(t, what+" height (shrunk, upright)", 2048, cfg.Height)
}

type outboxMedia struct {
	Subject struct {
		Reference string `json:"reference"`
	} `json:"subject"`
	BodySite struct {
		Coding []struct{ System, Code, Display string } `json:"coding"`
		Text   string                                   `json:"text"`
	} `json:"bodySite"`
	Content struct {
		ContentType string `json:"contentType"`
		Data        string `json:"data"`
	} `json:"content"`
}

func readOutbox(t *testing.T, dataDir, imageID string) outboxMedia {
	t.Helper()
	// Files are named media-<sessionId>.<imageId>.json.
	files, err := filepath.Glob(filepath.Join(dataDir, "alex-outbox", "media-*."+imageID+".json"))
	must(t, err, "outbox glob")
	if len(files) != 1 {
		t.Fatalf("%d outbox files for the image, want 1", len(files))
	}
	b, err := os.ReadFile(files[0])
	must(t, err, "outbox file")
	var m outboxMedia
	must(t, json.Unmarshal(b, &m), "outbox JSON")
	return m
}
