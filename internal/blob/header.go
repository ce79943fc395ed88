package blob

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// HeaderWindow is how many leading bytes ParseImage reads: the structures it
// checks must lie within them. Phone photos put their headers first (a JPEG's
// EXIF, ICC and quantisation segments are at most 64 KiB each; an iPhone
// HEIC's meta box is a few KiB), so 1 MiB leaves wide headroom while bounding
// what one register holds in memory.
const HeaderWindow = 1 << 20

// ErrInvalidImage means the bytes are not a well-formed image header of an
// accepted type: a magic prefix followed by something else, a truncated
// header, or a header whose fields are impossible.
var ErrInvalidImage = errors.New("blob: not a well-formed image")

// ImageHeader is what ParseImage reads from an image's header, without
// decoding any pixel.
type ImageHeader struct {
	ContentType   string // one of the accepted image types
	Width, Height int64
}

// Pixels is the number of pixels the header declares: what a full decode
// would allocate for.
// It saturates at math.MaxInt64 rather than overflow (HEIC sizes are 32-bit
// each).
func (h ImageHeader) Pixels() int64 { return pixels(h.Width, h.Height) }

func pixels(w, h int64) int64 {
	if w <= 0 || h <= 0 {
		return 0
	}
	if w > math.MaxInt64/h {
		return math.MaxInt64
	}
	return w * h
}

// ParseImage reads the header of a JPEG (frame header, up to the first scan),
// a PNG (IHDR and the chunks up to the first IDAT, CRCs checked) or a HEIC
// (the ftyp box, then meta/iprp/ipco and its ispe boxes). head is the start of
// the file: the whole file, or at least its first HeaderWindow bytes. Nothing
// past the headers is read, so a bad scan is not found here; what it refuses
// is anything whose structure does not parse, such as a valid magic prefix
// followed by HTML. Errors wrap ErrInvalidImage and say what is wrong, never
// quoting the bytes.
func ParseImage(head []byte) (ImageHeader, error) {
	if len(head) > HeaderWindow {
		head = head[:HeaderWindow]
	}
	ct, ok := SniffImage(head)
	if !ok {
		return ImageHeader{}, invalidImage("not a JPEG, PNG or HEIC file")
	}
	var w, h int64
	var err error
	switch ct {
	case TypeJPEG:
		w, h, err = parseJPEG(head)
	case TypePNG:
		w, h, err = parsePNG(head)
	case TypeHEIC:
		w, h, err = parseHEIC(head)
	}
	if err != nil {
		return ImageHeader{}, err
	}
	return ImageHeader{ContentType: ct, Width: w, Height: h}, nil
}

func invalidImage(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidImage, fmt.Sprintf(format, args...))
}

var errHeaderCut = invalidImage("the header ends early (a truncated file, or headers over %d bytes)", HeaderWindow)

// parseJPEG walks the marker segments after SOI until the first scan (SOS)
// and returns the frame's size. It refuses a byte that is not a marker where
// one must be, reserved markers, segments that overrun the data, a frame
// header of the wrong length, zero dimensions, and a scan before any frame.
func parseJPEG(b []byte) (w, h int64, err error) {
	seenFrame := false
	for i := len(jpegMagic) - 1; ; {
		if i >= len(b) {
			return 0, 0, errHeaderCut
		}
		if b[i] != 0xFF {
			return 0, 0, invalidImage("JPEG: expected a marker")
		}
		for i < len(b) && b[i] == 0xFF { // fill bytes may precede a marker
			i++
		}
		if i >= len(b) {
			return 0, 0, errHeaderCut
		}
		m := b[i]
		i++
		switch {
		case m == 0x01 || 0xD0 <= m && m <= 0xD7: // TEM, RSTn: no length
			continue
		case m == 0xD8 || m == 0xD9:
			return 0, 0, invalidImage("JPEG: image start or end before the first scan")
		case m < 0xC0:
			return 0, 0, invalidImage("JPEG: reserved marker")
		}
		if i+2 > len(b) {
			return 0, 0, errHeaderCut
		}
		n := int(binary.BigEndian.Uint16(b[i:]))
		if n < 2 {
			return 0, 0, invalidImage("JPEG: segment length below 2")
		}
		if i+n > len(b) {
			return 0, 0, errHeaderCut
		}
		seg := b[i+2 : i+n]
		i += n
		switch {
		case isSOF(m):
			if seenFrame {
				return 0, 0, invalidImage("JPEG: two frame headers")
			}
			if w, h, err = parseSOF(seg); err != nil {
				return 0, 0, err
			}
			seenFrame = true
		case m == 0xDA:
			if !seenFrame {
				return 0, 0, invalidImage("JPEG: scan before the frame header")
			}
			return w, h, nil
		}
	}
}

