package loadtest

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/server"

	"github.com/handoff-health/handoff/internal/testutil"
)

// startServer runs a handoff node on a loopback port, as `handoff serve`
// would, for the --target tests.
func startServer(t *testing.T, dev bool) (url, secret string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := embeddedConfig(t.TempDir(), l.Addr().String(), Config{Images: 1}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	sc.Dev = dev
	if dev {
		sc.JWTSecret = "" // dev mode refuses a configured secret
	}
	srv, err := server.New(context.Background(), sc, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ctx, l)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})
	return "http://" + l.Addr().String(), sc.JWTSecret
}

// TestRunTarget runs against a separately started server: with its JWT
// secret (tokens minted per GP), and in dev mode with its dev token.
func TestRunTarget(t *testing.T) {
	t.Parallel()
	for _, dev := range []bool{false, true} {
		t.Run(map[bool]string{false: "jwt-secret", true: "dev-token"}[dev], func(t *testing.T) {
			t.Parallel()
			url, secret := startServer(t, dev)
			cfg := Config{Target: url + "/", GPs: 3, Images: 1, ImageBytes: 20_000, Rounds: 2, EventTimeout: 10 * time.Second}
			if !dev {
				cfg.JWTSecret = secret
				if runtime.GOOS == "linux" {
					// The test's server shares this process; /proc reads it all the same.
					cfg.ServerPID = os.Getpid()
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			rep, err := Run(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() {
				t.Errorf("report not OK: %v", rep.ErrorsByKind)
			}
			testutil.Check(t, "gpRounds", 6, rep.GPRounds)
			testutil.Check(t, "eventsExpected", 6*4, rep.EventsExpected)
			testutil.Check(t, "inProcess", false, rep.InProcess)
			if measured := rep.PeakRSSBytes > 0; measured != (cfg.ServerPID > 0) {
				t.Errorf("peakRss %d with server pid %d", rep.PeakRSSBytes, cfg.ServerPID)
			}
		})
	}
}

// TestRunTargetDown fails fast, naming the target, when nothing answers.
func TestRunTargetDown(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = Run(context.Background(), Config{Target: "http://" + addr, GPs: 1, Images: 1, ImageBytes: 1000, RequestTimeout: 2 * time.Second})
	if err == nil {
		t.Fatal("Run against a closed port succeeded")
	}
}

// TestOpenTargetRetriesHealthz: a /healthz answer lost once (a node behind
// the balancer going away) is tried again; a target that never answers
// fails with the reason.
func TestOpenTargetRetriesHealthz(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			// The first answer is lost: the connection is cut.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	if _, err := openTarget(context.Background(), Config{Target: srv.URL, RequestTimeout: 2 * time.Second}, 0); err != nil {
		t.Fatalf("a healthz lost once: %v", err)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("healthz called %d times, want 2", n)
	}

	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	_, err := openTarget(context.Background(), Config{Target: deadURL, RequestTimeout: time.Second}, 0)
	if err == nil || !strings.Contains(err.Error(), "is not answering /healthz (4 tries)") {
		t.Fatalf("a dead target: want the healthz error, got %v", err)
	}
}
