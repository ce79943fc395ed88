package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// handoff's Ably tokens are self-verifying, so any node with the same API
// keys checks them without a store:
//
//	hdf1.<base64url(JSON claims)>.<base64url(HMAC-SHA256(key secret, "handoff-token\n" + "hdf1." + claims))>
//
// The claims name the key, the issue and expiry times (ms) and the granted
// capability. Changing a key's secret or removing the key revokes its
// tokens; a key's capability is intersected again on every use, so
// narrowing it narrows tokens already issued. There is no per-token
// revocation. The REST API (internal/publish) issues them and both it and
// the Ably realtime socket (internal/ablyrt) verify them.
const AblyTokenPrefix = "hdf1."

// AblyTokenClaims are what a handoff Ably token says.
type AblyTokenClaims struct {
	KeyName    string `json:"k"`
	Issued     int64  `json:"i"`
	Expires    int64  `json:"x"`
	Capability string `json:"c"`
	ClientID   string `json:"cid,omitempty"`
	// Nonce makes every token distinct, as Ably's are: two requests in
	// the same millisecond with the same claims get two tokens.
	Nonce string `json:"n,omitempty"`
}

// AblyToken is a verified token: its claims and its capability, already
// intersected with its key's current one.
type AblyToken struct {
	AblyTokenClaims
	Cap Capability
}

// ExpiresAt is the token's expiry.
func (t AblyToken) ExpiresAt() time.Time { return time.UnixMilli(t.Expires) }

// Token verification failures.
var (
	ErrAblyTokenUnrecognised = errors.New("auth: not a token this deployment issued")
	ErrAblyTokenExpired      = errors.New("auth: token expired")
	ErrAblyTokenKey          = errors.New("auth: unknown API key")
)

// AblyTokens issues and verifies handoff's Ably tokens with keys.
type AblyTokens struct {
	Keys *APIKeys
	Now  func() time.Time
}

func (ts AblyTokens) mac(keyName, signed string) ([]byte, Capability, bool) {
	if ts.Keys == nil {
		return nil, Capability{}, false
	}
	return ts.Keys.Sign(keyName, []byte("handoff-token\n"+signed))
}

// Issue returns a token for c, signed with its key's secret.
func (ts AblyTokens) Issue(c AblyTokenClaims) (string, error) {
	if c.Nonce == "" {
		n := make([]byte, 9)
		if _, err := rand.Read(n); err != nil {
			return "", err
		}
		c.Nonce = base64.RawURLEncoding.EncodeToString(n)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	signed := AblyTokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	mac, _, ok := ts.mac(c.KeyName, signed)
	if !ok {
		return "", ErrAblyTokenKey
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(mac), nil
}

// Verify checks a token's signature and expiry: one of handoff's own
// tokens, or an Ably JWT signed with one of the keys (ablyjwt.go).
func (ts AblyTokens) Verify(token string) (AblyToken, error) {
	if !strings.HasPrefix(token, AblyTokenPrefix) && looksLikeJWT(token) {
		return ts.verifyJWT(token)
	}
	signed, sig, ok := strings.Cut(strings.TrimPrefix(token, AblyTokenPrefix), ".")
	if !strings.HasPrefix(token, AblyTokenPrefix) || !ok {
		return AblyToken{}, ErrAblyTokenUnrecognised
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(signed)
	got, err2 := base64.RawURLEncoding.DecodeString(sig)
	var c AblyTokenClaims
	if err1 != nil || err2 != nil || json.Unmarshal(payload, &c) != nil {
		return AblyToken{}, ErrAblyTokenUnrecognised
	}
	want, keyCap, ok := ts.mac(c.KeyName, AblyTokenPrefix+signed)
	if !ok || !hmac.Equal(got, want) {
		return AblyToken{}, ErrAblyTokenUnrecognised
	}
	if ts.Now().UnixMilli() >= c.Expires {
		return AblyToken{}, ErrAblyTokenExpired
	}
	tc, err := ParseCapability(c.Capability)
	if err != nil {
		return AblyToken{}, ErrAblyTokenUnrecognised
	}
	return AblyToken{AblyTokenClaims: c, Cap: tc.Intersect(keyCap)}, nil
}