// isSOF reports whether m starts a frame: SOF0-SOF15 except DHT (C4), JPG
// (C8) and DAC (CC), which share the range.
func isSOF(m byte) bool {
	return 0xC0 <= m && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC
}

// parseSOF reads a frame header: precision, height, width, then three bytes
// per component.
func parseSOF(seg []byte) (w, h int64, err error) {
	if len(seg) < 6 {
		return 0, 0, invalidImage("JPEG: frame header too short")
	}
	precision, comps := seg[0], int(seg[5])
	h, w = int64(binary.BigEndian.Uint16(seg[1:])), int64(binary.BigEndian.Uint16(seg[3:]))
	switch {
	case precision == 0 || precision > 16:
		return 0, 0, invalidImage("JPEG: sample precision out of range")
	case comps < 1 || comps > 4 || len(seg) != 6+3*comps:
		return 0, 0, invalidImage("JPEG: frame header length does not match its components")
	case w == 0 || h == 0:
		// A zero height defers it to a DNL segment after the first scan,
		// which no phone camera writes; refusing keeps the size known here.
		return 0, 0, invalidImage("JPEG: zero width or height")
	}
	return w, h, nil
}

// maxPNGDim is the largest width or height PNG allows (2^31-1).
const maxPNGDim = 1<<31 - 1

// parsePNG checks IHDR (first, 13 bytes, valid fields) and every chunk up to
// the first IDAT: lengths within bounds, types made of letters, CRCs right.
func parsePNG(b []byte) (w, h int64, err error) {
	i := len(pngMagic)
	for first := true; ; first = false {
		if i+8 > len(b) {
			return 0, 0, errHeaderCut
		}
		n, typ := binary.BigEndian.Uint32(b[i:]), b[i+4:i+8]
		if n > maxPNGDim || !pngChunkType(typ) {
			return 0, 0, invalidImage("PNG: malformed chunk header")
		}
		if first != (string(typ) == "IHDR") {
			return 0, 0, invalidImage("PNG: IHDR must come first, once")
		}
		switch string(typ) {
		case "IDAT":
			return w, h, nil
		case "IEND":
			return 0, 0, invalidImage("PNG: image ends before its data")
		}
		end := i + 8 + int(n) + 4
		if end > len(b) {
			return 0, 0, errHeaderCut
		}
		data := b[i+8 : end-4]
		if crc32.ChecksumIEEE(b[i+4:end-4]) != binary.BigEndian.Uint32(b[end-4:]) {
			return 0, 0, invalidImage("PNG: chunk CRC mismatch")
		}
		if first {
			if w, h, err = parseIHDR(data); err != nil {
				return 0, 0, err
			}
		}
		i = end
	}
}

