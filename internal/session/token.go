package session

import (
	"crypto/sha256"
	"encoding/hex"
)

// HashToken is the only form of a QR or mobile token a Store sees: tokens
// are never stored or logged. They carry 128+ bits of randomness, so an
// unsalted hash cannot be reversed by search.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
