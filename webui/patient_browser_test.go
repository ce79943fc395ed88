//go:build integration

package webui_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Issue 15, items 1 and 3 in a real browser: an unmistakable patient, and
// phone and desktop in step. The demo patient "Jane Sample" (NHI ZZZ0016,
// born 12 Mar 1960) is fictional.

// openDesk opens the desktop with the demo form's first patient and waits
// for its QR link and live socket; it returns the link.
func openDesk(t *testing.T, st *stack, desk context.Context) string {
	t.Helper()
	must(t, chromedp.Do(desk,
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(st.base+"/desktop"),
		chromedp.WaitVisible(chromedp.CSS("#dev-form")),
	), "open desktop")
	waitJS(t, desk, `document.querySelector('#dev-patient').options.length > 0`, 10*time.Second, "demo patients")
	must(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#dev-start"))), "start session")
	return waitLink(t, desk, "")
}

// waitLink waits for a mobile link other than old.
func waitLink(t *testing.T, desk context.Context, old string) string {
	t.Helper()
	waitJS(t, desk, `(() => { const v = document.querySelector('#mobile-link').value; return v.includes('/m/') && v !== `+jsString(old)+`; })()`,
		10*time.Second, "mobile link")
	waitJS(t, desk, `document.querySelector('#conn').dataset.state === 'live'`, 15*time.Second, "socket live")
	return evalJS[string](t, desk, `document.querySelector('#mobile-link').value`)
}

func jsString(s string) string { return "'" + strings.ReplaceAll(s, "'", "\\'") + "'" }

// openPhone opens a QR link on a phone-sized touch tab and waits for the
// confirm screen.
func openPhone(t *testing.T, phone context.Context, link string) {
	t.Helper()
	must(t, chromedp.Do(phone,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch),
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS("#confirm-yes")),
	), "open phone page")
}

func confirmPhone(t *testing.T, phone context.Context) {
	t.Helper()
	must(t, chromedp.Do(phone, chromedp.Click(chromedp.CSS("#confirm-yes")), chromedp.WaitVisible(chromedp.CSS("#take-photo"))), "confirm")
}

// noPageErrors fails the test on any page error of the tabs.
func noPageErrors(t *testing.T, tabs map[string]*pageErrors) {
	t.Cleanup(func() {
		for name, errs := range tabs {
			for _, e := range errs.list() {
				t.Errorf("%s: %s", name, e)
			}
		}
	})
}

