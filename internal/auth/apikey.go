package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// APIKeys holds the server-side publishing keys, Ably-style "keyName:secret",
// each with its Capability. Secrets are compared through SHA-256 digests
// (constant time, whatever their length); the secrets themselves are kept
// only to compute HMACs (Sign) and are never returned, logged or printed.
//
// Keys may be added and removed at runtime (Add, Remove: the test-app
// provisioner does), so every method is safe for concurrent use.
type APIKeys struct {
	mu   sync.RWMutex
	keys map[string]apiKey
	// gen counts the changes to keys (Add, Remove); see Generation.
	gen atomic.Uint64
}

type apiKey struct {
	digest [32]byte
	secret []byte // signs and checks TokenRequest MACs and handoff's tokens
	cap    Capability
}

// ParseAPIKeys parses a comma-separated list of "keyName:secret" pairs
// (HANDOFF_API_KEYS) and, optionally, their capabilities
// (HANDOFF_API_KEY_CAPABILITIES): a JSON object from key name to an Ably
// capability, e.g.
//
//	{"bench":{"session:*":["publish"]}, "ops":{"*":["publish","history"]}}
//
// A key the object does not name gets AllowAll. An empty list is valid and
// accepts nothing. Errors name keys by position or name, never a secret.
func ParseAPIKeys(list, capabilities string) (*APIKeys, error) {
	k := &APIKeys{keys: make(map[string]apiKey)}
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, secret, ok := strings.Cut(item, ":")
		if !ok || name == "" || len(secret) < 16 {
			return nil, fmt.Errorf("auth: API key %d must be keyName:secret with a secret of at least 16 characters", len(k.keys)+1)
		}
		k.keys[name] = apiKey{digest: sha256.Sum256([]byte(secret)), secret: []byte(secret), cap: AllowAll}
	}
	if err := k.setCapabilities(capabilities); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *APIKeys) setCapabilities(spec string) error {
	if strings.TrimSpace(spec) == "" {
		return nil
	}
	var byKey map[string]json.RawMessage
	if err := json.Unmarshal([]byte(spec), &byKey); err != nil {
		return fmt.Errorf("auth: API key capabilities must be a JSON object of keyName → capability: %w", err)
	}
	names := make([]string, 0, len(byKey))
	for name := range byKey {
		names = append(names, name)
	}
	sort.Strings(names) // the first error is the same on every start
	for _, name := range names {
		key, ok := k.keys[name]
		if !ok {
			// A capability for a key that does not exist is a typo that
			// would leave the real key with full access.
			return fmt.Errorf("auth: API key capabilities name %q, which is not a configured API key", name)
		}
		c, err := ParseCapability(string(byKey[name]))
		if err != nil {
			return fmt.Errorf("auth: API key %q: %w", name, err)
		}
		key.cap = c
		k.keys[name] = key
	}
	return nil
}

// Authenticate returns the capability of the key name/secret, or false
// when it is not a configured key. The secret is compared in constant time.
func (k *APIKeys) Authenticate(name, secret string) (Capability, bool) {
	k.mu.RLock()
	key, ok := k.keys[name]
	k.mu.RUnlock()
	got := sha256.Sum256([]byte(secret))
	if !ok || subtle.ConstantTimeCompare(key.digest[:], got[:]) != 1 {
		return Capability{}, false
	}
	return key.cap, true
}

// Generation counts the changes made to the keys since the start (Add and
// Remove bump it, after the change). A caller that remembers a verified
// credential reads Generation before verifying it and stores the value
// with it: the credential stays good only while Generation is unchanged.
// Read before, so a change that races with the verification can only make
// the remembered credential look stale, never make a removed key look valid.
// A nil *APIKeys (no keys) is at generation 0 forever.
func (k *APIKeys) Generation() uint64 {
	if k == nil {
		return 0
	}
	return k.gen.Load()
}

// Check reports whether name/secret is a configured key.
func (k *APIKeys) Check(name, secret string) bool {
	_, ok := k.Authenticate(name, secret)
	return ok
}

// Sign returns HMAC-SHA256(secret, msg) with the secret of the key named
// name, and that key's capability; ok is false for an unknown key. It
// checks an Ably TokenRequest's MAC and signs handoff's own tokens, so the
// secret itself never leaves this type.
func (k *APIKeys) Sign(name string, msg []byte) (mac []byte, c Capability, ok bool) {
	k.mu.RLock()
	key, ok := k.keys[name]
	k.mu.RUnlock()
	if !ok {
		return nil, Capability{}, false
	}
	h := hmac.New(sha256.New, key.secret)
	h.Write(msg)
	return h.Sum(nil), key.cap, true
}

// Len returns the number of configured keys.
func (k *APIKeys) Len() int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return len(k.keys)
}

// Add adds (or replaces) the key name:secret with capability c at
// runtime. The secret follows ParseAPIKeys' rule (16 characters or more).
func (k *APIKeys) Add(name, secret string, c Capability) error {
	if name == "" || strings.ContainsAny(name, ":,") || len(secret) < 16 {
		return fmt.Errorf("auth: an added API key needs a name without ':' or ',' and a secret of at least 16 characters")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys[name] = apiKey{digest: sha256.Sum256([]byte(secret)), secret: []byte(secret), cap: c}
	k.gen.Add(1)
	return nil
}

// Remove deletes the key named name; tokens it signed stop verifying.
func (k *APIKeys) Remove(name string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.keys, name)
	k.gen.Add(1)
}
