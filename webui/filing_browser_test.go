//go:build integration

package webui_test

// Browser tests of issue 15's filing slice: the deletion countdown and its
// warnings, the last-resort download, a session that is gone, and bounded
// filing against a hanging ALEX with Cancel, Retry and readable refusals.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/handoff-health/handoff/internal/alex/alextest"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/config"
	"github.com/handoff-health/handoff/internal/testutil"
	"github.com/handoff-health/handoff/server"
)

const filingSecret = "filing-browser-secret-0123456789abcdef"

// filingStack is a server on embedded defaults, changed by mutate, behind
// the test proxy.
type filingStack struct {
	base string
	srv  *server.Server
}

func startFilingStack(t *testing.T, mutate func(*config.Config)) *filingStack {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err, "listen")
	proxy := startProxy(t, l.Addr().String())
	var cfg config.Config
	fs := flag.NewFlagSet("handoff", flag.ContinueOnError)
	must(t, config.Register(fs, &cfg).Parse(nil), "config")
	cfg.Addr = l.Addr().String()
	cfg.PublicURL = "http://" + proxy.addr()
	cfg.DataDir = t.TempDir()
	cfg.RedisAddrs, cfg.S3Bucket, cfg.ALEXBaseURL, cfg.AblyKey, cfg.HostOrigins = "", "", "", "", ""
	cfg.JWTSecret = filingSecret
	cfg.LogLevel = "warn"
	mutate(&cfg)
	srv := serveNode(t, cfg, l)
	return &filingStack{base: cfg.PublicURL, srv: srv}
}

// openDesktop opens the widget as a host application would (JWT and
// patient in the fragment) and waits for its session; it returns the
// mobile link.
func (st *filingStack) openDesktop(t *testing.T, desk context.Context, width int64) string {
	t.Helper()
	v, err := auth.NewVerifier([]byte(filingSecret))
	must(t, err, "verifier")
	tok, err := v.Issue(auth.Claims{Facility: "F-FILING", Provider: "prov-1", Expires: time.Now().Add(time.Hour)})
	must(t, err, "issue JWT")
	frag := url.Values{"token": {tok}, "patientId": {"pt-filing-1"}, "encounterId": {"enc-" + uuid.NewString()[:8]},
		"patientDisplay": {"Aroha Test"}, "patientNhi": {"ZZZ0032"}, "patientDob": {"1970-01-01"}}
	must(t, chromedp.Do(desk,
		chromedp.EmulateViewport(width, 900),
		chromedp.Navigate(st.base+"/desktop#"+frag.Encode()),
	), "open desktop")
	waitJS(t, desk, `document.querySelector('#mobile-link').value.includes('/m/')`, 15*time.Second, "mobile link")
	waitJS(t, desk, `document.querySelector('#conn').dataset.state === 'live'`, 15*time.Second, "socket live")
	return evalJS[string](t, desk, `document.querySelector('#mobile-link').value`)
}

// phoneAPI is a phone driven through the API (claim, presign, upload,
// register), so these desktop tests do not depend on the phone's screens.
type phoneAPI struct {
	t      *testing.T
	base   string
	mobile string
}

func claimPhone(t *testing.T, base, mobileURL string) *phoneAPI {
	t.Helper()
	token := mobileURL[strings.LastIndex(mobileURL, "/m/")+3:]
	var c struct {
		MobileToken string `json:"mobileToken"`
	}
	apiJSON(t, "GET", base+"/api/medtech/session/tokens/"+token, "", nil, &c)
	return &phoneAPI{t: t, base: base, mobile: c.MobileToken}
}

