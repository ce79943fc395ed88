package loadtest

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
)

// makeJPEG returns a real JPEG of roughly target bytes. Noise compresses
// poorly, so the image side is grown until the encoding reaches the target;
// the server's magic-byte check and any browser would accept it.
func makeJPEG(target int, seed uint64) ([]byte, error) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	side := 64
	for {
		img := image.NewRGBA(image.Rect(0, 0, side, side))
		for y := 0; y < side; y++ {
			for x := 0; x < side; x++ {
				v := rng.Uint32()
				img.Set(x, y, color.RGBA{uint8(v), uint8(v >> 8), uint8(v >> 16), 255})
			}
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85}); err != nil {
			return nil, fmt.Errorf("encode test JPEG: %w", err)
		}
		if buf.Len() >= target || side >= 4096 {
			return buf.Bytes(), nil
		}
		// Size grows with area: scale the side by the square root of the gap.
		next := int(float64(side) * 1.05 * sqrtRatio(target, buf.Len()))
		side = max(side+16, min(next, 4096))
	}
}

func sqrtRatio(want, got int) float64 {
	return math.Sqrt(float64(want) / float64(max(got, 1)))
}
