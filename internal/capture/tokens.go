package capture

import (
	"crypto/rand"
	"encoding/base64"
)

// Token sizes. QR tokens are 128 bits so the QR code stays small and quick
// to scan; mobile tokens never leave the phone's memory, so they get 256.
// Both are far beyond guessing, and neither is stored or logged, only its
// hash (session.HashToken).
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
