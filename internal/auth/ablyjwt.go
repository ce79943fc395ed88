package auth

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
)

// Ably JWTs: a token an integrator's own auth server signs with an API key,
// as Ably documents them, so code that already mints Ably JWTs works
// unchanged against handoff:
//
//	header  {"typ":"JWT","alg":"HS256","kid":"<keyName>"}
//	claims  {"iat":…,"exp":…,"x-ably-capability":"{…}","x-ably-clientId":"…"}
//	HMAC-SHA256 with the key's secret
//
// The capability is a JSON string, as Ably wants it; without one the token
// carries the key's capability. Either way it is intersected with the key's
// current capability on every use, like handoff's own tokens.

type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

type ablyJWTClaims struct {
	IssuedAt   *float64 `json:"iat"`
	Expires    *float64 `json:"exp"`
	NotBefore  *float64 `json:"nbf"`
	Capability *string  `json:"x-ably-capability"`
	ClientID   string   `json:"x-ably-clientId"`
}

// jwtSkew is the clock difference tolerated on iat and nbf (never on exp).
const jwtSkew = 30 * time.Second

// looksLikeJWT reports whether token has a JWT's three dot-separated parts.
func looksLikeJWT(token string) bool { return strings.Count(token, ".") == 2 }

// verifyJWT checks an Ably JWT signed with one of ts's keys.
func (ts AblyTokens) verifyJWT(token string) (AblyToken, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return AblyToken{}, ErrAblyTokenUnrecognised
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	var h jwtHeader
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hb, &h) != nil {
		return AblyToken{}, ErrAblyTokenUnrecognised
	}
	// Only HS256: "none" and every other algorithm are refused, so a
	// token's header can never choose how it is checked.
	if h.Alg != "HS256" || h.Kid == "" || (h.Typ != "" && !strings.EqualFold(h.Typ, "JWT")) {
		return AblyToken{}, ErrAblyTokenUnrecognised
	}
	if ts.Keys == nil {
		return AblyToken{}, ErrAblyTokenUnrecognised
	}
	want, keyCap, ok := ts.Keys.Sign(h.Kid, []byte(parts[0]+"."+parts[1]))
	if !ok || !hmac.Equal(sig, want) {
		return AblyToken{}, ErrAblyTokenUnrecognised
	}
	var c ablyJWTClaims
	if err := json.Unmarshal(cb, &c); err != nil || c.Expires == nil {
		return AblyToken{}, ErrAblyTokenUnrecognised
	}
	now := ts.Now()
	expires := time.UnixMilli(int64(*c.Expires * 1000))
	if !now.Before(expires) {
		return AblyToken{}, ErrAblyTokenExpired
	}
	if c.NotBefore != nil && now.Add(jwtSkew).Before(time.UnixMilli(int64(*c.NotBefore*1000))) {
		return AblyToken{}, ErrAblyTokenUnrecognised
	}
	issued := now
	if c.IssuedAt != nil {
		issued = time.UnixMilli(int64(*c.IssuedAt * 1000))
		if now.Add(jwtSkew).Before(issued) {
			return AblyToken{}, ErrAblyTokenUnrecognised
		}
	}
	granted := keyCap
	if c.Capability != nil {
		asked, err := ParseCapability(*c.Capability)
		if err != nil {
			return AblyToken{}, ErrAblyTokenUnrecognised
		}
		granted = asked.Intersect(keyCap)
	}
	return AblyToken{
		AblyTokenClaims: AblyTokenClaims{KeyName: h.Kid, Issued: issued.UnixMilli(), Expires: expires.UnixMilli(),
			Capability: granted.String(), ClientID: c.ClientID},
		Cap: granted,
	}, nil
}