func pngChunkType(t []byte) bool {
	for _, c := range t {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// pngDepths lists the bit depths each PNG colour type allows.
var pngDepths = map[byte][]byte{
	0: {1, 2, 4, 8, 16}, // greyscale
	2: {8, 16},          // truecolour
	3: {1, 2, 4, 8},     // indexed
	4: {8, 16},          // greyscale + alpha
	6: {8, 16},          // truecolour + alpha
}

func parseIHDR(d []byte) (w, h int64, err error) {
	if len(d) != 13 {
		return 0, 0, invalidImage("PNG: IHDR is not 13 bytes")
	}
	w, h = int64(binary.BigEndian.Uint32(d[0:])), int64(binary.BigEndian.Uint32(d[4:]))
	depth, color := d[8], d[9]
	depths, ok := pngDepths[color]
	validDepth := false
	for _, v := range depths {
		validDepth = validDepth || v == depth
	}
	switch {
	case w == 0 || h == 0 || w > maxPNGDim || h > maxPNGDim:
		return 0, 0, invalidImage("PNG: width or height out of range")
	case !ok || !validDepth:
		return 0, 0, invalidImage("PNG: invalid colour type or bit depth")
	case d[10] != 0 || d[11] != 0 || d[12] > 1:
		return 0, 0, invalidImage("PNG: invalid compression, filter or interlace method")
	}
	return w, h, nil
}

// parseHEIC finds the top-level meta box after ftyp and reads the ispe
// (image spatial extent) properties in meta/iprp/ipco. A HEIC holds several
// images (the primary, its grid tiles, a thumbnail), each with an ispe; the
// largest is returned, so a limit on it holds for every image in the file.
func parseHEIC(b []byte) (w, h int64, err error) {
	ftyp, err := readBox(b)
	if err != nil {
		return 0, 0, err
	}
	if ftyp.typ != "ftyp" || len(ftyp.body) < 8 {
		return 0, 0, invalidImage("HEIC: malformed ftyp box")
	}
	meta, err := findBox(b[ftyp.size:], "meta")
	if err != nil {
		return 0, 0, err
	}
	if len(meta) < 4 { // FullBox: version and flags first
		return 0, 0, invalidImage("HEIC: meta box too short")
	}
	iprp, err := findBox(meta[4:], "iprp")
	if err != nil {
		return 0, 0, err
	}
	ipco, err := findBox(iprp, "ipco")
	if err != nil {
		return 0, 0, err
	}
	for rest := ipco; len(rest) > 0; {
		bx, err := readBox(rest)
		if err != nil {
			return 0, 0, err
		}
		rest = rest[bx.size:]
		if bx.typ != "ispe" {
			continue
		}
		if len(bx.body) != 12 { // version/flags, width, height
			return 0, 0, invalidImage("HEIC: ispe box is not 12 bytes")
		}
		bw, bh := int64(binary.BigEndian.Uint32(bx.body[4:])), int64(binary.BigEndian.Uint32(bx.body[8:]))
		if bw == 0 || bh == 0 {
			return 0, 0, invalidImage("HEIC: zero width or height")
		}
		if pixels(bw, bh) > pixels(w, h) {
			w, h = bw, bh
		}
	}
	if w == 0 {
		return 0, 0, invalidImage("HEIC: no image size (ispe) in meta/iprp/ipco")
	}
	return w, h, nil
}

// box is one ISO-BMFF box read from the front of a byte range.
type box struct {
	typ  string
	size int // header and body
	body []byte
}

// readBox reads the box at the start of b. A size of 0 (the box runs to the
// end of its container) is taken to mean the end of b; a box that runs past
// b is refused.
func readBox(b []byte) (box, error) {
	if len(b) < 8 {
		return box{}, errHeaderCut
	}
	size, hdr := uint64(binary.BigEndian.Uint32(b)), 8
	switch size {
	case 0:
		size = uint64(len(b))
	case 1:
		if len(b) < 16 {
			return box{}, errHeaderCut
		}
		size, hdr = binary.BigEndian.Uint64(b[8:]), 16
	}
	if size < uint64(hdr) {
		return box{}, invalidImage("HEIC: box smaller than its header")
	}
	if size > uint64(len(b)) {
		return box{}, errHeaderCut
	}
	return box{typ: string(b[4:8]), size: int(size), body: b[hdr:size]}, nil
}

// findBox returns the body of the first box of type typ among the boxes that
// fill b.
func findBox(b []byte, typ string) ([]byte, error) {
	for len(b) > 0 {
		bx, err := readBox(b)
		if err != nil {
			return nil, err
		}
		if bx.typ == typ {
			return bx.body, nil
		}
		b = b[bx.size:]
	}
	return nil, invalidImage("HEIC: no %s box", typ)
}
