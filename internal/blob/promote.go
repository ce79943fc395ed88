package blob

import (
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

// Promote makes the upload at uploadKey the object at storedKey and checks
// the stored bytes: the size, the magic bytes and the header (ParseImage)
// against want, while hashing them. The store copies (S3, server-side) or
// moves (Local, a rename) the object without its bytes passing through the
// server (Store.CopyUpload); only then are the bytes read, from storedKey,
// which no URL can write. So the hash and checks are of exactly what is
// stored, even if a still-valid upload URL rewrites uploadKey meanwhile.
//
// An upload that is gone while storedKey holds an object is an earlier
// Promote's move whose register did not finish (a store fault after it):
// that stored object is checked again, so the phone's retry of register
// works after a move as it does after a copy.
//
// It neither deletes the upload (the caller does, whatever the outcome) nor
// registers anything. Errors: ErrNotFound (no upload), ErrSize, ErrInvalidImage
// (not the expected type, or a header that does not parse), ErrTooManyPixels;
// anything else is a store fault. A refusal leaves nothing at storedKey: a
// size that differs from want before the copy is refused without copying, and
// a stored object refused after it is deleted.
func Promote(ctx context.Context, s Store, uploadKey, storedKey string, want Expect) (Promoted, error) {
	if err := checkUploadKey(uploadKey); err != nil {
		return Promoted{}, err
	}
	if err := checkStoredKey(storedKey); err != nil {
		return Promoted{}, err
	}
	// Stat first: a wrong size is refused without copying the object.
	info, err := s.Stat(ctx, uploadKey)
	switch {
	case errors.Is(err, ErrNotFound):
		// Moved by an earlier Promote whose register did not finish?
		if _, serr := s.Stat(ctx, storedKey); serr != nil {
			return Promoted{}, err
		}
	case err != nil:
		return Promoted{}, err
	case info.Size != want.Size:
		return Promoted{}, fmt.Errorf("%w: %d bytes, signed for %d", ErrSize, info.Size, want.Size)
	default:
		if err := s.CopyUpload(ctx, uploadKey, storedKey, want.ContentType); err != nil {
			return Promoted{}, err
		}
	}
	got, err := check(ctx, s, storedKey, want)
	if err != nil && refused(err) {
		if derr := s.Delete(ctx, storedKey); derr != nil {
			return Promoted{}, fmt.Errorf("%w, and the stored object was not deleted: %w", err, derr)
		}
	}
	return got, err
}

// refused reports whether err is Promote's verdict on the bytes rather than
// a store fault.
func refused(err error) bool {
	return errors.Is(err, ErrSize) || errors.Is(err, ErrInvalidImage) || errors.Is(err, ErrTooManyPixels)
}

// check reads the object at key once: exactly want.Size bytes, a header that
// parses and matches want, hashed as they are read.
func check(ctx context.Context, s Store, key string, want Expect) (Promoted, error) {
	rc, err := s.Open(ctx, key)
	if err != nil {
		return Promoted{}, err
	}
	defer rc.Close()
	head := make([]byte, min(want.Size, HeaderWindow))
	if _, err := io.ReadFull(rc, head); errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return Promoted{}, fmt.Errorf("%w: shorter than %d bytes", ErrSize, want.Size)
	} else if err != nil {
		return Promoted{}, fmt.Errorf("blob: read stored object: %w", err)
	}
	hdr, err := checkHeader(head, want)
	if err != nil {
		return Promoted{}, err
	}
	h := sha256.New()
	h.Write(head)
	n, err := io.Copy(h, io.LimitReader(rc, want.Size-int64(len(head))))
	if err != nil {
		return Promoted{}, fmt.Errorf("blob: read stored object: %w", err)
	}
	// The upload may have been replaced between Stat and the copy (another
	// upload URL); the stored bytes are what count.
	if int64(len(head))+n != want.Size {
		return Promoted{}, fmt.Errorf("%w: shorter than %d bytes", ErrSize, want.Size)
	}
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
