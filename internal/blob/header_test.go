package blob

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/handoff-health/handoff/internal/testutil"
)

// pngChunk encodes one PNG chunk with its CRC.
func pngChunk(typ string, data []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	b = append(b, typ...)
	b = append(b, data...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[4:]))
}

// ihdr is the body of an IHDR chunk.
func ihdr(w, h uint32, depth, color byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, w)
	b = binary.BigEndian.AppendUint32(b, h)
	return append(b, depth, color, 0, 0, 0)
}

// handPNG builds a PNG that declares w×h and carries idat bytes of image
// data: structurally sound, whatever the pixels would decode to.
func handPNG(w, h uint32, idat int) []byte {
	b := append([]byte{}, pngMagic...)
	b = append(b, pngChunk("IHDR", ihdr(w, h, 8, 2))...)
	b = append(b, pngChunk("IDAT", make([]byte, idat))...)
	return append(b, pngChunk("IEND", nil)...)
}

// bmffBox encodes an ISO-BMFF box; full adds the version/flags word.
func bmffBox(typ string, full bool, children ...[]byte) []byte {
	var body []byte
	if full {
		body = make([]byte, 4)
	}
	for _, c := range children {
		body = append(body, c...)
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
	return append(append(b, typ...), body...)
}

func ispe(w, h uint32) []byte {
	d := binary.BigEndian.AppendUint32(nil, w)
	return bmffBox("ispe", true, binary.BigEndian.AppendUint32(d, h))
}

// handHEIC builds a minimal HEIC: ftyp, then meta (hdlr, iprp/ipco with the
// given properties), then an mdat.
func handHEIC(props ...[]byte) []byte {
	hdlr := bmffBox("hdlr", true, []byte("\x00\x00\x00\x00pict\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	meta := bmffBox("meta", true, hdlr, bmffBox("iprp", false, bmffBox("ipco", false, props...)))
	return append(append(ftyp(24, "heic", "mif1heic"), meta...), bmffBox("mdat", false, make([]byte, 64))...)
}

// largeMeta is a meta box with a 64-bit size (size field 1, then largesize).
func largeMeta(props ...[]byte) []byte {
	body := append(make([]byte, 4), bmffBox("iprp", false, bmffBox("ipco", false, props...))...)
	b := append([]byte{0, 0, 0, 1}, "meta"...)
	b = binary.BigEndian.AppendUint64(b, uint64(16+len(body)))
	return append(b, body...)
}

// withSegment inserts a JPEG marker segment right after SOI.
func withSegment(jpg []byte, marker byte, payload []byte) []byte {
	seg := []byte{0xFF, marker, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	out := append(append([]byte{}, jpg[:2]...), append(seg, payload...)...)
	return append(out, jpg[2:]...)
}

// sofOnly is a JPEG header with one frame of w×h and an immediate scan.
func sofOnly(w, h uint16) []byte {
	b := []byte{0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8}
	b = binary.BigEndian.AppendUint16(b, h)
	b = binary.BigEndian.AppendUint16(b, w)
	b = append(b, 1, 1, 0x11, 0)
	return append(b, 0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 0x3F, 0)
}

func TestParseImage(t *testing.T) {
	t.Parallel()
	jpg, png := testutil.JPEG(t, 1), testutil.PNG(t, 1)
	html := []byte("<html><body><script>alert(1)</script></body></html>")
	badCRC := handPNG(16, 16, 10)
	badCRC[len(pngMagic)+8+5] ^= 1 // a byte of IHDR's height
	cases := []struct {
		name string
		data []byte
		want ImageHeader // zero: refused with ErrInvalidImage
	}{
		{"real jpeg", jpg, ImageHeader{TypeJPEG, 16, 16}},
		{"real png", png, ImageHeader{TypePNG, 16, 16}},
		{"jpeg with exif and comment", withSegment(withSegment(jpg, 0xFE, []byte("hi")), 0xE1, []byte("Exif\x00\x00MM")), ImageHeader{TypeJPEG, 16, 16}},
		{"jpeg with fill bytes", append([]byte{0xFF, 0xD8, 0xFF, 0xFF}, jpg[3:]...), ImageHeader{TypeJPEG, 16, 16}},
		{"jpeg 8000x6000 header only", sofOnly(8000, 6000), ImageHeader{TypeJPEG, 8000, 6000}},
		{"png declaring 20000x20000", handPNG(20000, 20000, 48<<10), ImageHeader{TypePNG, 20000, 20000}},
		{"png with ancillary chunk", append(append(append([]byte{}, pngMagic...), pngChunk("IHDR", ihdr(3, 2, 1, 0))...),
			append(pngChunk("tEXt", []byte("k\x00v")), pngChunk("IDAT", []byte{1})...)...), ImageHeader{TypePNG, 3, 2}},
		{"heic", handHEIC(bmffBox("colr", false, []byte("nclx")), ispe(512, 512), ispe(4032, 3024), ispe(256, 192)), ImageHeader{TypeHEIC, 4032, 3024}},
		{"heic 64-bit box size", append(ftyp(24, "heic", "mif1heic"), largeMeta(ispe(10, 20))...), ImageHeader{TypeHEIC, 10, 20}},

		{"jpeg magic then html", append([]byte{0xFF, 0xD8, 0xFF}, html...), ImageHeader{}},
		{"jpeg app0 then html", append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, html...), ImageHeader{}},
		{"jpeg prefixed filler", testutil.JPEGPrefixed(1000, 0), ImageHeader{}},
		{"jpeg cut in frame header", jpg[:bytes.Index(jpg, []byte{0xFF, 0xC0})+6], ImageHeader{}},
		{"jpeg cut before scan", jpg[:bytes.Index(jpg, []byte{0xFF, 0xDA})], ImageHeader{}},
		{"jpeg only soi", []byte{0xFF, 0xD8, 0xFF}, ImageHeader{}},
		{"jpeg scan before frame", []byte{0xFF, 0xD8, 0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 0x3F, 0}, ImageHeader{}},
		{"jpeg zero height", sofOnly(100, 0), ImageHeader{}},
		{"jpeg end before scan", []byte{0xFF, 0xD8, 0xFF, 0xD9}, ImageHeader{}},
		{"png magic then html", append(append([]byte{}, pngMagic...), html...), ImageHeader{}},
		{"png cut in ihdr", handPNG(16, 16, 10)[:20], ImageHeader{}},
		{"png cut before idat", handPNG(16, 16, 10)[:len(pngMagic)+25], ImageHeader{}},
		{"png bad crc", badCRC, ImageHeader{}},
		{"png idat first", append(append([]byte{}, pngMagic...), pngChunk("IDAT", []byte{1})...), ImageHeader{}},
		{"png zero width", append(append(append([]byte{}, pngMagic...), pngChunk("IHDR", ihdr(0, 5, 8, 2))...), pngChunk("IDAT", nil)...), ImageHeader{}},
		{"png bad depth", append(append(append([]byte{}, pngMagic...), pngChunk("IHDR", ihdr(5, 5, 3, 2))...), pngChunk("IDAT", nil)...), ImageHeader{}},
		{"png end before data", append(append(append([]byte{}, pngMagic...), pngChunk("IHDR", ihdr(5, 5, 8, 2))...), pngChunk("IEND", nil)...), ImageHeader{}},
		{"heic without ispe", handHEIC(bmffBox("colr", false, []byte("nclx"))), ImageHeader{}},
		{"heic zero ispe", handHEIC(ispe(0, 3024)), ImageHeader{}},
		{"heic short ispe", handHEIC(bmffBox("ispe", true, []byte{0, 0, 1})), ImageHeader{}},
		{"heic without meta", append(ftyp(24, "heic", "mif1heic"), bmffBox("mdat", false, html)...), ImageHeader{}},
		{"heic then html", append(ftyp(24, "heic", "mif1heic"), html...), ImageHeader{}},
		{"heic cut in meta", handHEIC(ispe(1, 1))[:40], ImageHeader{}},
		{"heic box smaller than header", append(ftyp(24, "heic", "mif1heic"), 0, 0, 0, 4, 'm', 'e', 't', 'a'), ImageHeader{}},
		{"gif", []byte("GIF89a\x01\x00\x01\x00"), ImageHeader{}},
		{"empty", nil, ImageHeader{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseImage(tc.data)
			if tc.want == (ImageHeader{}) {
				if !errors.Is(err, ErrInvalidImage) {
					t.Fatalf("ParseImage = %+v, %v; want ErrInvalidImage", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseImage: %v", err)
			}
			testutil.Equal(t, "header", tc.want, got)
		})
	}
}

// TestParseImageEveryPrefix cuts real images at every length: a cut never
// panics, and a cut that parses reads the same header as the whole file.
func TestParseImageEveryPrefix(t *testing.T) {
	t.Parallel()
	for name, data := range map[string][]byte{
		"jpeg": testutil.JPEG(t, 2), "png": testutil.PNG(t, 2), "heic": handHEIC(ispe(640, 480)),
	} {
		whole, err := ParseImage(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for n := range len(data) {
			got, err := ParseImage(data[:n])
			if err == nil && got != whole {
				t.Fatalf("%s cut at %d: %+v; want %+v or an error", name, n, got, whole)
			}
		}
	}
}

func TestImageHeaderPixels(t *testing.T) {
	t.Parallel()
	testutil.Check(t, "20000x20000", int64(400_000_000), ImageHeader{Width: 20000, Height: 20000}.Pixels())
	testutil.Check(t, "overflow saturates", int64(1<<63-1), ImageHeader{Width: 1<<32 - 1, Height: 1<<32 - 1}.Pixels())
}

func FuzzParseImage(f *testing.F) {
	f.Add(testutil.JPEG(f, 3))
	f.Add(testutil.PNG(f, 3))
	f.Add(handPNG(20000, 20000, 4))
	f.Add(handHEIC(ispe(512, 512), ispe(4032, 3024)))
	f.Add(sofOnly(1, 1))
	f.Add([]byte("\xFF\xD8\xFF<html>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseImage(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidImage) {
				t.Fatalf("error %v does not wrap ErrInvalidImage", err)
			}
			return
		}
		if ct, _ := SniffImage(data); ct != h.ContentType {
			t.Fatalf("parsed as %q, sniffed as %q", h.ContentType, ct)
		}
		if h.Width <= 0 || h.Height <= 0 || h.Pixels() <= 0 {
			t.Fatalf("accepted with size %dx%d", h.Width, h.Height)
		}
	})
}
