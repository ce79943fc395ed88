package capture

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
)

// Token sizes. QR tokens are 128 bits so the QR code stays small and quick
// to scan; mobile tokens never leave the phone's memory, so they get 256.
// Both are far beyond guessing, and neither is stored or logged, only its
// SHA-256 hash.
const (
	qrTokenBytes     = 16
	mobileTokenBytes = 32
)

// newToken returns n random bytes as unpadded base64url.
func newToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails since Go 1.24
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashToken is the only form of a token a Store sees. Tokens carry 128+
// bits of randomness, so an unsalted hash cannot be reversed by search.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// tokenShape reports whether s could be a token of n random bytes, so
// malformed input is refused without a store lookup.
func tokenShape(s string, n int) bool {
	if len(s) != base64.RawURLEncoding.EncodedLen(n) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
