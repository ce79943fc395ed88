// Package blob stores the temporary image objects of capture sessions. Phones upload
// straight to the store through short-lived signed URLs, so image bytes never pass
// through the API server's JSON handlers. An upload lands under an upload key
// ("uploads/..."); at register the server copies it, checking it on the way, to a
// stored key ("sessions/...") that no URL can write (Promote), and files that copy
// to ALEX. Both are deleted after commit or expiry.
//
// Two implementations share one contract: Local (a directory on the server's disk,
// with URLs signed and served by the server itself) and S3 (any S3-compatible store,
// with SigV4 presigned URLs).
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Store keeps temporary image objects that phones upload directly (not through the
// API server's JSON handlers).
//
// Keys look like "uploads/{sessionId}/{imageId}" (UploadKey: what signed URLs
// write) or "sessions/{sessionId}/{imageId}" (Key: what only the server writes);
// every method rejects any other shape with ErrInvalidKey before touching the
// store, so a bad id can never address a path outside the session area.
type Store interface {
	// PresignUpload returns how a client uploads exactly size bytes of contentType to
	// key before ttl passes. key must be an upload key: a stored key is
	// ErrInvalidKey, so no URL ever writes what the server checked. The store itself refuses a body of a different size,
	// another content type, or a request after expiry wherever it can, so a phone
	// cannot bypass the limits the API server checked when it signed. A size outside
	// 1..MaxBytes or a malformed content type is ErrInvalidUpload.
	PresignUpload(ctx context.Context, key, contentType string, size int64, ttl time.Duration) (Upload, error)
	// PresignGet returns a URL that downloads key until ttl passes. It does not check
	// that the object exists; a missing object is a 404 when the URL is fetched.
	PresignGet(ctx context.Context, key string, ttl time.Duration) (string, error)
	// Stat returns the size and content type of a stored object, or ErrNotFound.
	Stat(ctx context.Context, key string) (Info, error)
	// Open streams an object, or returns ErrNotFound. The caller closes the reader.
	// Used to check magic bytes and to read the bytes filed to ALEX.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// Put stores exactly size bytes read from r as key, with contentType. key must
	// be a stored key (ErrInvalidKey otherwise). The object appears whole or not at
	// all: if r yields fewer or more than size bytes, the error wraps ErrSize and
	// none of r's bytes stay stored under key.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	// CopyUpload makes storedKey hold, with contentType, the object uploadKey
	// holds now, without its bytes passing through the server; ErrNotFound if
	// there is none. uploadKey must be an upload key and storedKey a stored key
	// (ErrInvalidKey otherwise). The object appears at storedKey whole or not at
	// all, and is durable when CopyUpload returns. Local moves the file (the
	// upload is gone after it); S3 copies it server-side (CopyObject; the upload
	// stays until deleted). Promote uses it, then checks what was stored.
	CopyUpload(ctx context.Context, uploadKey, storedKey, contentType string) error
	// Delete removes one object; a missing object is not an error, so retries and
	// sweeps are idempotent.
	Delete(ctx context.Context, key string) error
	// DeletePrefix removes every object whose key starts with prefix, e.g.
	// "sessions/{id}/" when a session expires. The prefix must start with
	// "sessions/" and name at least part of a session id, so a bug cannot empty
	// the whole store.
	DeletePrefix(ctx context.Context, prefix string) error
	// Ping reports whether the store is reachable, for /readyz.
	Ping(ctx context.Context) error
}

// Upload tells a client how to send one object straight to the store. It is
// returned to the phone as JSON by the presigned-url endpoint.
type Upload struct {
	Method    string            `json:"method"`            // "PUT" or "POST"
	URL       string            `json:"url"`               // absolute unless Local.BaseURL is empty
	Headers   map[string]string `json:"headers,omitempty"` // headers the client must send (PUT)
	Fields    map[string]string `json:"fields,omitempty"`  // form fields (POST policy)
	ExpiresAt time.Time         `json:"expiresAt"`
}

// Info describes a stored object.
type Info struct {
	Size        int64
	ContentType string
}

var (
	// ErrNotFound means the object does not exist (never uploaded, or deleted).
	ErrNotFound = errors.New("blob: object not found")
	// ErrInvalidKey means a key or prefix is not of the "sessions/{id}/{id}" shape.
	ErrInvalidKey = errors.New("blob: invalid key")
	// ErrSize means an object is not the size it was signed or registered for.
	ErrSize = errors.New("blob: object is not the expected size")
	// ErrInvalidUpload means PresignUpload was asked for a size, content type or
	// ttl the store will not sign.
	ErrInvalidUpload = errors.New("blob: invalid upload request")
)

// DefaultMaxBytes caps one image when a config leaves MaxBytes zero. Phone cameras
// produce 2-12 MB JPEG/HEIC files; 25 MiB leaves headroom without letting one
// upload fill a small clinic server's disk.
const DefaultMaxBytes int64 = 25 << 20

// maxTTL is the longest a signed URL may live: SigV4 presigned URLs cannot outlive
// seven days, and Local keeps the same bound so both stores behave alike. Both
// count expiry in whole seconds, so the shortest ttl is one second.
const maxTTL = 7 * 24 * time.Hour

// maxContentType bounds the signed content type; real image types are short.
const maxContentType = 100

// checkUpload validates what PresignUpload is asked to sign, identically for both
// stores, so a caller sees the same ErrInvalidUpload whichever store is configured.
func checkUpload(contentType string, size, maxBytes int64, ttl time.Duration) error {
	if size <= 0 || size > maxBytes {
		return fmt.Errorf("%w: size %d outside 1..%d", ErrInvalidUpload, size, maxBytes)
	}
	if !validContentType(contentType) {
		return fmt.Errorf("%w: content type must be type/subtype", ErrInvalidUpload)
	}
	if err := checkTTL(ttl); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidUpload, err)
	}
	return nil
}

