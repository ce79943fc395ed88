package blob

import (
	"bytes"
	"encoding/binary"
	"slices"
)

// Content types of the image formats handoff accepts, as SniffImage names
// them.
const (
	TypeJPEG = "image/jpeg"
	TypePNG  = "image/png"
	TypeHEIC = "image/heic"
)

// imageTypes is the one list of content types a photo may have: what phone
// cameras produce, what SniffImage recognises and what ALEX accepts. The
// capture API, the committer and the ALEX client all check against it, so
// they cannot disagree about which photos can be filed.
var imageTypes = []string{TypeJPEG, TypePNG, TypeHEIC}

// IsImageType reports whether contentType (exactly, without parameters) is
// one of the accepted image types.
func IsImageType(contentType string) bool { return slices.Contains(imageTypes, contentType) }

// SniffLen is how many leading bytes SniffImage needs; reading more never changes
// its answer. The longest signature checked is the HEIF ftyp major brand, which
// ends at byte 12.
const SniffLen = 32

var (
	jpegMagic = []byte{0xFF, 0xD8, 0xFF}
	pngMagic  = []byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'}
)

// heifBrands are the ISO-BMFF major brands of still HEIF/HEIC images and image
// sequences (ISO/IEC 23008-12). Only the major brand is trusted: AVIF files list
// "mif1" among their compatible brands, and they are not HEIC.
var heifBrands = map[string]bool{
	"heic": true, "heix": true, "hevc": true, "hevx": true,
	"heim": true, "heis": true, "mif1": true, "msf1": true,
}

// SniffImage names the image format from its magic bytes (pass at least SniffLen
// bytes when the object has them). It recognises JPEG, PNG and HEIC/HEIF, the
// formats phone cameras produce and ALEX accepts; the declared content type of an
// upload is never trusted on its own. ok is false for anything else.
func SniffImage(head []byte) (contentType string, ok bool) {
	switch {
	case bytes.HasPrefix(head, jpegMagic):
		return TypeJPEG, true
	case bytes.HasPrefix(head, pngMagic):
		return TypePNG, true
	case isHEIF(head):
		return TypeHEIC, true
	}
	return "", false
}

// isHEIF checks for an ftyp box first in the file: a 4-byte size, "ftyp", then the
// 4-byte major brand. The size must at least cover those 12 bytes (plus the minor
// version, 16 in all), which rules out random bytes that happen to spell "ftyp".
func isHEIF(head []byte) bool {
	if len(head) < 12 || string(head[4:8]) != "ftyp" {
		return false
	}
	if binary.BigEndian.Uint32(head[0:4]) < 16 {
		return false
	}
	return heifBrands[string(head[8:12])]
}
