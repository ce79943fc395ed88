package blob

import (
	"fmt"
	"strings"
)

// Keys live under one of two roots. Phones write only upload keys, through
// signed URLs; the server writes only stored keys (CopyUpload at register,
// then Promote checks what was stored; or Put). No Store signs an upload URL for a stored key, so the
// bytes a stored key holds are the bytes the server checked, and a URL that
// is still valid after register (or after commit) can only rewrite an upload
// object nothing reads any more. Sweeps and lifecycle rules rely on every
// temporary object being under one of the two roots.
const (
	keyRoot    = "sessions/" // stored images: written by the server only
	uploadRoot = "uploads/"  // upload targets: written by signed URLs only
)

// maxSegment bounds one key segment. Local stores a segment as a file name (with a
// short prefix for temp files), and most filesystems cap names at 255 bytes.
const maxSegment = 128

// Key returns the stored key of one image of a session: the copy the server
// checked and files to ALEX. The ids are not checked here; every Store method
// checks the key it is given.
func Key(sessionID, imageID string) string {
	return keyRoot + sessionID + "/" + imageID
}

// UploadKey returns the key a phone uploads one image of a session to; the
// server moves or copies it to Key at register (CopyUpload) and deletes it.
func UploadKey(sessionID, imageID string) string {
	return uploadRoot + sessionID + "/" + imageID
}

// SessionPrefix returns the prefix that DeletePrefix takes to remove all of a
// session's stored images.
func SessionPrefix(sessionID string) string {
	return keyRoot + sessionID + "/"
}

// UploadPrefix returns the prefix that DeletePrefix takes to remove all of a
// session's upload objects.
func UploadPrefix(sessionID string) string {
	return uploadRoot + sessionID + "/"
}

// CheckKey reports whether key has the shape "sessions/{sessionId}/{imageId}" or
// "uploads/{sessionId}/{imageId}" with each id made only of [A-Za-z0-9._-] and not
// starting with a dot. The dot rule rules out "." and ".." (no path traversal in
// Local) and keeps names beginning with a dot free for Local's temp files and
// sidecars. Exactly three segments, so in Local an object is never also a
// directory of another object.
func CheckKey(key string) error {
	if strings.HasPrefix(key, uploadRoot) {
		return checkUnder(key, uploadRoot)
	}
	return checkUnder(key, keyRoot)
}

// checkUploadKey accepts only "uploads/{sessionId}/{imageId}": the keys a signed
// upload URL may write.
func checkUploadKey(key string) error { return checkUnder(key, uploadRoot) }

// checkStoredKey accepts only "sessions/{sessionId}/{imageId}": the keys Put
// and CopyUpload write and no URL can.
func checkStoredKey(key string) error { return checkUnder(key, keyRoot) }

func checkUnder(key, root string) error {
	rest, ok := strings.CutPrefix(key, root)
	if !ok {
		return fmt.Errorf("%w: must start with %q", ErrInvalidKey, root)
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 2 {
		return fmt.Errorf("%w: must be %ssessionId/imageId", ErrInvalidKey, root)
	}
	for _, p := range parts {
		if err := checkSegment(p, false); err != nil {
			return err
		}
	}
	return nil
}

// checkPrefix accepts "{root}{partial id}", "{root}{id}/" and
// "{root}{id}/{partial id}" under either root: enough to sweep one session or a
// range of them, never a whole root.
func checkPrefix(prefix string) error {
	root := keyRoot
	if strings.HasPrefix(prefix, uploadRoot) {
		root = uploadRoot
	}
	rest, ok := strings.CutPrefix(prefix, root)
	if !ok || rest == "" {
		return fmt.Errorf("%w: prefix must start with %q or %q and name a session", ErrInvalidKey, keyRoot, uploadRoot)
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
