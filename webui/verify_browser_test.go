//go:build integration

package webui_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/handoff-health/handoff/hub"
)

// countSnapshots makes the desktop page count the snapshot reads it has
// finished acting on: window.__snapshots grows once the page's code
// after a GET /api/medtech/session/{id} has run (a timer queued when the
// body is read fires after the awaiting code's microtasks).
const countSnapshots = `(() => {
	window.__snapshots = 0;
	const orig = window.fetch;
	window.fetch = async (input, init) => {
		const res = await orig(input, init);
		const url = String(input);
		if (/\/api\/medtech\/session\/[^/?]+$/.test(url) && (!init || !init.method || init.method === 'GET')) {
			const text = res.text.bind(res);
			res.text = async () => {
				const v = await text();
				setTimeout(() => { window.__snapshots++; }, 0);
				return v;
			};
		}
		return res;
	};
})()`

// TestDesktopVerifiesBeforeActing is issue 13's reproduction of a forged
// event: a key that could publish on a session's channel sent
// image.committed, and the desktop showed "Filed" and disabled Commit for a
// photo that was never filed; session.expired ended a live session. The
// forgeries are published straight into the hub here (as such a key
// once could through the publish API). The desktop re-reads the snapshot
// before it acts, so nothing changes; a real commit still shows "Filed".
func TestDesktopVerifiesBeforeActing(t *testing.T) {
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

	// A session with one photo, not filed.
	must(t, chromedp.Do(desk,
		chromedp.EmulateViewport(520, 900),
		chromedp.Navigate(st.base+"/desktop"),
		chromedp.WaitVisible(chromedp.CSS("#dev-form")),
	), "open desktop")
	waitJS(t, desk, `document.querySelector('#dev-patient').options.length > 0`, 10*time.Second, "demo patients")
	must(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#dev-start"))), "start session")
	waitJS(t, desk, `document.querySelector('#mobile-link').value.includes('/m/')`, 10*time.Second, "mobile link")
	waitJS(t, desk, `document.querySelector('#conn').dataset.state === 'live'`, 10*time.Second, "socket live")
	mobileURL := evalJS[string](t, desk, `document.querySelector('#mobile-link').value`)
	must(t, chromedp.Do(phone,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch),
		chromedp.Navigate(mobileURL),
		chromedp.WaitVisible(chromedp.CSS("#confirm-yes")),
		chromedp.Click(chromedp.CSS("#confirm-yes")),
		chromedp.WaitVisible(chromedp.CSS("#take-photo")),
	), "phone claims the code")
	sendPhoto(t, phone, writePhoto(t, t.TempDir(), 600, 400))
	waitJS(t, desk, `document.querySelectorAll('#grid .card').length === 1`, 10*time.Second, "photo on the desktop")
	imageID := evalJS[string](t, desk, `document.querySelector('#grid .card').dataset.imageId`)
	sessionID := evalJS[string](t, desk, `document.body.dataset.sessionId`)
	if imageID == "" || sessionID == "" {
		t.Fatalf("image id %q, session id %q", imageID, sessionID)
	}
	must(t, chromedp.Do(desk, chromedp.Evaluate[chromedp.Void](countSnapshots)), "count snapshots")

	forge := func(typ string, data map[string]any) {
		t.Helper()
		b, err := json.Marshal(data)
		must(t, err, "forged data")
		_, err = st.hub.Publish(context.Background(), "session:"+sessionID, hub.Publication{Type: typ, Data: b})
		must(t, err, "publish forged "+typ)
	}
	// settled waits until the page has acted on one more snapshot, then
	// checks that the photo is still unfiled and the session still open.
	settled := func(after string) {
		t.Helper()
		n := evalJS[int](t, desk, `window.__snapshots`)
		waitJS(t, desk, `window.__snapshots > `+itoa(n), 10*time.Second, "snapshot re-read after "+after)
		state := evalJS[string](t, desk, `document.querySelector('#grid .card').dataset.commit`)
		if state == "committed" {
			t.Errorf("after %s: the card is %q", after, state)
		}
		if text := evalJS[string](t, desk, `document.querySelector('#grid .card [data-role="state"]').textContent`); strings.Contains(text, "Filed") {
			t.Errorf("after %s: the card says %q", after, text)
		}
		if evalJS[bool](t, desk, `document.querySelector('#commit').disabled`) {
			t.Errorf("after %s: Commit is disabled", after)
		}
		if evalJS[bool](t, desk, `!document.querySelector('#banner').hidden && document.querySelector('#banner-text').textContent.includes('ended')`) {
			t.Errorf("after %s: the page says the session ended", after)
		}
	}
	image := map[string]any{"id": imageID, "commit": map[string]any{"status": "committed", "alexId": "Media/forged"}}

	forge("image.committed", map[string]any{"sessionId": sessionID, "imageId": imageID, "alexId": "Media/forged", "image": image})
	settled("a forged image.committed")
	forge("session.expired", map[string]any{"sessionId": sessionID})
	settled("a forged session.expired")
	// image.added carries no filing state the page believes; the
	// session.committed after it makes the page re-read, and events are
	// handled in order, so both have been acted on by then.
	forge("image.added", map[string]any{"image": image})
	forge("session.committed", map[string]any{"sessionId": sessionID, "imageCount": 1, "committed": 1})
	settled("a forged image.added and session.committed")

	// A real commit, by another desktop of the practice: this page learns
	// of it only from the event, checks the snapshot, and shows it filed.
	body, _ := json.Marshal(map[string]any{"sessionId": sessionID})
	req, err := http.NewRequest(http.MethodPost, st.base+"/api/medtech/session/commit", bytes.NewReader(body))
	must(t, err, "commit request")
	req.Header.Set("Authorization", "Bearer "+devToken(t, st.base))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	must(t, err, "commit")
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("commit: %d", res.StatusCode)
	}
	waitJS(t, desk, `document.querySelector('#grid .card').dataset.commit === 'committed'`, 20*time.Second, "photo filed")
	if s := evalJS[string](t, desk, `document.querySelector('#grid .card [data-role="state"]').textContent`); !strings.Contains(s, "Filed to record") {
		t.Errorf("card state after a real commit = %q", s)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
