//go:build integration

package webui_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/realtime"
	"github.com/handoff-health/handoff/webui"
)

// rtEnv is the realtime transport alone (hub, socket, the webui assets)
// behind a cuttable proxy, for testing static/realtime.js in a browser.
type rtEnv struct {
	base  string
	hub   *hub.Hub
	proxy *flakyProxy
	token string
}

func startRealtime(t *testing.T) *rtEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h := hub.New(hub.NewMemory(hub.MemoryConfig{}))
	hubDone := make(chan error, 1)
	go func() { hubDone <- h.Run(ctx) }()
	v, err := auth.NewVerifier([]byte("realtime-browser-test-secret-0123456789"))
	must(t, err, "verifier")
	token, err := v.Issue(auth.Claims{Facility: "fac-test", Provider: "gp-test", Expires: time.Now().Add(time.Hour)})
	must(t, err, "token")
	rt := realtime.New(h, v, realtime.Config{}, zerolog.Nop())

	mux := http.NewServeMux()
	mux.Handle("GET "+realtime.Path, rt)
	mux.Handle("GET /static/", webui.Handler(webui.Options{}))
	mux.HandleFunc("GET /blank", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<!doctype html><link rel=\"icon\" href=\"data:,\"><title>realtime test</title>"))
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err, "listen")
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(l) }()
	proxy := startProxy(t, l.Addr().String())
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = rt.Shutdown(sctx)
		_ = srv.Close()
		cancel()
		<-hubDone
	})
	return &rtEnv{base: "http://" + proxy.addr(), hub: h, proxy: proxy, token: token}
}

// publish sends {"n": n} on channel and returns the event's cursor.
func (e *rtEnv) publish(t *testing.T, channel string, n int) string {
	t.Helper()
	data, _ := json.Marshal(map[string]int{"n": n})
	ev, err := e.hub.Publish(context.Background(), channel, hub.Publication{Type: "test.event", Data: data})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return ev.ID
}

// setupClient loads realtime.js into a blank page and starts a client
// whose first token is token; a 4001/4009 close is answered with good.
const setupClient = `(async (token, good) => {
	const m = await import('/static/realtime.js');
	const rec = window.rec = { events: {}, resyncs: {}, states: [], authCalls: 0 };
	window.client = new m.RealtimeClient({
		getToken: () => window.currentToken,
		onAuthError: async () => { rec.authCalls++; window.currentToken = good; return good; },
		onState: (s) => rec.states.push(s),
		minBackoff: 100, maxBackoff: 800,
	});
	window.currentToken = token;
	window.sub = (channel, since) => {
		rec.events[channel] = [];
		rec.resyncs[channel] = [];
		window.client.subscribe(channel, {
			since,
			onEvent: (ev) => rec.events[channel].push(ev.data.n),
			onResync: (r) => rec.resyncs[channel].push(r.reason),
		});
	};
	window.client.connect();
	return true;
})`

