package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/internal/testutil"
	"github.com/handoff-health/handoff/server"
)

// TestDebugListener: without --debug-addr there is no profiling listener;
// with it, the pprof handlers answer on that listener and not on the main
// one, where /debug/pprof/ is an ordinary unknown path.
func TestDebugListener(t *testing.T) {
	t.Parallel()
	off := startNode(t, devConfig(t))
	if addr := off.srv.DebugAddr(); addr != nil {
		t.Fatalf("DebugAddr without --debug-addr = %v, want none", addr)
	}
	testutil.Check(t, "main /debug/pprof/heap, off", http.StatusNotFound, getStatus(t, http.DefaultClient, off.url+"/debug/pprof/heap", nil))

	cfg := devConfig(t)
	cfg.DebugAddr = "127.0.0.1:0"
	on := startNode(t, cfg)
	addr := on.srv.DebugAddr()
	if addr == nil {
		t.Fatal("DebugAddr with --debug-addr is nil")
	}
	debugURL := "http://" + addr.String()
	for _, path := range []string{"/debug/pprof/heap", "/debug/pprof/goroutine?debug=1", "/debug/pprof/"} {
		resp, err := http.Get(debugURL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		body := string(b)
		testutil.Check(t, "debug listener "+path, http.StatusOK, resp.StatusCode)
		if path == "/debug/pprof/goroutine?debug=1" && !strings.Contains(body, "goroutine profile:") {
			t.Errorf("goroutine profile body starts %.60q", body)
		}
	}
	testutil.Check(t, "main /debug/pprof/heap, on", http.StatusNotFound, getStatus(t, http.DefaultClient, on.url+"/debug/pprof/heap", nil))
	testutil.Check(t, "debug listener /healthz", http.StatusNotFound, getStatus(t, http.DefaultClient, debugURL+"/healthz", nil))
}

// TestDebugListenerOnlyLoopback: a --debug-addr other machines could reach
// stops the node at start, with an error naming the setting.
func TestDebugListenerOnlyLoopback(t *testing.T) {
	t.Parallel()
	cfg := devConfig(t)
	cfg.DebugAddr = "0.0.0.0:0"
	srv, err := server.New(context.Background(), cfg, zerolog.Nop())
	if err == nil {
		srv.Close()
		t.Fatal("server.New accepted --debug-addr 0.0.0.0:0")
	}
	for _, want := range []string{"--debug-addr", "HANDOFF_DEBUG_ADDR", "not a loopback address"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