// TestPatientIsUnmistakable: the phone shows name, NHI and DOB on every
// screen and asks for an explicit match with Yes not focused; a "No"
// raises a red alert on the desktop, clears "Phone connected", and
// disconnects that phone for good.
func TestPatientIsUnmistakable(t *testing.T) {
	st := startStack(t)
	browser := newBrowser(t)
	desk, deskErrs := newTab(t, browser, false)
	phone, phoneErrs := newTab(t, browser, true)
	noPageErrors(t, map[string]*pageErrors{"desktop": deskErrs, "phone": phoneErrs})

	link := openDesk(t, st, desk)
	for what, want := range map[string]string{
		`#patient [data-role="name"]`: "Jane Sample",
		`#patient [data-role="nhi"]`:  "NHI ZZZ0016",
		`#patient [data-role="dob"]`:  "Born 12 Mar 1960",
	} {
		if got := evalJS[string](t, desk, `document.querySelector('`+what+`').textContent`); got != want {
			t.Errorf("desktop header %s = %q, want %q", what, got, want)
		}
	}

	openPhone(t, phone, link)
	if got := evalJS[string](t, phone, `document.querySelector('#confirm-question').textContent`); got != "Is this Jane Sample, NHI ZZZ0016, born 12 Mar 1960?" {
		t.Errorf("confirm question = %q", got)
	}
	if evalJS[bool](t, phone, `document.activeElement === document.querySelector('#confirm-yes')`) {
		t.Error("Yes has the focus by default")
	}
	if got := evalJS[string](t, phone, `document.querySelector('#confirm-no').textContent`); got != "No, wrong patient" {
		t.Errorf("No button = %q", got)
	}
	checkPatientCard(t, phone)
	waitJS(t, desk, `!document.querySelector('#pair-connected').hidden`, 10*time.Second, "phone connected on the desktop")

	token := evalJS[string](t, phone, `JSON.parse(sessionStorage.getItem(Object.keys(sessionStorage)[0])).mobileToken`)
	must(t, chromedp.Do(phone, chromedp.Click(chromedp.CSS("#confirm-no")), chromedp.WaitVisible(chromedp.CSS(`[data-screen="declined"]`))), "say no")
	if got := evalJS[string](t, phone, `document.querySelector('[data-screen="declined"]').textContent`); !strings.Contains(got, "disconnected") {
		t.Errorf("declined screen does not say the phone was disconnected: %q", got)
	}
	waitJS(t, desk, `!document.querySelector('#phone-alert').hidden`, 10*time.Second, "red alert on the desktop")
	if got := evalJS[string](t, desk, `document.querySelector('#phone-alert').getAttribute('role')`); got != "alert" {
		t.Errorf("alert role = %q", got)
	}
	if got := evalJS[string](t, desk, `document.querySelector('#phone-alert').textContent`); !strings.Contains(got, "The phone said this is the wrong patient") {
		t.Errorf("alert text = %q", got)
	}
	waitJS(t, desk, `document.querySelector('#pair-connected').hidden && !document.querySelector('#pair-none').hidden`, 10*time.Second, "Phone connected gone")

	req, _ := http.NewRequest("GET", st.base+"/api/medtech/session/mobile", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	must(t, err, "mobile view with the revoked token")
	res.Body.Close()
	if res.StatusCode != http.StatusGone {
		t.Errorf("revoked phone's call: %d, want 410 phone_revoked", res.StatusCode)
	}
}

// checkPatientCard: the phone's patient card shows all three, large.
func checkPatientCard(t *testing.T, phone context.Context) {
	t.Helper()
	got := evalJS[string](t, phone, `(() => { const c = document.querySelector('#patient-card'); return c.hidden ? '' : c.textContent.replace(/\s+/g, ' ').trim(); })()`)
	for _, want := range []string{"Jane Sample", "NHI ZZZ0016", "Born 12 Mar 1960"} {
		if !strings.Contains(got, want) {
			t.Errorf("patient card %q lacks %q", got, want)
		}
	}
	if px := evalJS[float64](t, phone, `parseFloat(getComputedStyle(document.querySelector('.patient-card-name')).fontSize)`); px < 24 {
		t.Errorf("patient name is %v px, want large (>= 24)", px)
	}
}

// TestDesktopRefusesWithoutPatient: a hand-over without a name or NHI
// starts no session and says why on screen.
func TestDesktopRefusesWithoutPatient(t *testing.T) {
	st := startStack(t)
	browser := newBrowser(t)
	token := devToken(t, st.base)
	for name, frag := range map[string]url.Values{
		"no name": {"token": {token}, "patientId": {"demo-pt-777"}, "encounterId": {"enc-qa-777"}, "patientNhi": {"ZZZ0016"}},
		"no NHI":  {"token": {token}, "patientId": {"demo-pt-777"}, "encounterId": {"enc-qa-777"}, "patientDisplay": {"Jane Sample"}},
	} {
		t.Run(name, func(t *testing.T) {
			tab, errs := newTab(t, browser, true)
			noPageErrors(t, map[string]*pageErrors{"desktop": errs})
			must(t, chromedp.Do(tab, chromedp.Navigate(st.base+"/desktop#"+frag.Encode())), "open")
			waitJS(t, tab, `!document.querySelector('#patient-missing').hidden`, 10*time.Second, "refusal shown")
			text := evalJS[string](t, tab, `document.querySelector('#patient-missing').textContent`)
			if !strings.Contains(text, "Cannot start a photo session") {
				t.Errorf("refusal = %q", text)
			}
			if evalJS[bool](t, tab, `!document.querySelector('#pair').hidden || document.querySelector('#mobile-link').value !== ''`) {
				t.Error("a session was started without the patient")
			}
		})
	}
}

// TestTwoPhonesInStep: "Add another phone" never cuts off the first
// phone, whose next photo still arrives; the File button names the
// patient; a phone learns the desktop filed its photos, and that the
// desktop moved on to another patient, and stops offering capture.
func TestTwoPhonesInStep(t *testing.T) {
	st := startStack(t)
	browser := newBrowser(t)
	desk, deskErrs := newTab(t, browser, false)
	phone1, errs1 := newTab(t, browser, true)
	phone2, errs2 := newTab(t, browser, true)
	noPageErrors(t, map[string]*pageErrors{"desktop": deskErrs, "phone 1": errs1, "phone 2": errs2})
	photo := writePhoto(t, t.TempDir(), 1200, 900)

	link := openDesk(t, st, desk)
	openPhone(t, phone1, link)
	confirmPhone(t, phone1)
	waitJS(t, desk, `!document.querySelector('#pair-connected').hidden`, 10*time.Second, "phone 1 connected")
	if got := evalJS[string](t, desk, `document.querySelector('#another-phone').textContent`); got != "Add another phone" {
		t.Errorf("button = %q, want Add another phone", got)
	}
	must(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#another-phone"))), "add another phone")
	link2 := waitLink(t, desk, link)
	openPhone(t, phone2, link2)
	confirmPhone(t, phone2)

	sendPhoto(t, phone1, photo)
	waitJS(t, desk, `document.querySelectorAll('#grid .card').length === 1`, 10*time.Second, "phone 1's photo after phone 2 connected")
	sendPhoto(t, phone2, photo)
	waitJS(t, desk, `document.querySelectorAll('#grid .card').length === 2`, 10*time.Second, "phone 2's photo")
	waitJS(t, desk, `document.querySelector('#commit').textContent === 'File 2 photos to Jane Sample (ZZZ0016)'`, 10*time.Second, "File button names the patient")
	if got := evalJS[string](t, phone1, `document.querySelector('#done-text').textContent`); !strings.Contains(got, "on the GP's desktop now") {
		t.Errorf("done text = %q", got)
	}

	// The desktop removes a photo: the phone's count comes from the server.
	must(t, chromedp.Do(phone1, chromedp.Click(chromedp.CSS("#take-more")), chromedp.WaitVisible(chromedp.CSS("#take-photo"))), "take more")
	before := evalJS[string](t, phone1, `document.querySelector('#capture-hint').textContent`)
	// Remove asks to confirm with a second click.
	must(t, chromedp.Do(desk, chromedp.Evaluate[chromedp.Void](`(() => {
		const b = document.querySelector('#grid .card [data-role="remove"]');
		b.click();
		b.click();
	})()`)), "remove a photo")
	waitJS(t, desk, `document.querySelectorAll('#grid .card').length === 1`, 10*time.Second, "photo removed")
	visible := `document.dispatchEvent(new Event('visibilitychange'))`
	must(t, chromedp.Do(phone1, chromedp.Evaluate[chromedp.Void](visible)), "phone visible again")
	waitJS(t, phone1, `document.querySelector('#capture-hint').textContent !== `+jsString(before), 10*time.Second, "remaining refreshed: "+before)

	// The desktop files the photo: both phones learn it and stop.
	fileAll(t, desk)
	waitJS(t, desk, `[...document.querySelectorAll('#grid .card')].every(c => c.dataset.commit === 'committed')`, 20*time.Second, "filed")
	for name, phone := range map[string]context.Context{"phone 1": phone1, "phone 2": phone2} {
		must(t, chromedp.Do(phone, chromedp.Evaluate[chromedp.Void](visible)), name+" visible")
		waitJS(t, phone, `!document.querySelector('[data-screen="error"]').hidden && document.querySelector('#error-title').textContent === 'These photos have been filed'`,
			10*time.Second, name+" told the photos were filed")
		if evalJS[bool](t, phone, `!document.querySelector('#take-photo').closest('[data-screen]').hidden`) {
			t.Errorf("%s still offers capture", name)
		}
	}
}

// TestPhoneLearnsDesktopMovedOn: the GP's desktop starts a session for
// another patient; the first patient's phone says so and stops, and never
// says "on the GP's desktop now".
func TestPhoneLearnsDesktopMovedOn(t *testing.T) {
	st := startStack(t)
	browser := newBrowser(t)
	desk, deskErrs := newTab(t, browser, false)
	phone, phoneErrs := newTab(t, browser, true)
	noPageErrors(t, map[string]*pageErrors{"desktop": deskErrs, "phone": phoneErrs})

	link := openDesk(t, st, desk)
	openPhone(t, phone, link)
	confirmPhone(t, phone)

	// The same GP (dev provider) opens the next patient's record.
	frag := url.Values{
		"token": {devToken(t, st.base)}, "patientId": {"demo-pt-002"}, "encounterId": {"demo-enc-1002"},
		"patientDisplay": {"Aroha Testing"}, "patientNhi": {"ZZZ0024"}, "patientDob": {"1984-11-02"},
	}
	// A new page load, as when the host opens the widget for another record.
	must(t, chromedp.Do(desk, chromedp.Navigate("about:blank"), chromedp.Navigate(st.base+"/desktop#"+frag.Encode())), "desktop moves on")
	waitLink(t, desk, link)

	must(t, chromedp.Do(phone, chromedp.Evaluate[chromedp.Void](`document.dispatchEvent(new Event('visibilitychange'))`)), "phone visible")
	waitJS(t, phone, `document.querySelector('#error-title').textContent === "The GP's desktop has moved on" && !document.querySelector('[data-screen="error"]').hidden`,
		10*time.Second, "phone told the desktop moved on")
	checkPatientCard(t, phone)
	if strings.Contains(evalJS[string](t, phone, `document.body.textContent`), "desktop now,") {
		t.Error("the phone still says the photos are on the GP's desktop")
	}
}

// TestDesktopHeartbeat: a silent network drop (packets vanish, nothing is
// closed) shows as "Reconnecting…" within about 10 s, not "Live" for
// 35 s; when the network returns the pill is Live again.
func TestDesktopHeartbeat(t *testing.T) {
	st := startStack(t)
	browser := newBrowser(t)
	desk, deskErrs := newTab(t, browser, false)
	noPageErrors(t, map[string]*pageErrors{"desktop": deskErrs})
	openDesk(t, st, desk)

	st.proxy.silence()
	// The client's deadAfter is 10 s; 20 s is the generous bound.
	waitJS(t, desk, `['reconnecting', 'connecting'].includes(document.querySelector('#conn').dataset.state)`, 20*time.Second, "dead socket shown")
	if got := evalJS[string](t, desk, `document.querySelector('#conn-text').textContent`); got == "Live" {
		t.Errorf("pill says %q after a silent drop", got)
	}
	st.proxy.restore()
	waitJS(t, desk, `document.querySelector('#conn').dataset.state === 'live'`, 40*time.Second, "live again")
}
