package publish

import (
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// The JSON scanning under msgDecoder (decode.go): literals, numbers and
// strings checked by encoding/json's grammar, any value skipped, and
// strings unquoted as encoding/json unquotes them.

// literal consumes lit if it is at d.i.
func (d *msgDecoder) literal(lit string) bool {
	if len(d.b)-d.i >= len(lit) && string(d.b[d.i:d.i+len(lit)]) == lit {
		d.i += len(lit)
		return true
	}
	return false
}

// skip checks and passes over any JSON value at d.i.
func (d *msgDecoder) skip() {
	if d.i >= len(d.b) {
		d.bad = true
		return
	}
	switch c := d.b[d.i]; {
	case c == '"':
		d.bad = !d.skipStr()
	case c == '{':
		d.open()
		d.ws()
		if d.i < len(d.b) && d.b[d.i] == '}' {
			d.i++
			d.depth--
			return
		}
		for !d.bad {
			d.ws()
			if d.i >= len(d.b) || d.b[d.i] != '"' || !d.skipStr() {
				d.bad = true
				return
			}
			d.ws()
			if d.i >= len(d.b) || d.b[d.i] != ':' {
				d.bad = true
				return
			}
			d.i++
			d.ws()
			d.skip()
			if d.bad || !d.next('}') {
				return
			}
		}
	case c == '[':
		d.open()
		d.ws()
		if d.i < len(d.b) && d.b[d.i] == ']' {
			d.i++
			d.depth--
			return
		}
		for !d.bad {
			d.ws()
			d.skip()
			if d.bad || !d.next(']') {
				return
			}
		}
	case c == '-' || ('0' <= c && c <= '9'):
		d.bad = !d.number()
	default:
		d.bad = !d.literal("true") && !d.literal("false") && !d.literal("null")
	}
}

// number passes over a JSON number at d.i.
func (d *msgDecoder) number() bool {
	b, i := d.b, d.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = digits(b, i)
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		if i++; i >= len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		i = digits(b, i)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		i = digits(b, i)
	}
	d.i = i
	return true
}

func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// skipStr passes over a JSON string at d.i (which is '"'), checking its
// escapes; any byte from 0x20 up is allowed, as encoding/json allows.
func (d *msgDecoder) skipStr() bool {
	b, i := d.b, d.i+1
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			d.i = i + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if i+1 >= len(b) {
				return false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !hex4(b[i+2:i+6]) {
					return false
				}
				i += 6
			default:
				return false
			}
		default:
			i++
		}
	}
	return false
}

func hex4(b []byte) bool {
	for _, c := range b[:4] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// str reads the JSON string at d.i and returns its value: a slice of
// the body when it needs no unescaping, else of d.scratch (valid until
// the next call either way).
func (d *msgDecoder) str() ([]byte, bool) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return nil, false
	}
	start := d.i + 1
	if !d.skipStr() {
		return nil, false
	}
	raw := d.b[start : d.i-1]
	for i := 0; i < len(raw); {
		c := raw[i]
		if c == '\\' {
			return d.unquote(raw), true
		}
		if c < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRune(raw[i:])
		if r == utf8.RuneError && n == 1 {
			return d.unquote(raw), true
		}
		i += n
	}
	return raw, true
}

// unquote decodes the escapes of a checked JSON string's contents as
// encoding/json does: a lone surrogate or an invalid UTF-8 byte becomes
// U+FFFD.
func (d *msgDecoder) unquote(raw []byte) []byte {
	out := d.scratch[:0]
	if cap(out) < len(raw) {
		out = make([]byte, 0, len(raw)+8) // escapes shrink; only invalid UTF-8 grows
	}
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\':
			switch e := raw[i+1]; e {
			case 'b':
				out, i = append(out, '\b'), i+2
			case 'f':
				out, i = append(out, '\f'), i+2
			case 'n':
				out, i = append(out, '\n'), i+2
			case 'r':
				out, i = append(out, '\r'), i+2
			case 't':
				out, i = append(out, '\t'), i+2
			case 'u':
				r := getu4(raw[i+2:])
				i += 6
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						r2 = getu4(raw[i+2:])
					}
					if dec := utf16.DecodeRune(r, r2); dec != unicode.ReplacementChar {
						out, i = utf8.AppendRune(out, dec), i+6
						break
					}
					r = unicode.ReplacementChar
				}
				out = utf8.AppendRune(out, r)
			default: // '"', '\\', '/'
				out, i = append(out, e), i+2
			}
		case c < utf8.RuneSelf:
			out, i = append(out, c), i+1
		default:
			r, n := utf8.DecodeRune(raw[i:])
			out, i = utf8.AppendRune(out, r), i+n
		}
	}
	d.scratch = out
	return out
}

func getu4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
