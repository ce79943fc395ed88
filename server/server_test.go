package server_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/internal/config"
	"github.com/handoff-health/handoff/internal/testutil"
	"github.com/handoff-health/handoff/server"
)

// TestDevNode runs a node on the embedded defaults in dev mode, as
// `make run` does, and checks every endpoint that is not the capture API.
func TestDevNode(t *testing.T) {
	t.Parallel()
	n := startNode(t, devConfig(t))

	t.Run("healthz", func(t *testing.T) {
		var body map[string]string
		must(t, n.do("GET", "/healthz", "", nil), http.StatusOK, &body)
		if body["status"] != "ok" {
			t.Fatalf("healthz %v", body)
		}
	})
	t.Run("readyz", func(t *testing.T) {
		var body struct {
			Ready  bool              `json:"ready"`
			Checks map[string]string `json:"checks"`
		}
		must(t, n.do("GET", "/readyz", "", nil), http.StatusOK, &body)
		testutil.Equal(t, "readyz", true, body.Ready)
		testutil.Equal(t, "readyz checks", map[string]string{"hub": "ok", "sessions+blobs": "ok"}, body.Checks)
	})
	t.Run("dev token", func(t *testing.T) {
		var tok struct {
			Token      string `json:"token"`
			ExpiresAt  string `json:"expiresAt"`
			FacilityID string `json:"facilityId"`
			ProviderID string `json:"providerId"`
		}
		must(t, n.do("POST", "/api/dev/token", "", nil), http.StatusOK, &tok)
		testutil.Check(t, "dots in the dev token (a JWT)", 2, strings.Count(tok.Token, "."))
		for field, v := range map[string]string{"expiresAt": tok.ExpiresAt, "facilityId": tok.FacilityID, "providerId": tok.ProviderID} {
			if v == "" {
				t.Errorf("dev token reply has no %s", field)
			}
		}
		// The token works on the API: a session can be created with it.
		n.createSession(tok.Token, "enc-dev-token")
	})
	t.Run("dev patients", func(t *testing.T) {
		var pts []struct {
			PatientID   string `json:"patientId"`
			NHI         string `json:"nhi"`
			Display     string `json:"display"`
			DOB         string `json:"dob"`
			EncounterID string `json:"encounterId"`
		}
		must(t, n.do("GET", "/api/dev/patients", "", nil), http.StatusOK, &pts)
		if len(pts) == 0 {
			t.Fatal("no demo patients")
		}
		for _, p := range pts {
			// Fictional patients only: NHIs in the Z test range.
			for field, v := range map[string]string{"patientId": p.PatientID, "encounterId": p.EncounterID, "display": p.Display, "dob": p.DOB} {
				if v == "" {
					t.Errorf("demo patient %s has no %s", p.PatientID, field)
				}
			}
			if !strings.HasPrefix(p.NHI, "Z") {
				t.Errorf("demo patient %s: NHI %q is not in the Z test range", p.PatientID, p.NHI)
			}
		}
	})
	t.Run("pages", func(t *testing.T) {
		for _, path := range []string{"/desktop", "/m/" + strings.ToLower(rand.Text())} {
			r := n.do("GET", path, "", nil)
			must(t, r, http.StatusOK, nil)
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("%s: Content-Type %q", path, ct)
			}
			csp := r.header.Get("Content-Security-Policy")
			for _, want := range []string{"script-src 'self'", "frame-ancestors 'self'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("%s: CSP %q lacks %s", path, csp, want)
				}
			}
			if strings.Contains(csp, "unsafe-inline") {
				t.Errorf("%s: CSP %q allows unsafe-inline", path, csp)
			}
			if !strings.Contains(strings.ToLower(string(r.body)), "<!doctype html>") {
				t.Errorf("%s: not an HTML page", path)
			}
		}
	})
	t.Run("openapi", func(t *testing.T) {
		r := n.do("GET", "/api/openapi.yaml", "", nil)
		must(t, r, http.StatusOK, nil)
		if !strings.Contains(string(r.body), "openapi:") {
			t.Fatal("not an OpenAPI document")
		}
	})
	t.Run("unknown path", func(t *testing.T) {
		if r := n.do("GET", "/nope", "", nil); r.status != http.StatusNotFound {
			t.Fatalf("status %d", r.status)
		}
	})
}

