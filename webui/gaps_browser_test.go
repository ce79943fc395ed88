//go:build integration

package webui_test

// Browser tests of issue 15's last gaps: the desktop's sticky File bar
// never covers a card's Retry or Remove; Retry asks about a missing body
// site as File does; the phone's "session ended" screen.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/handoff-health/handoff/internal/alex/alextest"
	"github.com/handoff-health/handoff/internal/config"
	"github.com/handoff-health/handoff/internal/testutil"
)

// startALEXStack is a filing stack whose ALEX is the fake.
func startALEXStack(t *testing.T) (*filingStack, *alextest.Server) {
	t.Helper()
	fake := alextest.NewServer(t, alextest.Options{})
	st := startFilingStack(t, func(cfg *config.Config) {
		cfg.ALEXBaseURL, cfg.ALEXTokenURL = fake.URL(), fake.TokenURL()
		cfg.ALEXClientID, cfg.ALEXClientSecret, cfg.ALEXScope = fake.ClientID(), fake.ClientSecret(), fake.Scope()
	})
	return st, fake
}

// clearAt is JS that is true when a tap at the centre of the element sel
// hits that element (not a sticky bar over it) and the centre is inside
// the viewport.
func clearAt(sel string) string {
	return `(() => {
		const el = document.querySelector(` + jsString(sel) + `);
		const r = el.getBoundingClientRect();
		const x = r.left + r.width / 2, y = r.top + r.height / 2;
		if (y < 0 || y > innerHeight || x < 0 || x > innerWidth) return false;
		const hit = document.elementFromPoint(x, y);
		return hit === el || el.contains(hit);
	})()`
}

// TestGapsStickyBarNeverCoversCard: with enough photos to scroll, the last
// card's Retry and Remove, scrolled into view (block end, nearest) or
// focused, are what a click at their centre hits, at 1280×900 and
// 420×900; and a click on Retry while the File bar lies over it (the
// GP scrolled there by hand) still presses Retry, not the bar.
func TestGapsStickyBarNeverCoversCard(t *testing.T) {
	st, fake := startALEXStack(t)
	desk, errs := newTab(t, newBrowser(t), false)
	checkNoPageErrors(t, errs)
	phone := claimPhone(t, st.base, st.openDesktop(t, desk, 1280))
	const n = 8
	var last string
	for i := range n {
		last = phone.send(byte(10 + i))
	}
	waitJS(t, desk, fmt.Sprintf(`document.querySelectorAll('#grid .card').length === %d`, n), 20*time.Second, "photos on the desktop")
	sessionID := evalJS[string](t, desk, `document.body.dataset.sessionId`)
	fake.RejectIdentifier(sessionID+"."+last, "Media.subject: patient record is inactive")
	fileAll(t, desk)
	card := `#grid .card[data-image-id="` + last + `"]`
	waitJS(t, desk, `document.querySelector(`+jsString(card)+`).dataset.commit === 'failed'`, 30*time.Second, "the last photo refused")
	testutil.Check(t, "the refused photo is the last card", last, evalJS[string](t, desk, `[...document.querySelectorAll('#grid .card')].at(-1).dataset.imageId`))

	for _, width := range []int64{1280, 420} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			must(t, chromedp.Do(desk, chromedp.EmulateViewport(width, 900)), "viewport")
			waitJS(t, desk, `document.documentElement.scrollHeight > innerHeight + 300`, 5*time.Second, "a page that scrolls")
			for _, btn := range []string{"retry", "remove"} {
				sel := card + ` [data-role="` + btn + `"]`
				for _, scroll := range []string{`scrollIntoView({block: 'end'})`, `scrollIntoView({block: 'nearest'})`, `focus()`} {
					must(t, chromedp.Do(desk, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0); document.querySelector(`+jsString(sel)+`).`+scroll)), scroll)
					if !evalJS[bool](t, desk, clearAt(sel)) {
						t.Errorf("%s after %s: a click at its centre hits %s", btn, scroll,
							evalJS[string](t, desk, `(() => { const r = document.querySelector(`+jsString(sel)+`).getBoundingClientRect();
								const h = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2); return h ? h.outerHTML.slice(0, 80) : 'nothing'; })()`))
					}
				}
			}

			// Put Retry under the File bar, as scrolling by hand can, then
			// click it as a test driver does (scroll into view if needed,
			// click at the centre): Retry files the photo again.
			retry := card + ` [data-role="retry"]`
			must(t, chromedp.Do(desk, chromedp.Evaluate[chromedp.Void](`(() => {
				const r = document.querySelector(`+jsString(retry)+`).getBoundingClientRect();
				const bar = document.querySelector('#commit-bar').getBoundingClientRect();
				window.scrollBy(0, (r.top + r.height / 2) - (bar.top + bar.height / 2));
			})()`)), "Retry under the bar")
			if evalJS[bool](t, desk, clearAt(retry)) {
				t.Fatal("set-up: Retry is not under the File bar")
			}
			before := fake.MediaRequests()
			must(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS(retry))), "click Retry")
			testutil.Eventually(t, "Retry filed the photo again", func() bool { return fake.MediaRequests() > before })
			waitJS(t, desk, `document.querySelector(`+jsString(card)+`).dataset.commit === 'failed'`, 30*time.Second, "refused again")
		})
	}
}

// TestGapsRetryAsksForSite: Retry on a photo that has no body site asks
// the same "no site" question as File: "Add body sites" files nothing and
// puts focus on the photo's site; "File without site" files it; with a
// site, Retry files without asking.
func TestGapsRetryAsksForSite(t *testing.T) {
	st, fake := startALEXStack(t)
	desk, errs := newTab(t, newBrowser(t), false)
	checkNoPageErrors(t, errs)
	phone := claimPhone(t, st.base, st.openDesktop(t, desk, 1280))
	id := phone.send(30)
	waitJS(t, desk, `document.querySelectorAll('#grid .card').length === 1`, 15*time.Second, "photo on the desktop")
	fake.RejectIdentifier(evalJS[string](t, desk, `document.body.dataset.sessionId`)+"."+id, "Media.subject: patient record is inactive")
	card := `document.querySelector('#grid .card')`
	failed := card + `.dataset.commit === 'failed'`
	fileAll(t, desk)
	waitJS(t, desk, failed, 30*time.Second, "photo refused")

	// The GP clears the site, then presses Retry.
	setField(t, desk, 0, "bodysite", "", "input", "change")
	waitJS(t, desk, card+`.querySelector('[data-role="save"]').textContent === 'Saved'`, 10*time.Second, "site cleared and saved")
	retry := `#grid .card [data-role="retry"]`
	before := fake.MediaRequests()
	must(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS(retry))), "Retry")
	waitJS(t, desk, `document.querySelector('#nosite-dialog').open`, 5*time.Second, "the no-site prompt")
	if text := evalJS[string](t, desk, `document.querySelector('#nosite-text').textContent`); !strings.Contains(text, "Photo 1 has no body site") {
		t.Errorf("prompt says %q", text)
	}
	testutil.Check(t, "focus in the prompt", "nosite-add", evalJS[string](t, desk, `document.activeElement.id`))
	must(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#nosite-add"))), "Add body sites")
	waitJS(t, desk, `!document.querySelector('#nosite-dialog').open`, 5*time.Second, "prompt closed")
	if !evalJS[bool](t, desk, failed) {
		t.Errorf("after Add body sites the photo reads %q; want it left as it was", evalJS[string](t, desk, card+`.dataset.commit`))
	}
	if !evalJS[bool](t, desk, `document.activeElement === `+card+`.querySelector('[data-role="bodysite"]')`) {
		t.Error("focus is not on the photo's body site")
	}
	testutil.Check(t, "Media requests after Add body sites", before, fake.MediaRequests())

	// Retry again and file without a site, as the GP chose.
	must(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS(retry))), "Retry again")
	waitJS(t, desk, `document.querySelector('#nosite-dialog').open`, 5*time.Second, "the no-site prompt again")
	must(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#nosite-file"))), "File without site")
	testutil.Eventually(t, "filed without a site", func() bool { return fake.MediaRequests() > before })
	waitJS(t, desk, failed, 30*time.Second, "refused again")

	// With a site, Retry does not ask.
	setField(t, desk, 0, "bodysite", "Sacrum", "input", "change")
	waitJS(t, desk, card+`.querySelector('[data-role="save"]').textContent === 'Saved'`, 10*time.Second, "site saved")
	before = fake.MediaRequests()
	must(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS(retry))), "Retry with a site")
	testutil.Eventually(t, "filed with a site", func() bool { return fake.MediaRequests() > before })
	if evalJS[bool](t, desk, `document.querySelector('#nosite-dialog').open`) {
		t.Error("Retry asked about a site the photo has")
	}
}

