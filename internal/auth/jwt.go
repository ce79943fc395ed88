// Package auth verifies the credentials handoff accepts: the desktop's
// HS256 JWT issued by the host application (claims fac, sub, exp; a bounded
// lifetime, optional aud and iss) and the API keys used for server-side
// publishing, each with an Ably-style Capability that says where it may
// do what.
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

// DefaultJWTMaxLifetime bounds how far in the future a desktop JWT may
// expire: a GP's working day. A host application that mints tokens for a
// session of the PMS rarely needs more, and a token that leaks (a log, a
// screenshot of a URL fragment) is then useful for hours, not for years.
const DefaultJWTMaxLifetime = 12 * time.Hour

// VerifierConfig tightens what a Verifier accepts. Zero fields take the
// defaults noted on them.
type VerifierConfig struct {
	// MaxLifetime refuses a token whose exp is more than this after now,
	// or after its iat when it has one. Zero means DefaultJWTMaxLifetime.
	MaxLifetime time.Duration
	// Audience, when set, must be one of the token's aud values.
	// Empty: aud is not checked.
	Audience string
	// Issuer, when set, must equal the token's iss. Empty: iss is not
	// checked.
	Issuer string
	// Now is the clock, for tests. Nil means time.Now.
	Now func() time.Time
}

// Verifier checks desktop JWTs signed with a shared HS256 secret.
type Verifier struct {
	secret []byte
	cfg    VerifierConfig
	parser *jwt.Parser
}

// NewVerifier returns a verifier for tokens signed with secret, with the
// limits of cfg (at most one; none means the defaults). A secret shorter
// than 32 bytes is refused: HS256 with a short key is guessable.
func NewVerifier(secret []byte, cfg ...VerifierConfig) (*Verifier, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("auth: JWT secret must be at least 32 bytes, got %d", len(secret))
	}
	var c VerifierConfig
	if len(cfg) > 0 {
		c = cfg[0]
	}
	if c.MaxLifetime <= 0 {
		c.MaxLifetime = DefaultJWTMaxLifetime
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{"HS256"}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), // an iat in the future is refused
		jwt.WithLeeway(clockSkew),
		jwt.WithTimeFunc(c.Now),
	}
	if c.Audience != "" {
		opts = append(opts, jwt.WithAudience(c.Audience))
	}
	if c.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.Issuer))
	}
	return &Verifier{secret: secret, cfg: c, parser: jwt.NewParser(opts...)}, nil
}

// MaxLifetime is the longest a token this verifier accepts may live.
func (v *Verifier) MaxLifetime() time.Duration { return v.cfg.MaxLifetime }

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
	if v.outlivesMax(tc.RegisteredClaims) {
		return Claims{}, ErrInvalidToken
	}
	return Claims{Facility: tc.Facility, Provider: tc.Subject, Expires: tc.ExpiresAt.Time}, nil
}

// outlivesMax reports whether a token expires more than the maximum
// lifetime after now, or after its iat when it has one: the host
// application meant it to live longer than this node accepts.
func (v *Verifier) outlivesMax(rc jwt.RegisteredClaims) bool {
	exp := rc.ExpiresAt.Time
	if exp.Sub(v.cfg.Now()) > v.cfg.MaxLifetime+clockSkew {
		return true
	}
	return rc.IssuedAt != nil && exp.Sub(rc.IssuedAt.Time) > v.cfg.MaxLifetime
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
			IssuedAt:  jwt.NewNumericDate(v.cfg.Now()),
			Issuer:    v.cfg.Issuer,
		},
	}
	if v.cfg.Audience != "" {
		tc.Audience = jwt.ClaimStrings{v.cfg.Audience}
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
