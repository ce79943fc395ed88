package testutil

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"
)

// JPEG returns a small real JPEG; different seeds give different bytes.
func JPEG(t testing.TB, seed byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, testImage(seed), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// PNG returns a small real PNG; different seeds give different bytes.
func PNG(t testing.TB, seed byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, testImage(seed)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// JPEGPrefixed returns n bytes that start with a JPEG signature and are
// otherwise seed-dependent filler: enough for magic-byte checks and sizes,
// without paying to encode a large image.
func JPEGPrefixed(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)*31 + seed
	}
	copy(b, []byte{0xFF, 0xD8, 0xFF, 0xE0})
	return b
}

func testImage(seed byte) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for x := range 16 {
		for y := range 16 {
			img.Set(x, y, color.RGBA{uint8(x*16) + seed, uint8(y * 16), 90 + seed, 255})
		}
	}
	return img
}
