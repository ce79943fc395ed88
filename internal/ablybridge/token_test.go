package ablybridge

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/httpx"
	"github.com/handoff-health/handoff/internal/testutil"
)

// tokenFixture is a token endpoint whose authorize knows one session of
// facility "fac-1", and a verifier to mint desktop JWTs.
func tokenFixture(t *testing.T) (http.Handler, *auth.Verifier) {
	t.Helper()
	v, err := auth.NewVerifier([]byte(strings.Repeat("s", 32)))
	must(t, err)
	authorize := func(ctx context.Context, c auth.Claims, sessionID string) (string, error) {
		switch {
		case sessionID == "sess-1" && c.Facility == "fac-1":
			return "session:sess-1", nil
		case sessionID == "closed":
			return "", httpx.Errorf(http.StatusGone, "session_closed", "the session has ended")
		}
		return "", fmt.Errorf("store: %w", ErrUnknownSession)
	}
	h, err := TokenHandler(testKey, v, authorize, 30*time.Minute)
	must(t, err)
	return h, v
}

func jwtFor(t *testing.T, v *auth.Verifier, facility string) string {
	t.Helper()
	tok, err := v.Issue(auth.Claims{Facility: facility, Provider: "gp-1", Expires: time.Now().Add(time.Hour)})
	must(t, err)
	return tok
}

func postToken(h http.Handler, bearer, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/api/medtech/session/ably-token", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		r.Header.Set("Authorization", "Bearer "+bearer)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestTokenRequestIsSignedAndScoped(t *testing.T) {
	t.Parallel()
	h, v := tokenFixture(t)
	w := postToken(h, jwtFor(t, v, "fac-1"), `{"sessionId":"sess-1"}`)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var tr struct {
		KeyName    string `json:"keyName"`
		TTL        int64  `json:"ttl"`
		Capability string `json:"capability"`
		ClientID   string `json:"clientId"`
		Timestamp  int64  `json:"timestamp"`
		Nonce      string `json:"nonce"`
		MAC        string `json:"mac"`
	}
	must(t, json.Unmarshal(w.Body.Bytes(), &tr))
	if strings.Contains(w.Body.String(), testKeySecret) {
		t.Fatal("the key secret left the server")
	}

	// Recompute Ably's TokenRequest MAC with the secret, as Ably does.
	mac := hmac.New(sha256.New, []byte(testKeySecret))
	fmt.Fprintf(mac, "%s\n%d\n%s\n%s\n%d\n%s\n", tr.KeyName, tr.TTL, tr.Capability, tr.ClientID, tr.Timestamp, tr.Nonce)
	if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); tr.MAC != want {
		t.Errorf("mac %q, want %q", tr.MAC, want)
	}
	testutil.Check(t, "token request keyName", testKeyName, tr.KeyName)
	testutil.Check(t, "token request ttl (ms)", (30 * time.Minute).Milliseconds(), tr.TTL)
	if len(tr.Nonce) < 16 {
		t.Errorf("token request nonce %q is shorter than 16 characters", tr.Nonce)
	}
	if age := time.Since(time.UnixMilli(tr.Timestamp)); age < 0 || age > time.Minute {
		t.Errorf("timestamp %d is not now", tr.Timestamp)
	}
	var capability map[string][]string
	must(t, json.Unmarshal([]byte(tr.Capability), &capability))
	testutil.Check(t, "capability", map[string][]string{"session:sess-1": {"subscribe"}}, capability)
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
}

func TestTokenRefusals(t *testing.T) {
	t.Parallel()
	h, v := tokenFixture(t)
	good := jwtFor(t, v, "fac-1")
	other, _ := auth.NewVerifier([]byte(strings.Repeat("x", 32)))
	forged, err := other.Issue(auth.Claims{Facility: "fac-1", Provider: "gp", Expires: time.Now().Add(time.Hour)})
	must(t, err)
	cases := []struct {
		name, bearer, body string
		status             int
		code               string
	}{
		{"no JWT", "", `{"sessionId":"sess-1"}`, 401, "unauthorized"},
		{"JWT of another secret", forged, `{"sessionId":"sess-1"}`, 401, "invalid_token"},
		{"garbage JWT", "not.a.jwt", `{"sessionId":"sess-1"}`, 401, "invalid_token"},
		{"another facility's session", jwtFor(t, v, "fac-2"), `{"sessionId":"sess-1"}`, 404, "session_not_found"},
		{"unknown session", good, `{"sessionId":"nope"}`, 404, "session_not_found"},
		{"authorize's own answer", good, `{"sessionId":"closed"}`, 410, "session_closed"},
		{"malformed JSON", good, `{"sessionId":`, 400, "invalid_json"},
		{"unknown field", good, `{"sessionId":"sess-1","admin":true}`, 400, "unknown_field"},
		{"missing sessionId", good, `{}`, 400, "invalid_session_id"},
		{"wrong type", good, `{"sessionId":42}`, 400, "invalid_field"},
		{"oversize body", good, `{"sessionId":"` + strings.Repeat("a", 8<<10) + `"}`, 413, "body_too_large"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := postToken(h, c.bearer, c.body)
			var body struct {
				Error struct{ Code string } `json:"error"`
			}
			_ = json.Unmarshal(w.Body.Bytes(), &body)
			okStatus := testutil.Check(t, "status", c.status, w.Code)
			okCode := testutil.Check(t, "error code", c.code, body.Error.Code)
			if !okStatus || !okCode {
				t.Logf("reply %s", w.Body)
			}
			if strings.Contains(w.Body.String(), "mac") {
				t.Errorf("a refusal carried a token request: %s", w.Body)
			}
		})
	}
}

func TestTokenHandlerConfig(t *testing.T) {
	v, err := auth.NewVerifier([]byte(strings.Repeat("s", 32)))
	must(t, err)
	authorize := func(context.Context, auth.Claims, string) (string, error) { return "c", nil }
	for _, key := range []string{"", "nosecret", "nodot:secret", "app.key:"} {
		if _, err := TokenHandler(key, v, authorize, 0); err == nil {
			t.Errorf("key %q accepted", key)
		} else if key != "" && strings.Contains(err.Error(), key) {
			t.Errorf("the error echoes the key: %v", err)
		}
	}
	if _, err := TokenHandler(testKey, v, authorize, 25*time.Hour); err == nil {
		t.Error("a TTL beyond Ably's 24 h accepted")
	}
	if _, err := TokenHandler(testKey, nil, authorize, 0); err == nil {
		t.Error("no verifier accepted")
	}
}
