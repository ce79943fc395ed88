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
