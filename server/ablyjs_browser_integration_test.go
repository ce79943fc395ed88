//go:build integration

package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

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
	mux.HandleFunc("GET /rest-scenarios.mjs", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		http.ServeFile(w, r, filepath.Join(scenarios, "rest-scenarios.mjs"))
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><title>PMS</title><script src="/ably.js"></script>
<script type="module">import { runREST } from '/rest-scenarios.mjs'; window.runREST = runREST; window.ready = true;</script>`)
	})
	page := httptest.NewServer(mux)
	t.Cleanup(page.Close)
	return page.URL
}

// TestAblyJSBrowserREST: ably-js's browser build, unmodified, in Chromium
// on another origin: the same REST scenarios as in Node, through CORS with
// credentials, envelope=json history pages (the browser build asks for
// them) and Ably's error headers (without X-Ably-Errorcode it would not
// read the error at all).
func TestAblyJSBrowserREST(t *testing.T) {
	t.Parallel()
	cfg := devConfig(t)
	cfg.APIKeys = ablyJSKey
	n := startNode(t, cfg)
	jwt := n.devToken()
	browser := testutil.NewBrowser(t)
	version := testutil.AblyJSVersions[len(testutil.AblyJSVersions)-1]
	pageURL := ablyPage(t, version)

	s := n.createSession(jwt, "enc-ablyjs-browser")
	desktop := n.realtime(t, jwt)
	if err := desktop.Subscribe(s.Channel, ""); err != nil {
		t.Fatal(err)
	}
	testutil.Next(t, desktop, client.KindSubscribed)

	tab, cancel := chromedp.NewContext(browser)
	defer cancel()
	if _, err := chromedp.Run(tab, chromedp.Navigate(pageURL)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(tab, chromedp.Poll[bool]("window.ready === true && typeof Ably === 'object'",
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("the page did not load ably-js %s: %v", version, err)
	}
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
