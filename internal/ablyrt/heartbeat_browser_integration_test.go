//go:build integration

package ablyrt_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/handoff-health/handoff/internal/ablyrt"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestBrowserAblyJSKeptAliveByHeartbeats: the browser build of ably-js asks
// for protocol heartbeats (heartbeats=true: a browser cannot see WebSocket
// pings) and drops a connection that is silent for maxIdleInterval plus
// realtimeRequestTimeout. With a 1 s maxIdleInterval and a 1 s request
// timeout, an idle connection lives for 8 s only if the node's HEARTBEATs
// keep it alive: it stays connected, on the same connection, and still
// receives the next message.
func TestBrowserAblyJSKeptAliveByHeartbeats(t *testing.T) {
	t.Parallel()
	n := startNode(t, startHub(t), ablyrt.Config{MaxIdleInterval: time.Second})
	version := testutil.AblyJSVersions[len(testutil.AblyJSVersions)-1]
	build := filepath.Join(testutil.AblyJS(t, version), "build", "ably.js")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ably.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		http.ServeFile(w, r, build)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><title>idle</title><script src="/ably.js"></script><script>
window.states = []; window.names = [];
const rt = new Ably.Realtime({ key: %q, endpoint: '127.0.0.1', port: %d, tls: false,
  useBinaryProtocol: false, transports: ['web_socket'], realtimeRequestTimeout: 1000, logLevel: 0 });
rt.connection.on((c) => window.states.push(c.current));
rt.connection.once('connected', async () => {
  window.firstId = rt.connection.id;
  await rt.channels.get('idle:1').subscribe((m) => window.names.push(m.name));
  window.attached = true;
});
window.rt = rt;
</script>`, testKey, n.port)
	})
	page := httptest.NewServer(mux)
	t.Cleanup(page.Close)

	browser := testutil.NewBrowser(t)
	tab, cancel := chromedp.NewContext(browser)
	defer cancel()
	if _, err := chromedp.Run(tab, chromedp.Navigate(page.URL)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(tab, chromedp.Poll[bool]("window.attached === true", chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("ably-js %s never attached: %v", version, err)
	}
	time.Sleep(8 * time.Second) // idle: only the node's HEARTBEATs cross the socket
	if err := restJSON(t, n.port).Channels.Get("idle:1").Publish(context.Background(), "after-idle", "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(tab, chromedp.Poll[bool]("window.names.includes('after-idle')", chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("the message after the idle time never arrived: %v", err)
	}
	states, err := chromedp.Run(tab, chromedp.Evaluate[[]string]("window.states"))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Check(t, "connection states through 8 s of idle", []string{"connecting", "connected"}, states)
	same, err := chromedp.Run(tab, chromedp.Evaluate[bool]("window.rt.connection.id === window.firstId"))
	if err != nil {
		t.Fatal(err)
	}
	if !same {
		t.Error("the connection changed during the idle time")
	}
}