// TestMetricsByRouteTemplate: /metrics counts requests by route template;
// a token or id in the path never becomes a label value.
func TestMetricsByRouteTemplate(t *testing.T) {
	t.Parallel()
	n := startNode(t, devConfig(t))
	token := "qr" + strings.ToLower(rand.Text())
	missing := "ffffffff-ffff-4fff-bfff-ffffffffffff"
	must(t, n.do("GET", "/m/"+token, "", nil), http.StatusOK, nil)
	n.do("GET", "/api/medtech/session/tokens/"+token, "", nil)
	n.do("GET", "/api/medtech/session/"+missing, n.devToken(), nil)
	n.do("GET", "/no/such/"+token, "", nil)
	n.do("GET", "/healthz?token="+token, "", nil)

	lines := n.metric("handoff_http_requests_total")
	all := strings.Join(lines, "\n")
	for _, want := range []string{
		`route="GET /m/{token}"`,
		`route="GET /api/medtech/session/tokens/{token}"`,
		`route="GET /api/medtech/session/{sessionId}"`,
		`route="POST /api/dev/token"`,
		`route="GET /healthz"`,
		`route="unmatched"`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no request counted with %s", want)
		}
	}
	for _, line := range lines {
		for _, label := range []string{`method="`, `status="`} {
			if !strings.Contains(line, label) {
				t.Errorf("line lacks %s: %s", label, line)
			}
		}
	}
	if !hasLine(lines, `method="GET"`, `route="GET /m/{token}"`, `status="200"`) ||
		!hasLine(lines, `route="GET /api/medtech/session/tokens/{token}"`, `status="404"`) {
		t.Errorf("requests not counted by route and status:\n%s", all)
	}
	body := string(n.do("GET", "/metrics", "", nil).body)
	for _, leak := range []string{token, missing} {
		if strings.Contains(body, leak) {
			t.Errorf("/metrics contains a raw path value %q", leak)
		}
	}
	for _, want := range []string{"handoff_http_request_duration_seconds", "go_goroutines", "process_"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestProductionWithoutDev: without --dev there is no demo practice, and a
// node refuses to start without what production needs, naming the setting.
func TestProductionWithoutDev(t *testing.T) {
	t.Parallel()
	t.Run("dev endpoints are absent", func(t *testing.T) {
		t.Parallel()
		cfg := defaults(t)
		cfg.JWTSecret = testJWTSecret
		n := startNode(t, cfg)
		for _, tc := range []struct{ method, path string }{{"POST", "/api/dev/token"}, {"GET", "/api/dev/patients"}} {
			if r := n.do(tc.method, tc.path, "", nil); r.status != http.StatusNotFound {
				t.Errorf("%s %s: %d %s", tc.method, tc.path, r.status, r.body)
			}
		}
		// The pages are still served; the desktop waits for its host.
		must(t, n.do("GET", "/desktop", "", nil), http.StatusOK, nil)
		must(t, n.do("GET", "/readyz", "", nil), http.StatusOK, nil)
	})

	cases := []struct {
		name   string
		mutate func(*config.Config)
		want   string
	}{
		{"no JWT secret", func(c *config.Config) {}, "HANDOFF_JWT_SECRET"},
		{"short JWT secret", func(c *config.Config) { c.JWTSecret = "too-short" }, "HANDOFF_JWT_SECRET"},
		{"bad API keys", func(c *config.Config) { c.JWTSecret, c.APIKeys = testJWTSecret, "nocolon" }, "HANDOFF_API_KEYS"},
		{"ALEX half configured", func(c *config.Config) { c.JWTSecret, c.ALEXBaseURL = testJWTSecret, "https://alex.example/FHIR" }, "HANDOFF_ALEX_CLIENT_ID"},
		{"bad host origin", func(c *config.Config) { c.JWTSecret, c.HostOrigins = testJWTSecret, "pms.example.org" }, "HANDOFF_HOST_ORIGINS"},
		{"bad Ably event names", func(c *config.Config) {
			c.JWTSecret, c.AblyKey, c.AblyEventNames = testJWTSecret, "app.key:secret", "no-equals-sign"
		}, "HANDOFF_ABLY_EVENT_NAMES"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := defaults(t)
			tc.mutate(&cfg)
			srv, err := server.New(context.Background(), cfg, zerolog.Nop())
			if err == nil {
				srv.Close()
				t.Fatal("New accepted the configuration")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error does not name %s: %v", tc.want, err)
			}
		})
	}
}

// TestSecurityHeaders: every response, API or page, carries nosniff and
// no-referrer; framing is same-origin unless host applications may frame
// the desktop, which the CSP then names.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	const host = "https://pms.example.org"
	cases := []struct {
		name        string
		hostOrigins string
	}{
		{"no host applications", ""},
		{"host applications", host + ", https://other.example.org/"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := devConfig(t)
			cfg.HostOrigins = tc.hostOrigins
			n := startNode(t, cfg)
			paths := []struct{ method, path string }{
				{"GET", "/healthz"}, {"GET", "/readyz"}, {"GET", "/metrics"},
				{"POST", "/api/medtech/session/tokens"}, // 401
				{"GET", "/api/medtech/session/tokens/nope"},
				{"POST", "/channels/x/messages"}, // 401
				{"GET", "/desktop"}, {"GET", "/m/abc"}, {"GET", "/static/nope.js"}, {"GET", "/nope"},
			}
			for _, p := range paths {
				r := n.do(p.method, p.path, "", nil)
				h := r.header
				what := fmt.Sprintf("%s %s (%d)", p.method, p.path, r.status)
				testutil.Check(t, what+" X-Content-Type-Options", "nosniff", h.Get("X-Content-Type-Options"))
				testutil.Check(t, what+" Referrer-Policy", "no-referrer", h.Get("Referrer-Policy"))
				xfo := h.Get("X-Frame-Options")
				if tc.hostOrigins == "" && xfo != "SAMEORIGIN" {
					t.Errorf("%s %s: X-Frame-Options %q, want SAMEORIGIN", p.method, p.path, xfo)
				}
				if tc.hostOrigins != "" && xfo != "" {
					t.Errorf("%s %s: X-Frame-Options %q would forbid the host application", p.method, p.path, xfo)
				}
				if strings.HasPrefix(p.path, "/api/") && r.status >= 400 && h.Get("Cache-Control") != "no-store" {
					t.Errorf("%s %s: Cache-Control %q", p.method, p.path, h.Get("Cache-Control"))
				}
			}
			desktop := n.do("GET", "/desktop", "", nil).header.Get("Content-Security-Policy")
			phone := n.do("GET", "/m/abc", "", nil).header.Get("Content-Security-Policy")
			fa := frameAncestors(desktop)
			if tc.hostOrigins == "" && fa != "'self'" {
				t.Errorf("desktop frame-ancestors %q", fa)
			}
			if tc.hostOrigins != "" && fa != "'self' "+host+" https://other.example.org" {
				t.Errorf("desktop frame-ancestors %q, want 'self' and both origins", fa)
			}
			// Only the desktop widget is embedded by host applications.
			if fa := frameAncestors(phone); fa != "'self'" {
				t.Errorf("phone frame-ancestors %q", fa)
			}
		})
	}
}