// TestGapsPhoneSessionExpired: a phone holding two chosen, unsent photos
// whose session the server no longer has (expired and swept) learns it at
// its next status check (here: the page becoming visible again). It says
// the session has ended and that the 2 photos were not sent, and offers
// no capture and no send.
func TestGapsPhoneSessionExpired(t *testing.T) {
	st := startFilingStack(t, func(*config.Config) {})
	browser := newBrowser(t)
	desk, deskErrs := newTab(t, browser, false)
	phone, phoneErrs := newTab(t, browser, true)
	checkNoPageErrors(t, deskErrs)
	t.Cleanup(func() {
		for _, e := range phoneErrs.list() {
			if strings.Contains(e, "status of 401") && strings.Contains(e, "/api/medtech/session/mobile") {
				continue // the status check that finds the session gone
			}
			t.Errorf("phone page: %s", e)
		}
	})
	openConfirmedPhone(t, phone, st.openDesktop(t, desk, 1280))
	pickPhotos(t, phone, 2)

	sessionID := evalJS[string](t, desk, `document.body.dataset.sessionId`)
	must(t, st.srv.Sessions().Remove(context.Background(), sessionID), "remove the session")
	must(t, chromedp.Do(phone, chromedp.Evaluate[chromedp.Void](`document.dispatchEvent(new Event('visibilitychange'))`)), "phone visible")

	waitJS(t, phone, `!document.querySelector('[data-screen="error"]').hidden`, 10*time.Second, "the ended screen")
	testutil.Check(t, "title", "This photo session has ended", evalJS[string](t, phone, `document.querySelector('#error-title').textContent`))
	if text := evalJS[string](t, phone, `document.querySelector('#error-text').textContent`); !strings.Contains(text, "2 photos were not sent") {
		t.Errorf("the screen does not say how many photos were not sent: %q", text)
	}
	testutil.Check(t, "focus on the title", "error-title", evalJS[string](t, phone, `document.activeElement.id`))
	visible := func(sel string) string {
		return `(() => { const el = document.querySelector(` + jsString(sel) + `); return !!el && el.checkVisibility(); })()`
	}
	for _, sel := range []string{"#take-photo", "#choose-library", "#add-more", "#send", "#error-action", ".review-item"} {
		if evalJS[bool](t, phone, visible(sel)) {
			t.Errorf("the ended screen still offers %s", sel)
		}
	}
	// The claim is forgotten: a reload cannot bring capture back.
	testutil.Check(t, "stored claims", 0, evalJS[int](t, phone, `sessionStorage.length`))
}
