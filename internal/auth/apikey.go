package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"
)

// APIKeys holds the server-side publishing keys, Ably-style "keyName:secret".
// Only SHA-256 digests of the secrets are kept in memory.
type APIKeys struct {
	keys map[string][32]byte
}

// ParseAPIKeys parses a comma-separated list of "keyName:secret" pairs
// (HANDOFF_API_KEYS). An empty list is valid and accepts nothing.
func ParseAPIKeys(list string) (*APIKeys, error) {
	k := &APIKeys{keys: make(map[string][32]byte)}
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, secret, ok := strings.Cut(item, ":")
		if !ok || name == "" || len(secret) < 16 {
			return nil, fmt.Errorf("auth: API key %d must be keyName:secret with a secret of at least 16 characters", len(k.keys)+1)
		}
		k.keys[name] = sha256.Sum256([]byte(secret))
	}
	return k, nil
}

// Check reports whether name/secret is a configured key, in constant time
// with respect to the secret.
func (k *APIKeys) Check(name, secret string) bool {
	want, ok := k.keys[name]
	got := sha256.Sum256([]byte(secret))
	return ok && subtle.ConstantTimeCompare(want[:], got[:]) == 1
}

// Len returns the number of configured keys.
func (k *APIKeys) Len() int { return len(k.keys) }