func checkTTL(ttl time.Duration) error {
	if ttl < time.Second || ttl > maxTTL {
		return fmt.Errorf("ttl %s outside [1s, %s]", ttl, maxTTL)
	}
	return nil
}

// exactReader yields r's bytes and fails with ErrSize if r has fewer or more
// than want, so a Put can never store a different size than it was told. The
// first error it returned stays in err: an S3 client that retries hides it.
type exactReader struct {
	r    io.Reader
	want int64
	n    int64
	err  error
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if e.n >= e.want {
		// Probe for a byte past the end: one there is a size mismatch.
		if extraByte(e.r) {
			e.err = fmt.Errorf("%w: more than %d bytes", ErrSize, e.want)
			return 0, e.err
		}
		return 0, io.EOF
	}
	if int64(len(p)) > e.want-e.n {
		p = p[:e.want-e.n]
	}
	n, err := e.r.Read(p)
	e.n += int64(n)
	if err == io.EOF {
		if e.n < e.want {
			e.err = fmt.Errorf("%w: %d of %d bytes", ErrSize, e.n, e.want)
			return n, e.err
		}
		err = nil
	}
	return n, err
}

// extraByte reports whether r yields one more byte.
func extraByte(r io.Reader) bool {
	var one [1]byte
	n, _ := io.ReadFull(r, one[:])
	return n > 0
}

// checkCopy checks CopyUpload's arguments: an upload key, a stored key and
// a bare content type.
func checkCopy(uploadKey, storedKey, contentType string) error {
	if err := checkUploadKey(uploadKey); err != nil {
		return err
	}
	if err := checkStoredKey(storedKey); err != nil {
		return err
	}
	if !validContentType(contentType) {
		return fmt.Errorf("%w: content type must be type/subtype", ErrInvalidUpload)
	}
	return nil
}

// validContentType accepts a bare "type/subtype" of token characters. Parameters
// are refused because the client must echo the value byte for byte as a signed
// header, and anything looser could smuggle header syntax into that echo.
func validContentType(ct string) bool {
	if len(ct) == 0 || len(ct) > maxContentType {
		return false
	}
	typ, sub, ok := strings.Cut(ct, "/")
	return ok && isToken(typ) && isToken(sub)
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !keyChar(c) && c != '+' {
			return false
		}
	}
	return true
}
