package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// Expect is what an upload was signed for and what it may be.
type Expect struct {
	ContentType string // the signed content type; the bytes must be this type
	Size        int64  // the signed size
	// MaxPixels caps the width × height the header declares. Zero or less
	// means no cap.
	MaxPixels int64
}

// Promoted describes the stored copy Promote made.
type Promoted struct {
	// SHA256 is the lower-case hex SHA-256 of the bytes stored: the bytes
	// that were checked. Commit files only bytes with this hash.
	SHA256 string
	Header ImageHeader
}

// ErrTooManyPixels means an image's header declares more pixels than
// Expect.MaxPixels.
var ErrTooManyPixels = errors.New("blob: image has too many pixels")

// Promote copies the upload at uploadKey to storedKey, checking on the way the
// very bytes it copies: the size, the magic bytes and the header (ParseImage)
// against want, while hashing them. Reading once and storing what was read
// means the stored object is exactly what was checked, even if a still-valid
// upload URL rewrites uploadKey meanwhile; no URL can write storedKey.
//
// It neither deletes the upload (the caller does, whatever the outcome) nor
// registers anything. Errors: ErrNotFound (no upload), ErrSize, ErrInvalidImage
// (not the expected type, or a header that does not parse), ErrTooManyPixels;
// anything else is a store fault. On a refusal met before writing, nothing is
// written; a refusal met after (the upload grew past its size while being
// read) leaves the stored copy, unregistered, for the session's sweep.
func Promote(ctx context.Context, s Store, uploadKey, storedKey string, want Expect) (Promoted, error) {
	if err := checkUploadKey(uploadKey); err != nil {
		return Promoted{}, err
	}
	if err := checkStoredKey(storedKey); err != nil {
		return Promoted{}, err
	}
	// Stat first: a wrong size is refused without reading the object.
	info, err := s.Stat(ctx, uploadKey)
	if err != nil {
		return Promoted{}, err
	}
	if info.Size != want.Size {
		return Promoted{}, fmt.Errorf("%w: %d bytes, signed for %d", ErrSize, info.Size, want.Size)
	}
	rc, err := s.Open(ctx, uploadKey)
	if err != nil {
		return Promoted{}, err
	}
	defer rc.Close()
	head := make([]byte, min(want.Size, HeaderWindow))
	if _, err := io.ReadFull(rc, head); errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return Promoted{}, fmt.Errorf("%w: shorter than %d bytes", ErrSize, want.Size)
	} else if err != nil {
		return Promoted{}, fmt.Errorf("blob: read upload: %w", err)
	}
	hdr, err := checkHeader(head, want)
	if err != nil {
		return Promoted{}, err
	}
	h := sha256.New()
	body := io.TeeReader(io.MultiReader(bytes.NewReader(head), io.LimitReader(rc, want.Size-int64(len(head)))), h)
	if err := s.Put(ctx, storedKey, body, want.Size, want.ContentType); err != nil {
		return Promoted{}, err
	}
	// The copy holds want.Size bytes; one more in the upload means it changed
	// size since Stat (another upload URL), and what was stored is cut short.
	if extraByte(rc) {
		return Promoted{}, fmt.Errorf("%w: longer than %d bytes", ErrSize, want.Size)
	}
	return Promoted{SHA256: hex.EncodeToString(h.Sum(nil)), Header: hdr}, nil
}

// checkHeader parses head and compares it with want.
func checkHeader(head []byte, want Expect) (ImageHeader, error) {
	hdr, err := ParseImage(head)
	if err != nil {
		return ImageHeader{}, err
	}
	if hdr.ContentType != want.ContentType {
		return ImageHeader{}, fmt.Errorf("%w: the bytes are %s, signed as %s", ErrInvalidImage, hdr.ContentType, want.ContentType)
	}
	if want.MaxPixels > 0 && hdr.Pixels() > want.MaxPixels {
		return ImageHeader{}, fmt.Errorf("%w: %d×%d is over %d", ErrTooManyPixels, hdr.Width, hdr.Height, want.MaxPixels)
	}
	return hdr, nil
}

// Hash returns the lower-case hex SHA-256 of data, in the form Promote
// records: how commit re-checks the bytes it is about to file.
func Hash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
