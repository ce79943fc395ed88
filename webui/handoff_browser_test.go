//go:build integration

package webui_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// devToken gets a desktop JWT from the dev endpoint, as a host
// application would mint one.
func devToken(t *testing.T, base string) string {
	t.Helper()
	res, err := http.Post(base+"/api/dev/token", "application/json", nil)
	must(t, err, "dev token")
	defer res.Body.Close()
	var body struct {
		Token string `json:"token"`
	}
	must(t, json.NewDecoder(res.Body).Decode(&body), "dev token body")
	if body.Token == "" {
		t.Fatal("no dev token")
	}
	return body.Token
}

// TestDesktopHandOff checks the two production ways a host application
// hands the desktop page its JWT and patient: the URL fragment (removed
// from the address bar at once) and postMessage.
func TestDesktopHandOff(t *testing.T) {
	st := startStack(t)
	browser := newBrowser(t)
	token := devToken(t, st.base)

	t.Run("fragment", func(t *testing.T) {
		tab, errs := newTab(t, browser, true)
		frag := url.Values{
			"token": {token}, "patientId": {"demo-pt-002"}, "encounterId": {"demo-enc-1002"},
			"patientDisplay": {"A.T."}, "patientNhi": {"ZZZ0024"},
		}
		must(t, chromedp.Do(tab, chromedp.Navigate(st.base+"/desktop#"+frag.Encode())), "open")
		waitJS(t, tab, `document.querySelector('#mobile-link').value.includes('/m/')`, 10*time.Second, "session from the fragment")
		if href := evalJS[string](t, tab, `location.href`); href != st.base+"/desktop" {
			t.Errorf("address bar still holds the fragment: %d characters after /desktop", len(href)-len(st.base+"/desktop"))
		}
		if got := evalJS[string](t, tab, `document.querySelector('#patient strong').textContent`); got != "A.T." {
			t.Errorf("patient shown = %q, want A.T.", got)
		}
		if evalJS[bool](t, tab, `!document.querySelector('#dev-form').hidden`) {
			t.Error("the demo form is shown although the fragment gave a context")
		}
		for _, e := range errs.list() {
			t.Errorf("page: %s", e)
		}
	})

	t.Run("postMessage", func(t *testing.T) {
		tab, errs := newTab(t, browser, true)
		must(t, chromedp.Do(tab,
			chromedp.Navigate(st.base+"/desktop"),
			chromedp.WaitVisible(chromedp.CSS("#dev-form")),
		), "open")
		msg, err := json.Marshal(map[string]string{
			"type": "handoff:init", "token": token, "patientId": "demo-pt-003",
			"encounterId": "demo-enc-1003", "patientDisplay": "M.W.", "patientNhi": "ZZZ0032",
		})
		must(t, err, "message")
		// The page's own origin is a trusted sender, like a same-origin host frame.
		must(t, chromedp.Do(tab, chromedp.Evaluate[chromedp.Void](`window.postMessage(`+string(msg)+`, location.origin)`)), "post")
		waitJS(t, tab, `document.querySelector('#mobile-link').value.includes('/m/')`, 10*time.Second, "session from postMessage")
		if got := evalJS[string](t, tab, `document.querySelector('#patient strong').textContent`); got != "M.W." {
			t.Errorf("patient shown = %q, want M.W.", got)
		}
		for _, e := range errs.list() {
			t.Errorf("page: %s", e)
		}
	})
}
