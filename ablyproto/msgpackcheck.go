package ablyproto

import (
	"encoding/binary"
	"errors"
)

// maxMsgpackDepth bounds the nesting of a msgpack frame.
const maxMsgpackDepth = 100

var errMsgpackShape = errors.New("malformed msgpack")

// checkMsgpack walks one msgpack value in b without decoding it and
// checks that every declared length fits in the bytes that remain and
// that nesting is bounded. The msgpack library pre-allocates arrays by
// their declared length when decoding into interface values, so a 40-byte
// frame claiming a 4-billion-element array would otherwise exhaust memory
// (found by FuzzDecodeMsgpack). Every element takes at least one byte, so
// after this check no allocation can exceed the frame's size by more than
// a constant factor.
func checkMsgpack(b []byte) error {
	rest, err := skipMsgpack(b, 0)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return errors.New("trailing bytes after the message")
	}
	return nil
}

// msgpackLenBytes is the size of the length field of the variable-length
// types (bin, str, ext, array, map); msgpackFixed the payload size of the
// fixed-size ones (numbers, fixext with its type byte).
var (
	msgpackLenBytes = map[byte]int{0xc4: 1, 0xc5: 2, 0xc6: 4, 0xd9: 1, 0xda: 2, 0xdb: 4,
		0xc7: 1, 0xc8: 2, 0xc9: 4, 0xdc: 2, 0xdd: 4, 0xde: 2, 0xdf: 4}
	msgpackFixed = map[byte]int{0xca: 4, 0xcb: 8, 0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8, 0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8,
		0xd4: 2, 0xd5: 3, 0xd6: 5, 0xd7: 9, 0xd8: 17}
)

func skipMsgpack(b []byte, depth int) ([]byte, error) {
	if len(b) == 0 || depth > maxMsgpackDepth {
		return nil, errMsgpackShape
	}
	c, b := b[0], b[1:]
	// uintN reads an n-byte big-endian length.
	uintN := func(n int) (int, bool) {
		if len(b) < n {
			return 0, false
		}
		var v uint64
		switch n {
		case 1:
			v = uint64(b[0])
		case 2:
			v = uint64(binary.BigEndian.Uint16(b))
		case 4:
			v = uint64(binary.BigEndian.Uint32(b))
		}
		b = b[n:]
		if v > uint64(len(b)) {
			return 0, false
		}
		return int(v), true
	}
	skip := func(n int) ([]byte, error) {
		if n > len(b) {
			return nil, errMsgpackShape
		}
		return b[n:], nil
	}
	items := func(n int) ([]byte, error) {
		if n > len(b) {
			return nil, errMsgpackShape
		}
		var err error
		for i := 0; i < n; i++ {
			if b, err = skipMsgpack(b, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	switch {
	case c <= 0x7f, c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
		return b, nil
	case c >= 0x80 && c <= 0x8f:
		return items(2 * int(c&0x0f))
	case c >= 0x90 && c <= 0x9f:
		return items(int(c & 0x0f))
	case c >= 0xa0 && c <= 0xbf:
		return skip(int(c & 0x1f))
	}
	if n, ok := msgpackLenBytes[c]; ok && (c >= 0xc4 && c <= 0xc6 || c >= 0xd9 && c <= 0xdb) { // bin, str
		l, ok := uintN(n)
		if !ok {
			return nil, errMsgpackShape
		}
		return skip(l)
	}
	if n, ok := msgpackFixed[c]; ok {
		return skip(n)
	}
	switch c {
	case 0xc7, 0xc8, 0xc9: // ext 8/16/32: length, type byte, data
		l, ok := uintN(msgpackLenBytes[c])
		if !ok {
			return nil, errMsgpackShape
		}
		return skip(l + 1)
	case 0xdc, 0xdd:
		l, ok := uintN(msgpackLenBytes[c])
		if !ok {
			return nil, errMsgpackShape
		}
		return items(l)
	case 0xde, 0xdf:
		l, ok := uintN(msgpackLenBytes[c])
		if !ok || 2*l > len(b) {
			return nil, errMsgpackShape
		}
		return items(2 * l)
	}
	return nil, errMsgpackShape // 0xc1 is never used
}
