package capture

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/blob"
	"github.com/handoff-health/handoff/internal/session"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestClaimRateLimit (issue 13, item 6): only failed claims count against
// an address. Its junk uses up its own bucket (ClaimBurst failures at once,
// then 429 with Retry-After, then one more per 60/ClaimsPerMinute seconds),
// while a valid QR code is never refused for rate, from that address or
// any other, and another address's junk still gets its own answers.
func TestClaimRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, memoryBackend(), Config{ClaimsPerMinute: 10, ClaimBurst: 5})
	first, second, third := e.create("enc-rate-1"), e.create("enc-rate-2"), e.create("enc-rate-3")
	claim := func(from, tok string) (int, http.Header, []byte) {
		t.Helper()
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
		defer hc.CloseIdleConnections()
		resp, err := hc.Get(e.srv.URL + "/api/medtech/session/tokens/" + tok)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}
	for i := range 5 {
		if st, _, b := claim("127.0.0.1", newToken(qrTokenBytes)); st != http.StatusNotFound {
			t.Fatalf("junk claim %d: %d %s", i, st, b)
		}
	}
	if st, _, b := claim("127.0.0.1", "not-even-a-token"); st != http.StatusTooManyRequests {
		t.Fatalf("malformed junk past the limit: %d %s", st, b)
	}
	st, _, b := claim("127.0.0.1", first.Token)
	testutil.Check(t, "valid claim from the junk's address: status", http.StatusOK, st)
	st, _, _ = claim("127.0.0.2", second.Token)
	testutil.Check(t, "valid claim from another address: status", http.StatusOK, st)
	st, _, _ = claim("127.0.0.2", newToken(qrTokenBytes))
	testutil.Check(t, "another address's own junk: status", http.StatusNotFound, st)

	st, h, b := claim("127.0.0.1", newToken(qrTokenBytes))
	testutil.Check(t, "junk past the limit: status", http.StatusTooManyRequests, st)
	testutil.Equal(t, "junk past the limit: error code", "rate_limited", errCode(b))
	if ra, _ := strconv.Atoi(h.Get("Retry-After")); ra < 1 || ra > 6 {
		t.Fatalf("Retry-After %q", h.Get("Retry-After"))
	}
	st, _, _ = claim("127.0.0.1", first.Token)
	testutil.Check(t, "re-claiming a claimed code past the limit: status", http.StatusTooManyRequests, st)

	e.clock.Advance(6 * time.Second)
	st, _, _ = claim("127.0.0.1", newToken(qrTokenBytes))
	testutil.Check(t, "junk after waiting: status", http.StatusNotFound, st)
	st, _, _ = claim("127.0.0.1", newToken(qrTokenBytes))
	testutil.Check(t, "bucket refilled too fast: status", http.StatusTooManyRequests, st)
	st, _, _ = claim("127.0.0.1", third.Token)
	testutil.Check(t, "valid claim while the address is limited: status", http.StatusOK, st)
}

// TestQRSVG checks the rendering's structure: a square of whole modules
// with the quiet zone, and the three finder patterns where QR puts them.
func TestQRSVG(t *testing.T) {
	t.Parallel()
	svg, err := qrSVG("https://handoff.example/m/" + newToken(qrTokenBytes))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`viewBox="0 0 (\d+) (\d+)"`).FindStringSubmatch(string(svg))
	if m == nil || m[1] != m[2] {
		t.Fatalf("viewBox: %.120s", svg)
	}
	size, _ := strconv.Atoi(m[1])
	modules := size - 2*qrQuietZone
	if (modules-21)%4 != 0 || modules < 21 {
		t.Fatalf("%d modules is no QR version", modules)
	}
	// Each finder pattern's top row is a run of 7 dark modules.
	for _, at := range [][2]int{{0, 0}, {modules - 7, 0}, {0, modules - 7}} {
		seg := "M" + strconv.Itoa(at[0]+qrQuietZone) + " " + strconv.Itoa(at[1]+qrQuietZone) + "h7v1h-7z"
		if !strings.Contains(string(svg), seg) {
			t.Errorf("no finder pattern at %v", at)
		}
	}
}

// TestAuthorize: the socket hook admits a session's own facility only.
func TestAuthorize(t *testing.T) {
	t.Parallel()
	e := newEnv(t, memoryBackend(), Config{})
	c := e.create("enc-auth")
	ctx := context.Background()
	own, other := auth.Claims{Facility: "fac-a", Provider: "p"}, auth.Claims{Facility: "fac-b", Provider: "p"}
	if err := e.api.Authorize(ctx, own, c.Channel); err != nil {
		t.Fatalf("own facility: %v", err)
	}
	for _, tc := range []struct {
		claims  auth.Claims
		channel string
		want    error
	}{
		{other, c.Channel, ErrChannelNotFound},
		{own, "session:" + strings.Repeat("0", 8) + "-0000-0000-0000-000000000000", ErrChannelNotFound},
		{own, "session:garbage", ErrChannelNotFound},
		{own, "news", ErrChannelForbidden},
	} {
		if err := e.api.Authorize(ctx, tc.claims, tc.channel); !errors.Is(err, tc.want) {
			t.Errorf("Authorize(%s, %s) = %v, want %v", tc.claims.Facility, tc.channel, err, tc.want)
		}
	}
	e.clock.Advance(DefaultSessionTTL)
	if err := e.api.Authorize(ctx, own, c.Channel); !errors.Is(err, ErrChannelNotFound) {
		t.Errorf("expired session: %v", err)
	}
}

// TestNewChecksConfig: missing or contradictory settings fail at start.
func TestNewChecksConfig(t *testing.T) {
	t.Parallel()
	v, _ := auth.NewVerifier([]byte(testSecret))
	deps := Deps{Hub: hub.New(hub.NewMemory(hub.MemoryConfig{})), Sessions: session.NewMemoryStore(), Verifier: v}
	l, _ := blob.NewLocal(blob.LocalConfig{Dir: t.TempDir()})
	deps.Blobs = l
	for _, cfg := range []Config{
		{},
		{PublicURL: "handoff.example"},
		{PublicURL: "ftp://handoff.example"},
		{PublicURL: "https://handoff.example", QRTokenTTL: 3 * time.Hour},
		{PublicURL: "https://handoff.example", MaxImages: -1},
	} {
		if _, err := New(cfg, deps); err == nil {
			t.Errorf("New accepted %+v", cfg)
		}
	}
	if _, err := New(Config{PublicURL: "https://handoff.example/"}, Deps{}); err == nil {
		t.Error("New accepted missing deps")
	}
	a, err := New(Config{PublicURL: "https://handoff.example/"}, deps)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Check(t, "PublicURL without the trailing slash", "https://handoff.example", a.cfg.PublicURL)
	testutil.Check(t, "default MaxImages", DefaultMaxImages, a.cfg.MaxImages)
	testutil.Check(t, "default SessionTTL", DefaultSessionTTL, a.cfg.SessionTTL)
	if err := a.Ready(context.Background()); err != nil {
		t.Fatalf("Ready: %v", err)
	}
}
