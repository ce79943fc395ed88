package blob

import (
	"fmt"
	"strings"
)

// keyRoot is the only top-level folder keys may live in; sweeps and lifecycle rules
// rely on every temporary image being under it.
const keyRoot = "sessions/"

// maxSegment bounds one key segment. Local stores a segment as a file name (with a
// short prefix for temp files), and most filesystems cap names at 255 bytes.
const maxSegment = 128

// Key returns the key of one image of a session. The ids are not checked here;
// every Store method checks the key it is given.
func Key(sessionID, imageID string) string {
	return keyRoot + sessionID + "/" + imageID
}

// SessionPrefix returns the prefix that DeletePrefix takes to remove all of a
// session's images.
func SessionPrefix(sessionID string) string {
	return keyRoot + sessionID + "/"
}

// CheckKey reports whether key has the shape "sessions/{sessionId}/{imageId}" with
// each id made only of [A-Za-z0-9._-] and not starting with a dot. The dot rule
// rules out "." and ".." (no path traversal in Local) and keeps names beginning with
// a dot free for Local's temp files and sidecars. Exactly three segments, so in
// Local an object is never also a directory of another object.
func CheckKey(key string) error {
	rest, ok := strings.CutPrefix(key, keyRoot)
	if !ok {
		return fmt.Errorf("%w: must start with %q", ErrInvalidKey, keyRoot)
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 2 {
		return fmt.Errorf("%w: must be %ssessionId/imageId", ErrInvalidKey, keyRoot)
	}
	for _, p := range parts {
		if err := checkSegment(p, false); err != nil {
			return err
		}
	}
	return nil
}

// checkPrefix accepts "sessions/{partial id}", "sessions/{id}/" and
// "sessions/{id}/{partial id}": enough to sweep one session or a range of them,
// never the whole store.
func checkPrefix(prefix string) error {
	rest, ok := strings.CutPrefix(prefix, keyRoot)
	if !ok || rest == "" {
		return fmt.Errorf("%w: prefix must start with %q and name a session", ErrInvalidKey, keyRoot)
	}
	parts := strings.Split(rest, "/")
	if len(parts) > 2 {
		return fmt.Errorf("%w: prefix is deeper than a key", ErrInvalidKey)
	}
	for i, p := range parts {
		last := i == len(parts)-1
		if err := checkSegment(p, last); err != nil {
			return err
		}
	}
	return nil
}

// checkSegment checks one path segment; a trailing segment of a prefix may be empty.
func checkSegment(s string, mayBeEmpty bool) error {
	if s == "" {
		if mayBeEmpty {
			return nil
		}
		return fmt.Errorf("%w: empty segment", ErrInvalidKey)
	}
	if len(s) > maxSegment {
		return fmt.Errorf("%w: segment longer than %d bytes", ErrInvalidKey, maxSegment)
	}
	if s[0] == '.' {
		return fmt.Errorf("%w: segment starts with a dot", ErrInvalidKey)
	}
	for i := 0; i < len(s); i++ {
		if !keyChar(s[i]) {
			return fmt.Errorf("%w: character %q not allowed", ErrInvalidKey, s[i])
		}
	}
	return nil
}

func keyChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	case c == '.', c == '_', c == '-':
		return true
	}
	return false
}
