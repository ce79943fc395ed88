//go:build integration

package webui_test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/handoff-health/handoff/internal/config"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestDesktopShowsPhonePresence: the desktop's phone line follows the
// phone's page, not the claim of its QR code. In a real browser against a
// real server, on the embedded defaults and on Redis:
//
//  1. before any phone: the code is shown;
//  2. the phone page opens (it claims the code and enters presence on the
//     session's channel): the desktop says "Phone connected";
//  3. the phone's tab is closed: the desktop says "Phone disconnected"
//     (at once when the page's socket closes cleanly, else after the
//     presence grace, one second here), with the line that says why.
func TestDesktopShowsPhonePresence(t *testing.T) {
	for _, tc := range []struct {
		name  string
		redis bool
	}{{"memory", false}, {"redis", true}} {
		t.Run(tc.name, func(t *testing.T) {
			st := startFilingStack(t, func(c *config.Config) {
				c.PresenceGrace = time.Second
				if tc.redis {
					c.RedisAddrs = testutil.StartRedis(t).Addr
				}
			})
			browser := newBrowser(t)
			desk, deskErrs := newTab(t, browser, false)
			t.Cleanup(func() {
				for _, e := range deskErrs.list() {
					t.Errorf("desktop page: %s", e)
				}
			})
			mobileURL := st.openDesktop(t, desk, 900)
			if !evalJS[bool](t, desk, `!document.querySelector('#pair-code').hidden && document.querySelector('#pair-connected').hidden`) {
				t.Fatal("before any phone, the desktop does not show the code alone")
			}

			// The phone's tab, in a browser context of its own (another
			// device), closed by cancelling its context.
			phone, closePhone := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
			t.Cleanup(closePhone)
			must(t, chromedp.Do(phone,
				chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch),
				chromedp.Navigate(mobileURL),
				chromedp.WaitVisible(chromedp.CSS("#confirm-yes")),
			), "open phone page")

			waitJS(t, desk, `document.querySelector('#phone-line').dataset.state === 'connected'`, 15*time.Second, "phone connected")
			testutil.Equal(t, "phone line while the page is open", "✓ Phone connected",
				evalJS[string](t, desk, `document.querySelector('#phone-line').textContent.trim()`))
			if evalJS[bool](t, desk, `!document.querySelector('#phone-gone').hidden`) {
				t.Error("the phone-gone hint shows while the phone is connected")
			}

			closePhone()
			waitJS(t, desk, `document.querySelector('#phone-line').dataset.state === 'disconnected'`, 20*time.Second, "phone disconnected")
			testutil.Equal(t, "phone line after the page closed", "! Phone disconnected",
				evalJS[string](t, desk, `document.querySelector('#phone-line').textContent.trim()`))
			if evalJS[bool](t, desk, `document.querySelector('#phone-gone').hidden`) {
				t.Error("the desktop does not say why the phone is disconnected")
			}
		})
	}
}
