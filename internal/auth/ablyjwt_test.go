package auth_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/testutil"
)

// signJWT makes a JWT as an integrator's auth server would for Ably:
// header and claims as given, HMAC-SHA256 with secret.
func signJWT(t *testing.T, header, claims map[string]any, secret string) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signed := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(signed))
	return signed + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// TestAblyJWT: Ably JWTs (HS256, kid = key name, x-ably-capability,
// x-ably-clientId) signed with a configured key are accepted wherever
// handoff's own tokens are; anything else about them is refused.
func TestAblyJWT(t *testing.T) {
	const secret = "jwt-key-secret-0123456789"
	keys, err := auth.ParseAPIKeys("app.jwt:"+secret+",app.other:other-secret-0123456789",
		`{"app.jwt":{"session:*":["publish","subscribe","history"]}}`)
	if err != nil {
		t.Fatal(err)
	}
	clock := testutil.NewClock()
	ts := auth.AblyTokens{Keys: keys, Now: clock.Now}
	now := clock.Now().Unix()
	hdr := map[string]any{"typ": "JWT", "alg": "HS256", "kid": "app.jwt"}
	claims := func(extra map[string]any) map[string]any {
		c := map[string]any{"iat": now, "exp": now + 600}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}

	tok, err := ts.Verify(signJWT(t, hdr, claims(map[string]any{
		"x-ably-capability": `{"session:abc":["subscribe","publish"],"other":["publish"]}`,
		"x-ably-clientId":   "desk-1",
	}), secret))
	if err != nil {
		t.Fatalf("a valid Ably JWT: %v", err)
	}
	testutil.Check(t, "key name", "app.jwt", tok.KeyName)
	testutil.Check(t, "client id", "desk-1", tok.ClientID)
	testutil.Check(t, "expiry", (now+600)*1000, tok.Expires)
	testutil.Check(t, "may subscribe on its session", true, tok.Cap.Allows("session:abc", "subscribe"))
	testutil.Check(t, "may not subscribe on another session", false, tok.Cap.Allows("session:xyz", "subscribe"))
	testutil.Check(t, "the key's capability bounds the token's", false, tok.Cap.Allows("other", "publish"))

	tok, err = ts.Verify(signJWT(t, hdr, claims(nil), secret))
	if err != nil {
		t.Fatalf("an Ably JWT without a capability: %v", err)
	}
	testutil.Check(t, "without x-ably-capability: the key's", true, tok.Cap.Allows("session:any", "history"))

	refused := []struct {
		name  string
		token string
		want  error
	}{
		{"expired", signJWT(t, hdr, map[string]any{"iat": now - 700, "exp": now - 100}, secret), auth.ErrAblyTokenExpired},
		{"no exp", signJWT(t, hdr, map[string]any{"iat": now}, secret), auth.ErrAblyTokenUnrecognised},
		{"wrong secret", signJWT(t, hdr, claims(nil), "not-the-secret-0123456789"), auth.ErrAblyTokenUnrecognised},
		{"another key's secret", signJWT(t, hdr, claims(nil), "other-secret-0123456789"), auth.ErrAblyTokenUnrecognised},
		{"unknown kid", signJWT(t, map[string]any{"alg": "HS256", "kid": "app.ghost"}, claims(nil), secret), auth.ErrAblyTokenUnrecognised},
		{"no kid", signJWT(t, map[string]any{"alg": "HS256"}, claims(nil), secret), auth.ErrAblyTokenUnrecognised},
		{"alg none", signJWT(t, map[string]any{"alg": "none", "kid": "app.jwt"}, claims(nil), secret), auth.ErrAblyTokenUnrecognised},
		{"alg HS512", signJWT(t, map[string]any{"alg": "HS512", "kid": "app.jwt"}, claims(nil), secret), auth.ErrAblyTokenUnrecognised},
		{"issued in the future", signJWT(t, hdr, map[string]any{"iat": now + 3600, "exp": now + 7200}, secret), auth.ErrAblyTokenUnrecognised},
		{"not yet valid", signJWT(t, hdr, claims(map[string]any{"nbf": now + 3600}), secret), auth.ErrAblyTokenUnrecognised},
		{"bad capability", signJWT(t, hdr, claims(map[string]any{"x-ably-capability": "{not json"}), secret), auth.ErrAblyTokenUnrecognised},
		{"not base64", "a.b.c", auth.ErrAblyTokenUnrecognised},
	}
	for _, tc := range refused {
		if _, err := ts.Verify(tc.token); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}

	// A token that was valid stops being valid at exp.
	tokStr := signJWT(t, hdr, claims(nil), secret)
	clock.Advance(601 * time.Second)
	if _, err := ts.Verify(tokStr); !errors.Is(err, auth.ErrAblyTokenExpired) {
		t.Errorf("after exp: err %v, want expired", err)
	}
}

// TestAblyTokensAreDistinct: two tokens with the same claims, issued in the
// same millisecond, differ (ably-go's TestAuth_RequestToken expects it of
// Ably), and both verify.
func TestAblyTokensAreDistinct(t *testing.T) {
	keys, err := auth.ParseAPIKeys("app.k:token-secret-0123456789", "")
	if err != nil {
		t.Fatal(err)
	}
	clock := testutil.NewClock()
	ts := auth.AblyTokens{Keys: keys, Now: clock.Now}
	c := auth.AblyTokenClaims{KeyName: "app.k", Issued: clock.Now().UnixMilli(), Expires: clock.Now().Add(time.Hour).UnixMilli(), Capability: `{"*":["*"]}`}
	a, err := ts.Issue(c)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ts.Issue(c)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatal("two tokens with the same claims are identical")
	}
	for _, tok := range []string{a, b} {
		if _, err := ts.Verify(tok); err != nil {
			t.Errorf("verify: %v", err)
		}
	}
}
