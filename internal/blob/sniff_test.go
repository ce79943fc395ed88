package blob

import (
	"bytes"
	"testing"
)

// ftyp builds the start of an ISO-BMFF file: an ftyp box of the given size and
// major brand, minor version 0 and one compatible brand.
func ftyp(size byte, major, compat string) []byte {
	b := []byte{0, 0, 0, size}
	b = append(b, "ftyp"+major+"\x00\x00\x00\x00"+compat...)
	return b
}

func TestSniffImage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		head   []byte
		wantCT string
	}{
		{"jpeg jfif", []byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, 'J', 'F', 'I', 'F'}, "image/jpeg"},
		{"jpeg exif", []byte{0xFF, 0xD8, 0xFF, 0xE1}, "image/jpeg"},
		{"jpeg minimal", []byte{0xFF, 0xD8, 0xFF}, "image/jpeg"},
		{"png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"), "image/png"},
		{"heic iphone", ftyp(24, "heic", "mif1heic"), "image/heic"},
		{"heix", ftyp(24, "heix", "mif1"), "image/heic"},
		{"hevc sequence", ftyp(24, "hevc", "msf1"), "image/heic"},
		{"hevx", ftyp(24, "hevx", "msf1"), "image/heic"},
		{"heim", ftyp(24, "heim", "mif1"), "image/heic"},
		{"heis", ftyp(24, "heis", "mif1"), "image/heic"},
		{"mif1 major", ftyp(24, "mif1", "heic"), "image/heic"},
		{"msf1 major", ftyp(24, "msf1", "hevc"), "image/heic"},
		{"empty", nil, ""},
		{"jpeg truncated", []byte{0xFF, 0xD8}, ""},
		{"png truncated", []byte("\x89PNG\r\n"), ""},
		{"png text lookalike", []byte("PNG\r\n\x1a\n"), ""},
		{"avif is not heic", ftyp(24, "avif", "mif1miaf"), ""},
		{"mp4 video", ftyp(24, "isom", "iso2mp41"), ""},
		{"quicktime", ftyp(20, "qt  ", "qt  "), ""},
		{"heic brand without ftyp", []byte("\x00\x00\x00\x18moovheic"), ""},
		{"ftyp box too small", ftyp(8, "heic", ""), ""},
		{"ftyp without brand", []byte("\x00\x00\x00\x18ftyp"), ""},
		{"gif", []byte("GIF89a"), ""},
		{"pdf", []byte("%PDF-1.7"), ""},
		{"html", []byte("<!doctype html><script>"), ""},
		{"svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg">`), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ct, ok := SniffImage(tc.head)
			if ct != tc.wantCT {
				t.Fatalf("SniffImage(% x) content type = %q; want %q", tc.head, ct, tc.wantCT)
			}
			if ok != (tc.wantCT != "") {
				t.Fatalf("SniffImage(% x) ok = %v with content type %q", tc.head, ok, ct)
			}
		})
	}
}

func FuzzSniffImage(f *testing.F) {
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xE0})
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Add(ftyp(24, "heic", "mif1heic"))
	f.Add(ftyp(24, "avif", "mif1"))
	f.Add([]byte("\x00\x00\x00\x01ftypheic"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, head []byte) {
		ct, ok := SniffImage(head)
		if ok != (ct != "") {
			t.Fatalf("ok=%v with content type %q", ok, ct)
		}
		switch ct {
		case "", "image/jpeg", "image/png", "image/heic":
		default:
			t.Fatalf("unexpected content type %q", ct)
		}
		// SniffLen is promised to be enough: more bytes never change the answer.
		if len(head) > SniffLen {
			if ct2, ok2 := SniffImage(head[:SniffLen]); ct2 != ct || ok2 != ok {
				t.Fatalf("first %d bytes give %q, all %d give %q", SniffLen, ct2, len(head), ct)
			}
		}
		if ok && ct == "image/jpeg" && !bytes.HasPrefix(head, jpegMagic) {
			t.Fatalf("JPEG without magic: % x", head)
		}
	})
}