// hasLine reports whether one line has every part.
func hasLine(lines []string, parts ...string) bool {
	for _, l := range lines {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return true
		}
	}
	return false
}

func frameAncestors(csp string) string {
	for _, d := range strings.Split(csp, ";") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(d), "frame-ancestors "); ok {
			return v
		}
	}
	return ""
}

// TestNewLogger: JSON lines by default, console on request, info when the
// level is unknown. Not parallel: NewLogger sets zerolog's global time format.
func TestNewLogger(t *testing.T) {
	cases := []struct {
		level, format string
		json          bool
		debugShown    bool
	}{
		{"debug", "json", true, true},
		{"info", "json", true, false},
		{"bogus", "json", true, false},
		{"", "auto", true, false}, // a buffer is not a terminal
		{"debug", "console", false, true},
	}
	for _, tc := range cases {
		var b testutil.LogBuffer
		log := server.NewLogger(&b, tc.level, tc.format)
		log.Debug().Msg("dbg-line")
		log.Info().Str("k", "v").Msg("info-line")
		out := b.String()
		if strings.Contains(out, "dbg-line") != tc.debugShown {
			t.Errorf("%s/%s: debug shown = %v:\n%s", tc.level, tc.format, !tc.debugShown, out)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		var m map[string]any
		isJSON := json.Unmarshal([]byte(lines[len(lines)-1]), &m) == nil
		if isJSON != tc.json {
			t.Errorf("%s/%s: JSON = %v: %s", tc.level, tc.format, isJSON, out)
		}
		if isJSON {
			what := tc.level + "/" + tc.format
			testutil.Check(t, what+" message", any("info-line"), m["message"])
			testutil.Check(t, what+" field k", any("v"), m["k"])
			if m["time"] == nil {
				t.Errorf("%s: line has no time: %v", what, m)
			}
		}
	}
}

// TestDataDirLayout: on embedded defaults the node keeps images and the
// outbox under the data directory, and starts on an empty one.
func TestDataDirLayout(t *testing.T) {
	t.Parallel()
	cfg := devConfig(t)
	cfg.DataDir = filepath.Join(t.TempDir(), "fresh", "data")
	startNode(t, cfg)
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "alex-outbox")); err != nil {
		t.Errorf("outbox directory: %v", err)
	}
}

// API paths no route matches answer in the JSON error shape, keeping
// ServeMux's status and Allow header; pages keep the mux's plain reply.
func TestUnmatchedAPIRoutesAnswerJSON(t *testing.T) {
	t.Parallel()
	n := startNode(t, devConfig(t))
	cases := []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"GET", "/api/medtech/nope", http.StatusNotFound, "not_found", ""},
		{"PUT", "/api/medtech/session/tokens", http.StatusMethodNotAllowed, "method_not_allowed", "POST"},
		{"DELETE", "/channels/x/messages", http.StatusMethodNotAllowed, "method_not_allowed", "POST"},
	}
	for _, tc := range cases {
		r := n.do(tc.method, tc.path, "", nil)
		what := tc.method + " " + tc.path
		testutil.Check(t, what+" status", tc.status, r.status)
		testutil.Check(t, what+" error code", tc.code, r.errCode())
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s: Content-Type %q, want JSON", what, ct)
		}
		if tc.allow != "" && !strings.Contains(r.header.Get("Allow"), tc.allow) {
			t.Errorf("%s %s: Allow %q, want it to name %s", tc.method, tc.path, r.header.Get("Allow"), tc.allow)
		}
	}
	r := n.do("GET", "/nope", "", nil)
	testutil.Check(t, "GET /nope status", http.StatusNotFound, r.status)
	testutil.Check(t, "GET /nope error code (the mux's plain 404 has none)", "", r.errCode())
}
