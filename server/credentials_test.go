package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/config"
	"github.com/handoff-health/handoff/internal/testutil"
	"github.com/handoff-health/handoff/server"
)

// TestDevRefusesProduction is issue 13 item 9's reproduction: --dev beside
// a JWT secret started with a warning, and /api/dev/token then minted
// desktop JWTs signed with the production secret. The node now refuses to
// start, naming the setting; so it does for Redis, S3, ALEX and a
// non-loopback address.
func TestDevRefusesProduction(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		mutate func(*config.Config)
		want   string
	}{
		{"JWT secret", func(c *config.Config) { c.JWTSecret = testJWTSecret }, "HANDOFF_JWT_SECRET"},
		{"Redis", func(c *config.Config) { c.RedisAddrs = "127.0.0.1:1" }, "HANDOFF_REDIS_ADDRS"},
		{"S3", func(c *config.Config) { c.S3Bucket = "photos" }, "HANDOFF_S3_BUCKET"},
		{"ALEX", func(c *config.Config) {
			c.ALEXBaseURL, c.ALEXTokenURL, c.ALEXClientID, c.ALEXClientSecret, c.ALEXScope = "https://alex.example/FHIR", "https://t.example", "id", "secret", "scope"
		}, "HANDOFF_ALEX_BASE_URL"},
		{"every interface", func(c *config.Config) { c.Addr = ":8080" }, "HANDOFF_ADDR"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := devConfig(t)
			tc.mutate(&cfg)
			srv, err := server.New(context.Background(), cfg, zerolog.Nop())
			if err == nil {
				srv.Close()
				t.Fatal("New accepted --dev with it")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--dev") {
				t.Fatalf("error does not name --dev and %s: %v", tc.want, err)
			}
		})
	}

	t.Run("LAN on purpose, logged loudly", func(t *testing.T) {
		t.Parallel()
		cfg := devConfig(t)
		cfg.Addr, cfg.DevAllowLAN = ":8080", true
		logs := &testutil.LogBuffer{}
		srv, err := server.New(context.Background(), cfg, zerolog.New(logs))
		if err != nil {
			t.Fatalf("New with --dev-allow-lan: %v", err)
		}
		srv.Close()
		if !strings.Contains(logs.String(), "--dev-allow-lan") || !strings.Contains(logs.String(), `"level":"warn"`) {
			t.Errorf("no loud warning about dev mode on the network:\n%s", logs)
		}
	})
}

// TestNodeScopesKeys: --api-key-capabilities reaches the publish API, and
// no key publishes a server-owned name on a live session's channel.
func TestNodeScopesKeys(t *testing.T) {
	t.Parallel()
	cfg := devConfig(t)
	cfg.APIKeys = apiKeys + ",bench:b3nch-b3nch-b3nch-b3nch"
	cfg.APIKeyCapabilities = `{"bench":{"bench:*":["publish"]}}`
	n := startNode(t, cfg)
	s := n.createSession(n.devToken(), "enc-scope")

	post := func(user, pass, channel, body string) reply {
		req, err := http.NewRequest("POST", n.url+"/channels/"+channel+"/messages", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(user, pass)
		return send(t, req)
	}
	forged := `{"name":"image.committed","data":{"sessionId":"` + s.SessionID + `","imageId":"i1","alexId":"Media/forged"}}`
	r := post(apiKeyName, apiKeySecret, s.Channel, forged)
	testutil.Check(t, "forged image.committed: status", http.StatusForbidden, r.status)
	testutil.Check(t, "forged image.committed: code", 40300, r.ablyCode())
	r = post("bench", "b3nch-b3nch-b3nch-b3nch", s.Channel, `{"name":"note"}`)
	testutil.Check(t, "bench key on a session: status", http.StatusUnauthorized, r.status)
	testutil.Check(t, "bench key on a session: code", 40160, r.ablyCode())
	r = post("bench", "b3nch-b3nch-b3nch-b3nch", "bench:1", `{"name":"note"}`)
	testutil.Check(t, "bench key on bench:1: status", http.StatusCreated, r.status)

	evs, _, err := n.srv.Hub().History(context.Background(), s.Channel, hub.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Type == "image.committed" || ev.Type == "note" {
			t.Errorf("refused publish reached the session channel: %s", ev.Type)
		}
	}
}

// TestNodeJWTLimits: --jwt-max-lifetime, --jwt-audience and --jwt-issuer
// reach every desktop endpoint (issue 13 item 10: an exp in 2100 was
// accepted).
func TestNodeJWTLimits(t *testing.T) {
	t.Parallel()
	cfg := defaults(t)
	cfg.JWTSecret, cfg.JWTAudience, cfg.JWTIssuer = testJWTSecret, "handoff", "https://pms.example.org"
	n := startNode(t, cfg)
	sign := func(c jwt.MapClaims) string {
		base := jwt.MapClaims{"fac": "F1", "sub": "gp-1", "aud": "handoff", "iss": "https://pms.example.org", "exp": time.Now().Add(time.Hour).Unix()}
		for k, v := range c {
			base[k] = v
		}
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, base).SignedString([]byte(testJWTSecret))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	cases := []struct {
		name   string
		token  string
		status int
	}{
		{"valid", sign(nil), http.StatusNotFound}, // past auth: the session does not exist
		{"exp in 2100", sign(jwt.MapClaims{"exp": time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).Unix()}), http.StatusUnauthorized},
		{"another audience", sign(jwt.MapClaims{"aud": "other-app"}), http.StatusUnauthorized},
		{"another issuer", sign(jwt.MapClaims{"iss": "https://evil.example.org"}), http.StatusUnauthorized},
	}
	for _, tc := range cases {
		r := n.do("GET", "/api/medtech/session/7c1e0a4e-0000-4000-8000-000000000001", tc.token, nil)
		testutil.Check(t, tc.name+": status", tc.status, r.status)
		if tc.status == http.StatusUnauthorized {
			testutil.Check(t, tc.name+": code", "invalid_token", r.errCode())
		}
	}
}