// send uploads one JPEG and registers it; it returns the image id.
func (p *phoneAPI) send(seed byte) string {
	p.t.Helper()
	id := uuid.NewString()
	data := testutil.JPEG(p.t, seed)
	var pre struct {
		Method  string            `json:"method"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
		Key     string            `json:"key"`
	}
	apiJSON(p.t, "POST", p.base+"/api/medtech/session/presigned-url", p.mobile,
		map[string]any{"imageId": id, "contentType": "image/jpeg", "size": len(data)}, &pre)
	req, err := http.NewRequest(pre.Method, pre.URL, bytes.NewReader(data))
	must(p.t, err, "upload request")
	for k, v := range pre.Headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	must(p.t, err, "upload")
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		p.t.Fatalf("upload: %d", res.StatusCode)
	}
	apiJSON(p.t, "POST", p.base+"/api/medtech/session/images", p.mobile, map[string]any{
		"imageId": id, "key": pre.Key,
		"metadata": map[string]any{"laterality": "left",
			"bodySite": map[string]string{"system": "http://snomed.info/sct", "code": "14975008", "display": "Forearm"}},
	}, nil)
	return id
}

func apiJSON(t *testing.T, method, u, bearer string, body, out any) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		must(t, err, "marshal")
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, u, rd)
	must(t, err, "request")
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	must(t, err, method+" "+u)
	defer res.Body.Close()
	if res.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d", method, u, res.StatusCode)
	}
	if out != nil {
		must(t, json.NewDecoder(res.Body).Decode(out), "decode")
	}
}

func checkNoPageErrors(t *testing.T, errs *pageErrors) {
	t.Cleanup(func() {
		for _, e := range errs.list() {
			if strings.Contains(e, "status of 404") && strings.Contains(e, "/api/medtech/session/") {
				continue // the session the test ended: the page is told so by a 404
			}
			t.Errorf("desktop page: %s", e)
		}
	})
}

// Issue 15: unfiled photos expired silently. The desktop now says when
// they will be deleted; within 15 minutes it warns (a polite status), within
// 5 it alerts (role="alert"), and it offers "Download unfiled photos",
// which saves the photo itself. The session lifetime is set to its
// shortest (10 min, the QR code's lifetime), so the warning shows at once;
// for the alert the page's clock runs 6 minutes ahead (a fake clock), at
// 1280 px and 420 px.
func TestDesktopExpiryWarningAndDownload(t *testing.T) {
	for _, c := range []struct {
		name  string
		ahead time.Duration
		width int64
		level string
		role  string
	}{
		{"warning at 1280px", 0, 1280, "warn", "status"},
		{"alert at 420px", 6 * time.Minute, 420, "alert", "alert"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := startFilingStack(t, func(cfg *config.Config) { cfg.SessionTTL = 10 * time.Minute })
			desk, errs := newTab(t, newBrowser(t), false)
			checkNoPageErrors(t, errs)
			if c.ahead > 0 {
				_, err := chromedp.Call(desk, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
					Source: `(() => { const real = Date.now.bind(Date); Date.now = () => real() + ` + itoa(int(c.ahead.Milliseconds())) + `; })()`})
				must(t, err, "fake clock")
			}
			dir := t.TempDir()
			_, err := chromedp.Call(desk, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir})
			must(t, err, "allow downloads")
			phone := claimPhone(t, st.base, st.openDesktop(t, desk, c.width))
			phone.send(1)
			waitJS(t, desk, `document.querySelectorAll('#grid .card').length === 1`, 15*time.Second, "photo on the desktop")
			waitJS(t, desk, `!document.querySelector('#expiry').hidden`, 15*time.Second, "expiry notice")
			testutil.Check(t, "level", c.level, evalJS[string](t, desk, `document.querySelector('#expiry').dataset.level`))
			testutil.Check(t, "role", c.role, evalJS[string](t, desk, `document.querySelector('#expiry').getAttribute('role')`))
			text := evalJS[string](t, desk, `document.querySelector('#expiry-text').textContent`)
			if !strings.Contains(text, "1 photo not filed will be deleted at") {
				t.Errorf("notice %q does not say when the photo will be deleted", text)
			}
			if !evalJS[bool](t, desk, `document.querySelector('#volatile').hidden === false`) {
				t.Error("memory mode: the desktop does not say a restart loses unfiled photos")
			}
			must(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#download-unfiled"))), "download")
			waitJS(t, desk, `document.querySelector('#announcer').textContent.includes('downloaded')`, 15*time.Second, "download announced")
			testutil.Eventually(t, "the photo downloaded", func() bool {
				b, err := os.ReadFile(filepath.Join(dir, "wound-photo-1.jpg"))
				return err == nil && len(b) > 2 && b[0] == 0xFF && b[1] == 0xD8
			})
		})
	}
}

// Issue 15: after a session expired, its card and an enabled "File 1
// photo" button remained, and filing gave "no such capture session" plus a
// retry prompt that could not work. Here the server forgets the session
// (as the sweeper or a restart does) and the GP presses File: the page
// says the session ended and its photos were deleted, and every action on
// it is disabled; the only action offered is a new session.
func TestDesktopSessionGone(t *testing.T) {
	st := startFilingStack(t, func(*config.Config) {})
	desk, errs := newTab(t, newBrowser(t), false)
	checkNoPageErrors(t, errs)
	phone := claimPhone(t, st.base, st.openDesktop(t, desk, 1280))
	phone.send(2)
	waitJS(t, desk, `document.querySelectorAll('#grid .card').length === 1`, 15*time.Second, "photo on the desktop")
	sessionID := evalJS[string](t, desk, `document.body.dataset.sessionId`)
	must(t, st.srv.Sessions().Remove(context.Background(), sessionID), "remove the session")

	must(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#commit"))), "press File")
	waitJS(t, desk, `!document.querySelector('#banner').hidden && document.querySelector('#banner-text').textContent.includes('ended')`,
		15*time.Second, "the page says the session ended")
	banner := evalJS[string](t, desk, `document.querySelector('#banner-text').textContent`)
	if !strings.Contains(banner, "deleted") {
		t.Errorf("banner %q does not say the unfiled photo was deleted", banner)
	}
	testutil.Check(t, "banner action", "Start a new session", evalJS[string](t, desk, `document.querySelector('#banner-action').textContent`))
	for what, expr := range map[string]string{
		"File button disabled":  `document.querySelector('#commit').disabled`,
		"no Retry":              `document.querySelector('#grid .card [data-role="retry"]').hidden`,
		"no Remove":             `document.querySelector('#grid .card [data-role="remove"]').hidden`,
		"body site locked":      `document.querySelector('#grid .card [data-role="bodysite"]').disabled`,
		"no expiry notice":      `document.querySelector('#expiry').hidden`,
		"card says it ended":    `document.querySelector('#grid .card [data-role="state"]').textContent.includes('ended')`,
		"no failure next step":  `document.querySelector('#grid .card [data-role="next"]').hidden`,
		"banner is an alert":    `document.querySelector('#banner').getAttribute('role') === 'alert'`,
		"File says it is ended": `document.querySelector('#commit').textContent === 'Session ended'`,
	} {
		if !evalJS[bool](t, desk, expr) {
			t.Errorf("%s: %s is false", what, expr)
		}
	}
}

// Issue 15: a hanging ALEX blocked filing for 125.7 s with no cancel, and
// ALEX's raw text was shown. With --commit-wait 1s: the hanging photo
// shows "Still filing in the background…" with Cancel while the other
// photo's refusal reads in plain words with a next step and ALEX's text
// collapsed for the IT person; Cancel makes the photo Retry-able, and
// Retry files it.
func TestDesktopBoundedFiling(t *testing.T) {
	fake := alextest.NewServer(t, alextest.Options{})
	st := startFilingStack(t, func(cfg *config.Config) {
		cfg.ALEXBaseURL, cfg.ALEXTokenURL = fake.URL(), fake.TokenURL()
		cfg.ALEXClientID, cfg.ALEXClientSecret, cfg.ALEXScope = fake.ClientID(), fake.ClientSecret(), fake.Scope()
		cfg.CommitWait = time.Second
	})
	desk, errs := newTab(t, newBrowser(t), false)
	checkNoPageErrors(t, errs)
	phone := claimPhone(t, st.base, st.openDesktop(t, desk, 1280))
	card := func(id string) string { return `document.querySelector('#grid .card[data-image-id="` + id + `"]')` }
	stateOf := func(id string) string {
		return evalJS[string](t, desk, card(id)+`.querySelector('[data-role="state"]').textContent`)
	}

	hanging := phone.send(3)
	waitJS(t, desk, `document.querySelectorAll('#grid .card').length === 1`, 15*time.Second, "first photo")
	fake.StallNext(1)
	must(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#commit"))), "press File")
	waitJS(t, desk, card(hanging)+`.dataset.background === 'true'`, 20*time.Second, "background filing")
	if s := stateOf(hanging); !strings.Contains(s, "Still filing in the background") {
		t.Errorf("hanging photo reads %q", s)
	}
	if evalJS[bool](t, desk, card(hanging)+`.querySelector('[data-role="cancel"]').hidden`) {
		t.Error("no Cancel on the photo filing in the background")
	}

	// Another photo files meanwhile: ALEX refuses it, in plain words.
	refused := phone.send(4)
	waitJS(t, desk, `document.querySelectorAll('#grid .card').length === 2`, 15*time.Second, "second photo")
	sessionID := evalJS[string](t, desk, `document.body.dataset.sessionId`)
	const diag = "Media.subject: RAW-ALEX-TEXT patient record is inactive"
	fake.RejectIdentifier(sessionID+"."+refused, diag)
	if evalJS[bool](t, desk, `document.querySelector('#commit').disabled`) {
		t.Fatal("File is disabled while one photo files in the background: the other cannot be filed")
	}
	must(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#commit"))), "press File for the second photo")
	waitJS(t, desk, card(refused)+`.dataset.commit === 'failed'`, 20*time.Second, "refusal shown")
	if s := stateOf(refused); strings.Contains(s, "RAW-ALEX-TEXT") || !strings.Contains(s, "record rule") {
		t.Errorf("refusal reads %q: want plain words, not ALEX's text", s)
	}
	next := evalJS[string](t, desk, card(refused)+`.querySelector('[data-role="next"]').textContent`)
	if !strings.Contains(next, "Retry") {
		t.Errorf("next step %q", next)
	}
	if evalJS[bool](t, desk, card(refused)+`.querySelector('[data-role="details"]').open`) {
		t.Error("ALEX's details are shown open; they belong collapsed")
	}
	if !strings.Contains(evalJS[string](t, desk, card(refused)+`.querySelector('[data-role="details-text"]').textContent`), "RAW-ALEX-TEXT") {
		t.Error("ALEX's text is not kept for the IT person")
	}
	if s := stateOf(hanging); !strings.Contains(s, "Still filing in the background") {
		t.Errorf("while the other photo filed, the hanging one reads %q", s)
	}

	must(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS(`#grid .card[data-image-id="`+hanging+`"] [data-role="cancel"]`))), "Cancel")
	waitJS(t, desk, card(hanging)+`.dataset.commit === 'failed'`, 20*time.Second, "cancelled photo")
	if s := stateOf(hanging); !strings.Contains(s, "cancelled") {
		t.Errorf("the cancelled photo reads %q", s)
	}
	if evalJS[bool](t, desk, card(hanging)+`.querySelector('[data-role="retry"]').hidden`) {
		t.Error("no Retry on the cancelled photo")
	}
	must(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS(`#grid .card[data-image-id="`+hanging+`"] [data-role="retry"]`))), "Retry")
	waitJS(t, desk, card(hanging)+`.dataset.commit !== 'failed'`, 20*time.Second, "Retry started")
	_, err := chromedp.Run(desk, chromedp.Poll[bool](card(hanging)+`.dataset.commit === 'committed'`, chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		t.Fatalf("retried photo not filed: it reads %q", stateOf(hanging))
	}
	testutil.Check(t, "Media at ALEX", 1, len(fake.Media()))
}
