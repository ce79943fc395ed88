package auth_test

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/handoff-health/handoff/internal/auth"

	"github.com/handoff-health/handoff/internal/testutil"
)

var (
	secret      = []byte("0123456789abcdef0123456789abcdef")
	otherSecret = []byte("fedcba9876543210fedcba9876543210")
)

func newVerifier(t *testing.T) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// sign signs claims with method and key, as a host application (or an
// attacker) might.
func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// rawHS256 builds a token from a literal header, signed with HMAC-SHA256 and
// secret whatever the header says: the algorithm-confusion attack.
func rawHS256(header, payload string, key []byte) string {
	enc := base64.RawURLEncoding
	in := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(in))
	return in + "." + enc.EncodeToString(m.Sum(nil))
}

func TestVerify(t *testing.T) {
	t.Parallel()
	v := newVerifier(t)
	now := time.Now()
	exp := now.Add(time.Hour).Unix()
	good := jwt.MapClaims{"fac": "F1", "sub": "gp-1", "exp": exp}

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	forged := func() string {
		tok := sign(t, jwt.SigningMethodHS256, secret, good)
		// Claim another facility, keep the original signature.
		parts := strings.Split(tok, ".")
		parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"fac":"F2","sub":"gp-1","exp":` + jwtNum(exp) + `}`))
		return strings.Join(parts, ".")
	}
	none := func() string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodNone, good).SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	oversized := sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"fac": strings.Repeat("F", 5000), "sub": "gp-1", "exp": exp})

	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"empty", "", auth.ErrMissingToken},
		{"expired beyond leeway", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"fac": "F1", "sub": "gp-1", "exp": now.Add(-2 * time.Minute).Unix()}), auth.ErrExpiredToken},
		{"forged payload", forged(), auth.ErrInvalidToken},
		{"wrong secret", sign(t, jwt.SigningMethodHS256, otherSecret, good), auth.ErrInvalidToken},
		{"alg none", none(), auth.ErrInvalidToken},
		{"HS384", sign(t, jwt.SigningMethodHS384, secret, good), auth.ErrInvalidToken},
		{"RS256", sign(t, jwt.SigningMethodRS256, rsaKey, good), auth.ErrInvalidToken},
		{"RS256 header, HMAC signature", rawHS256(`{"alg":"RS256","typ":"JWT"}`, `{"fac":"F1","sub":"gp-1","exp":`+jwtNum(exp)+`}`, secret), auth.ErrInvalidToken},
		{"missing fac", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "gp-1", "exp": exp}), auth.ErrInvalidToken},
		{"empty fac", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"fac": "", "sub": "gp-1", "exp": exp}), auth.ErrInvalidToken},
		{"missing sub", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"fac": "F1", "exp": exp}), auth.ErrInvalidToken},
		{"missing exp", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"fac": "F1", "sub": "gp-1"}), auth.ErrInvalidToken},
		{"fac not a string", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"fac": 7, "sub": "gp-1", "exp": exp}), auth.ErrInvalidToken},
		{"garbage", "not-a-jwt", auth.ErrInvalidToken},
		{"three garbage parts", "a.b.c", auth.ErrInvalidToken},
		{"oversized, validly signed", oversized, auth.ErrInvalidToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := v.Verify(tc.token)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify error = %v; want %v", err, tc.want)
			}
			testutil.Check(t, "claims returned with an error", auth.Claims{}, c)
			if tc.token != "" && strings.Contains(err.Error(), tc.token) {
				t.Error("error text contains the token")
			}
		})
	}
}

func jwtNum(n int64) string { return strconv.FormatInt(n, 10) }

func TestVerifyValid(t *testing.T) {
	t.Parallel()
	v := newVerifier(t)
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	cases := []struct {
		name  string
		token func(t *testing.T) string
		want  auth.Claims
	}{
		{"issued by Issue", func(t *testing.T) string {
			tok, err := v.Issue(auth.Claims{Facility: "F1", Provider: "gp-1", Expires: exp})
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}, auth.Claims{Facility: "F1", Provider: "gp-1", Expires: exp}},
		{"issued by a host application, extra claims ignored", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"fac": "F2", "sub": "gp-2", "exp": exp.Unix(), "name": "ignored"})
		}, auth.Claims{Facility: "F2", Provider: "gp-2", Expires: exp}},
		{"expired within the clock-skew leeway", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"fac": "F3", "sub": "gp-3", "exp": time.Now().Add(-5 * time.Second).Unix()})
		}, auth.Claims{Facility: "F3", Provider: "gp-3"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := v.Verify(tc.token(t))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			testutil.Check(t, "Facility", tc.want.Facility, c.Facility)
			testutil.Check(t, "Provider", tc.want.Provider, c.Provider)
			if !tc.want.Expires.IsZero() && !c.Expires.Equal(tc.want.Expires) {
				t.Fatalf("expires = %v, want %v", c.Expires, tc.want.Expires)
			}
		})
	}
}

func TestIssuedTokenIsHS256(t *testing.T) {
	t.Parallel()
	v := newVerifier(t)
	tok, err := v.Issue(auth.Claims{Facility: "F1", Provider: "gp-1", Expires: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	header, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(header), `"alg":"HS256"`) {
		t.Fatalf("header %s", header)
	}
	other, err := auth.NewVerifier(otherSecret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Verify(tok); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("verified with another secret: %v", err)
	}
}

func TestNewVerifierSecretLength(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n  int
		ok bool
	}{{0, false}, {16, false}, {31, false}, {32, true}, {64, true}} {
		_, err := auth.NewVerifier([]byte(strings.Repeat("k", tc.n)))
		if (err == nil) != tc.ok {
			t.Errorf("secret of %d bytes: err = %v, want ok=%v", tc.n, err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), "kkkk") {
			t.Errorf("error shows the secret: %v", err)
		}
	}
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		header []string
		want   string
	}{
		{"missing", nil, ""},
		{"bearer", []string{"Bearer abc.def.ghi"}, "abc.def.ghi"},
		{"lower-case scheme", []string{"bearer abc"}, "abc"},
		{"upper-case scheme", []string{"BEARER abc"}, "abc"},
		{"mixed-case scheme", []string{"bEaReR abc"}, "abc"},
		{"surrounding spaces trimmed", []string{"Bearer   abc  "}, "abc"},
		{"scheme only", []string{"Bearer "}, ""},
		{"scheme without space", []string{"Bearer"}, ""},
		{"no separator", []string{"Bearerabc"}, ""},
		{"basic", []string{"Basic dXNlcjpwYXNz"}, ""},
		{"token scheme", []string{"Token abc"}, ""},
		{"bare token", []string{"abc.def.ghi"}, ""},
		{"empty", []string{""}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := http.NewRequest(http.MethodGet, "http://example.test/", nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range tc.header {
				r.Header.Add("Authorization", h)
			}
			if got := auth.BearerToken(r); got != tc.want {
				t.Fatalf("BearerToken = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestJWTMaxLifetime: the reproduction (an exp in 2100 was accepted) and
// the edges of the limit, measured from now and from iat.
func TestJWTMaxLifetime(t *testing.T) {
	t.Parallel()
	now := time.Now()
	clock := func() time.Time { return now }
	v, err := auth.NewVerifier(secret, auth.VerifierConfig{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Check(t, "default MaxLifetime", 12*time.Hour, v.MaxLifetime())
	short, err := auth.NewVerifier(secret, auth.VerifierConfig{MaxLifetime: time.Hour, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	claims := func(exp time.Time, iat *time.Time) jwt.MapClaims {
		c := jwt.MapClaims{"fac": "F1", "sub": "gp-1", "exp": exp.Unix()}
		if iat != nil {
			c["iat"] = iat.Unix()
		}
		return c
	}
	at := func(d time.Duration) *time.Time { x := now.Add(d); return &x }
	y2100 := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		v    *auth.Verifier
		c    jwt.MapClaims
		want error // nil: accepted
	}{
		{"exp in 2100", v, claims(y2100, nil), auth.ErrInvalidToken},
		{"exp in 2100 with iat now", v, claims(y2100, at(0)), auth.ErrInvalidToken},
		{"exp 13 h away", v, claims(now.Add(13*time.Hour), nil), auth.ErrInvalidToken},
		{"exp 12 h away", v, claims(now.Add(12*time.Hour), at(0)), nil},
		{"exp 11 h away", v, claims(now.Add(11*time.Hour), nil), nil},
		{"iat 11 h ago, exp 2 h away: 13 h in all", v, claims(now.Add(2*time.Hour), at(-11*time.Hour)), auth.ErrInvalidToken},
		{"iat 10 h ago, exp 2 h away", v, claims(now.Add(2*time.Hour), at(-10*time.Hour)), nil},
		{"iat in the future", v, claims(now.Add(2*time.Hour), at(time.Hour)), auth.ErrInvalidToken},
		{"configured 1 h: exp 2 h away", short, claims(now.Add(2*time.Hour), nil), auth.ErrInvalidToken},
		{"configured 1 h: exp 50 min away", short, claims(now.Add(50*time.Minute), at(0)), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := tc.v.Verify(sign(t, jwt.SigningMethodHS256, secret, tc.c))
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Verify error = %v, want %v", err, tc.want)
			}
		})
	}
	// A token the verifier issues itself within the limit verifies.
	tok, err := short.Issue(auth.Claims{Facility: "F1", Provider: "gp-1", Expires: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := short.Verify(tok); err != nil {
		t.Fatalf("issued token: %v", err)
	}
}

// TestJWTAudienceIssuer: aud and iss are checked only when configured, and
// then a missing or different one is refused.
func TestJWTAudienceIssuer(t *testing.T) {
	t.Parallel()
	exp := time.Now().Add(time.Hour).Unix()
	checked, err := auth.NewVerifier(secret, auth.VerifierConfig{Audience: "handoff", Issuer: "https://pms.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	unchecked := newVerifier(t)
	with := func(extra jwt.MapClaims) string {
		c := jwt.MapClaims{"fac": "F1", "sub": "gp-1", "exp": exp}
		for k, v := range extra {
			c[k] = v
		}
		return sign(t, jwt.SigningMethodHS256, secret, c)
	}
	cases := []struct {
		name  string
		v     *auth.Verifier
		token string
		ok    bool
	}{
		{"both match", checked, with(jwt.MapClaims{"aud": "handoff", "iss": "https://pms.example.org"}), true},
		{"aud in a list", checked, with(jwt.MapClaims{"aud": []string{"other", "handoff"}, "iss": "https://pms.example.org"}), true},
		{"aud mismatch", checked, with(jwt.MapClaims{"aud": "other-app", "iss": "https://pms.example.org"}), false},
		{"iss mismatch", checked, with(jwt.MapClaims{"aud": "handoff", "iss": "https://evil.example.org"}), false},
		{"aud missing", checked, with(jwt.MapClaims{"iss": "https://pms.example.org"}), false},
		{"iss missing", checked, with(jwt.MapClaims{"aud": "handoff"}), false},
		{"unset: any aud and iss", unchecked, with(jwt.MapClaims{"aud": "whatever", "iss": "anyone"}), true},
		{"unset: none", unchecked, with(nil), true},
	}
	for _, tc := range cases {
		_, err := tc.v.Verify(tc.token)
		if tc.ok && err != nil {
			t.Errorf("%s: refused: %v", tc.name, err)
		}
		if !tc.ok && !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("%s: err = %v, want ErrInvalidToken", tc.name, err)
		}
	}
	// Issue fills in the configured aud and iss, so dev tokens verify.
	tok, err := checked.Issue(auth.Claims{Facility: "F1", Provider: "gp-1", Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checked.Verify(tok); err != nil {
		t.Fatalf("issued token: %v", err)
	}
}
