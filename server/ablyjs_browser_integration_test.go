//go:build integration

package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/handoff-health/handoff/client"
	"github.com/handoff-health/handoff/internal/testutil"
)

// ablyPage serves, on its own origin, a page that loads ably-js's browser
// build from the npm package (build/ably.js) and the shared scenarios, so
// every call the SDK makes to the node is cross-origin, as from a PMS page.
func ablyPage(t *testing.T, version string) string {
	t.Helper()
	build := filepath.Join(testutil.AblyJS(t, version), "build", "ably.js")
	if _, err := os.Stat(build); err != nil {
		t.Fatalf("ably-js %s has no browser build: %v", version, err)
	}
	scenarios, err := filepath.Abs(filepath.Join("testdata", "ablyjs"))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ably.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		http.ServeFile(w, r, build)
	})
	// The scenarios and the module they import (steps.mjs).
	for _, f := range []string{"rest-scenarios.mjs", "realtime-scenarios.mjs", "steps.mjs"} {
		mux.HandleFunc("GET /"+f, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/javascript")
			http.ServeFile(w, r, filepath.Join(scenarios, f))
		})
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><title>PMS</title><script src="/ably.js"></script>
<script type="module">
import { runREST } from '/rest-scenarios.mjs';
import { runRealtime } from '/realtime-scenarios.mjs';
window.runREST = runREST;
window.steps = [];
window.runRealtime = (opts) => runRealtime(Ably, { ...opts, debug: (s) => window.steps.push(s), control: (name) => new Promise((done) => { window.control = { name, done }; }) })
  .then((r) => { window.result = JSON.stringify(r); }, (e) => { window.result = JSON.stringify({ failed: String(e) }); });
window.ready = true;
</script>`)
	})
	page := httptest.NewServer(mux)
	t.Cleanup(page.Close)
	return page.URL
}

// openAblyPage opens ablyPage in a new tab of browser and waits until
// ably-js and the scenarios have loaded.
func openAblyPage(t *testing.T, browser context.Context, version string) context.Context {
	t.Helper()
	pageURL := ablyPage(t, version)
	tab, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if _, err := chromedp.Run(tab, chromedp.Navigate(pageURL)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(tab, chromedp.Poll[bool]("window.ready === true && typeof Ably === 'object'",
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("the page did not load ably-js %s: %v", version, err)
	}
	return tab
}

// TestAblyJSBrowserREST: ably-js's browser build, unmodified, in Chromium
// on another origin: the same REST scenarios as in Node, through CORS with
// credentials, envelope=json history pages (the browser build asks for
// them) and Ably's error headers (without X-Ably-Errorcode it would not
// read the error at all).
func TestAblyJSBrowserREST(t *testing.T) {
	t.Parallel()
	n, jwt := startAblyJSNode(t)
	browser := testutil.NewBrowser(t)
	version := testutil.AblyJSVersions[len(testutil.AblyJSVersions)-1]

	s := n.createSession(jwt, "enc-ablyjs-browser")
	desktop := n.realtime(t, jwt)
	if err := desktop.Subscribe(s.Channel, ""); err != nil {
		t.Fatal(err)
	}
	testutil.Next(t, desktop, client.KindSubscribed)

	tab := openAblyPage(t, browser, version)
	opts, _ := json.Marshal(map[string]any{"port": n.port, "key": ablyJSKey, "channel": s.Channel, "binary": false})
	before := time.Now()
	out, err := chromedp.Run(tab, chromedp.Evaluate[string](
		fmt.Sprintf("window.runREST(Ably, %s).then(JSON.stringify)", opts),
		chromedp.EvalAsValue, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("running the scenarios in chromium: %v", err)
	}
	var got restResult
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("scenario result %q: %v", out, err)
	}
	checkREST(t, desktop, s.Channel, before, got)
}

// TestAblyJSBrowserRealtime: ably-js's browser build in Chromium, on
// another origin, uses the realtime protocol as in Node; the browser build
// asks for protocol heartbeats (heartbeats=true) and JSON.
func TestAblyJSBrowserRealtime(t *testing.T) {
	t.Parallel()
	n, jwt := startAblyJSNode(t)
	rest := n.ablyREST(t, ablyJSKey)
	browser := testutil.NewBrowser(t)
	version := testutil.AblyJSVersions[len(testutil.AblyJSVersions)-1]

	s := n.createSession(jwt, "enc-ablyjs-browser-rt")
	mobile := n.claim(s.Token)
	proxy := testutil.StartProxy(t, fmt.Sprintf("127.0.0.1:%d", n.port))
	actions := map[string]func(){
		"photo": func() { n.addImage(mobile, uuid.NewString(), testutil.JPEG(t, 9)) },
		"cut":   func() { proxy.Cut(); publishGap(t, rest, s.Channel) },
	}

	tab := openAblyPage(t, browser, version)
	opts, _ := json.Marshal(map[string]any{"port": proxy.Port(), "key": ablyJSKey, "channel": s.Channel, "binary": false})
	if _, err := chromedp.Run(tab, chromedp.Evaluate[any](fmt.Sprintf("void window.runRealtime(%s)", opts))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if time.Now().After(deadline) {
			steps, _ := chromedp.Run(tab, chromedp.Evaluate[[]string]("window.steps"))
			t.Fatalf("the realtime scenarios did not finish in chromium within 2 minutes; steps begun: %v", steps)
		}
		state, err := chromedp.Run(tab, chromedp.Evaluate[string](
			"window.result ? 'done' : (window.control ? 'control:' + window.control.name : 'running')"))
		if err != nil {
			t.Fatal(err)
		}
		if state == "done" {
			break
		}
		if name, ok := strings.CutPrefix(state, "control:"); ok {
			act, known := actions[name]
			if !known {
				t.Fatalf("the page asked for an unknown action %q", name)
			}
			act()
			if _, err := chromedp.Run(tab, chromedp.Evaluate[any]("void (window.control.done(), window.control = null)")); err != nil {
				t.Fatal(err)
			}
			continue
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, err := chromedp.Run(tab, chromedp.Evaluate[string]("window.result"))
	if err != nil {
		t.Fatal(err)
	}
	var got realtimeResult
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("scenario result %q: %v", out, err)
	}
	checkRealtime(t, got)
}