// TestRealtimeClientInBrowser runs static/realtime.js against the real
// transport: live delivery in order; a cut socket resumes from the last
// event with nothing lost or doubled; replay from a cursor, and a restart
// from an older cursor (as after a snapshot) delivers nothing twice; an
// unrecoverable cursor is reported as a resync; a refused token is
// replaced through onAuthError.
func TestRealtimeClientInBrowser(t *testing.T) {
	env := startRealtime(t)
	browser := newBrowser(t)
	tab, errs := newTab(t, browser, false)
	t.Cleanup(func() {
		for _, e := range errs.list() {
			t.Errorf("page: %s", e)
		}
	})
	must(t, chromedp.Do(tab, chromedp.Navigate(env.base+"/blank")), "open page")
	start := func(token string) {
		b, err := json.Marshal([]string{token, env.token})
		must(t, err, "args")
		_, err = chromedp.Run(tab, chromedp.Evaluate[bool](setupClient+`(...`+string(b)+`)`, chromedp.EvalAwaitPromise))
		must(t, err, "start client")
	}

	t.Run("refused token is replaced", func(t *testing.T) {
		start("not-a-jwt")
		waitJS(t, tab, `client.state === 'live'`, 10*time.Second, "live with the fresh token")
		if n := evalJS[int](t, tab, `rec.authCalls`); n != 1 {
			t.Errorf("onAuthError called %d times, want 1", n)
		}
	})

	const ch = "session:rt-browser-test"
	t.Run("live events in order", func(t *testing.T) {
		must(t, chromedp.Do(tab, chromedp.Evaluate[chromedp.Void](`sub('`+ch+`', '')`)), "subscribe")
		waitJS(t, tab, `client.subs.get('`+ch+`').active`, 5*time.Second, "subscribed")
		env.publish(t, ch, 1)
		env.publish(t, ch, 2)
		waitJS(t, tab, `rec.events['`+ch+`'].join() === '1,2'`, 5*time.Second, "events 1,2")
	})

	t.Run("resume after a cut", func(t *testing.T) {
		if env.proxy.cut() == 0 {
			t.Fatal("no socket to cut")
		}
		waitJS(t, tab, `client.state === 'reconnecting'`, 5*time.Second, "reconnecting")
		env.publish(t, ch, 3)
		env.publish(t, ch, 4)
		time.Sleep(300 * time.Millisecond) // a few refused redials
		env.proxy.restore()
		waitJS(t, tab, `client.state === 'live'`, 10*time.Second, "live again")
		env.publish(t, ch, 5)
		waitJS(t, tab, `rec.events['`+ch+`'].length >= 5`, 5*time.Second, "events after resume")
		time.Sleep(200 * time.Millisecond)
		if got := evalJS[string](t, tab, `rec.events['`+ch+`'].join()`); got != "1,2,3,4,5" {
			t.Errorf("events = %s, want 1,2,3,4,5 (once each, in order)", got)
		}
		if got := evalJS[int](t, tab, `rec.resyncs['`+ch+`'].length`); got != 0 {
			t.Errorf("%d resyncs after a resumable cut", got)
		}
	})

	t.Run("replay and resubscribe deliver once", func(t *testing.T) {
		const c3 = "session:rt-browser-replay"
		first := env.publish(t, c3, 1)
		env.publish(t, c3, 2)
		env.publish(t, c3, 3)
		must(t, chromedp.Do(tab, chromedp.Evaluate[chromedp.Void](`sub('`+c3+`', '`+first+`')`)), "subscribe")
		waitJS(t, tab, `rec.events['`+c3+`'].join() === '2,3'`, 5*time.Second, "replay after the cursor")
		must(t, chromedp.Do(tab, chromedp.Evaluate[chromedp.Void](`client.subs.get('`+c3+`').resubscribe('`+first+`')`)), "resubscribe")
		waitJS(t, tab, `client.subs.get('`+c3+`').active && !client.subs.get('`+c3+`').pendingResubscribe`, 5*time.Second, "resubscribed")
		env.publish(t, c3, 4)
		waitJS(t, tab, `rec.events['`+c3+`'].length >= 3`, 5*time.Second, "event after resubscribe")
		time.Sleep(200 * time.Millisecond)
		if got := evalJS[string](t, tab, `rec.events['`+c3+`'].join()`); got != "2,3,4" {
			t.Errorf("events = %s, want 2,3,4 (the replayed 2,3 de-duplicated)", got)
		}
	})

	t.Run("unrecoverable cursor asks for a resync", func(t *testing.T) {
		const other = "session:rt-browser-other"
		env.publish(t, other, 1)
		must(t, chromedp.Do(tab, chromedp.Evaluate[chromedp.Void](`sub('`+other+`', 'aaaaaaaaaaaaa-7')`)), "subscribe")
		waitJS(t, tab, `rec.resyncs['`+other+`'].join() === 'not_recovered'`, 5*time.Second, "resync reported")
		env.publish(t, other, 2)
		// A cursor of another epoch: after the resync the channel's current
		// epoch comes whole (it is in history), then live events.
		waitJS(t, tab, `rec.events['`+other+`'].join() === '1,2'`, 5*time.Second, "the epoch's events, then live, after the resync")
	})
}
