// Package auth verifies the credentials handoff accepts: the desktop's
// HS256 JWT issued by the host application (claims fac, sub, exp) and the
// API keys used for server-side publishing.
package auth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/handoff-health/handoff/internal/httpx"
)

// Claims are what handoff reads from a desktop JWT.
type Claims struct {
	// Facility is the practice's facility id (claim "fac"). A capture
	// session belongs to exactly one facility.
	Facility string
	// Provider is the GP's provider id (claim "sub").
	Provider string
	// Expires is the token's expiry (claim "exp", required).
	Expires time.Time
}

// Errors from Verify. Their text is safe to show a client: it never
// includes the token.
var (
	ErrMissingToken = errors.New("missing bearer token")
	ErrInvalidToken = errors.New("invalid token")
	ErrExpiredToken = errors.New("token expired")
)

// maxTokenLen bounds what is parsed; real desktop JWTs are a few hundred bytes.
const maxTokenLen = 4096

// clockSkew tolerates small differences between the host app's clock and ours.
const clockSkew = 30 * time.Second

// Verifier checks desktop JWTs signed with a shared HS256 secret.
type Verifier struct {
	secret []byte
	parser *jwt.Parser
}

// NewVerifier returns a verifier for tokens signed with secret. A secret
// shorter than 32 bytes is refused: HS256 with a short key is guessable.
func NewVerifier(secret []byte) (*Verifier, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("auth: JWT secret must be at least 32 bytes, got %d", len(secret))
	}
	return &Verifier{
		secret: secret,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{"HS256"}),
			jwt.WithExpirationRequired(),
			jwt.WithLeeway(clockSkew),
		),
	}, nil
}

type tokenClaims struct {
	Facility string `json:"fac"`
	jwt.RegisteredClaims
}

// Verify parses and checks a token; it requires fac, sub and exp.
func (v *Verifier) Verify(token string) (Claims, error) {
	if token == "" {
		return Claims{}, ErrMissingToken
	}
	if len(token) > maxTokenLen {
		return Claims{}, ErrInvalidToken
	}
	var tc tokenClaims
	_, err := v.parser.ParseWithClaims(token, &tc, func(*jwt.Token) (any, error) { return v.secret, nil })
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Claims{}, ErrExpiredToken
	case err != nil:
		return Claims{}, ErrInvalidToken
	}
	if tc.Facility == "" || tc.Subject == "" || tc.ExpiresAt == nil {
		return Claims{}, ErrInvalidToken
	}
	return Claims{Facility: tc.Facility, Provider: tc.Subject, Expires: tc.ExpiresAt.Time}, nil
}

// Issue signs a token for c. handoff uses it only in dev mode (the built-in
// demo practice) and in tests; in production the host application issues
// tokens with the same secret.
func (v *Verifier) Issue(c Claims) (string, error) {
	tc := tokenClaims{
		Facility: c.Facility,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   c.Provider,
			ExpiresAt: jwt.NewNumericDate(c.Expires),
			IssuedAt:  jwt.NewNumericDate(time.Now()),
		},
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, tc).SignedString(v.secret)
}

// Desktop authenticates a desktop API call by its bearer JWT. Its errors
// are API errors (401 unauthorized, token_expired, invalid_token) that every
// desktop endpoint answers the same way.
func (v *Verifier) Desktop(r *http.Request) (Claims, error) {
	c, err := v.Verify(BearerToken(r))
	switch {
	case err == nil:
		return c, nil
	case errors.Is(err, ErrMissingToken):
		return c, httpx.Errorf(http.StatusUnauthorized, "unauthorized", "a bearer token is required")
	case errors.Is(err, ErrExpiredToken):
		return c, httpx.Errorf(http.StatusUnauthorized, "token_expired", "the bearer token has expired")
	default:
		return c, httpx.Errorf(http.StatusUnauthorized, "invalid_token", "the bearer token is not valid")
	}
}

// BearerToken returns the token of an "Authorization: Bearer …" header.
func BearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}
