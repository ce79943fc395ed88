package ablyproto

import (
	"encoding/json"
	"time"
	"unicode/utf8"
)

// EncodeEventFrame returns the MESSAGE ProtocolMessage that delivers one
// hub event (EventMessage) on the channel named channel, in format f:
//
//	{action: MESSAGE, channel, channelSerial, messages: [EventMessage(...)]}
//
// written directly, field by field, in the order and with the omissions
// Encode uses, so it decodes to exactly what Encode's frame decodes to. It
// is the fan-out's per-event encode: Encode goes through reflection (and,
// in msgpack, through a JSON round trip of the data), 3–9 µs and 9–39
// allocations for a small event, where this is one allocation. ok is false
// for what it does not cover — an event with extras.headers, data that is
// not valid UTF-8, a timestamp before 1970 — and the caller then uses
// Encode.
func EncodeEventFrame(f Format, channel, channelSerial, serial, name string, data json.RawMessage, ts time.Time, from Origin) (b []byte, ok bool) {
	if from.Headers != "" || !utf8.Valid(data) {
		return nil, false
	}
	// The id, "handoff-<serial>" unless the publisher gave one, built on
	// the stack.
	var idBuf [64]byte
	id := append(idBuf[:0], from.MsgID...)
	if len(id) == 0 {
		id = append(append(id, "handoff-"...), serial...)
	}
	ms := ts.UnixMilli()
	if ms < 0 {
		return nil, false
	}
	// The data as it travels: a JSON string as is (JSON) or unquoted
	// (msgpack); anything else as a string holding its JSON text, with
	// encoding "json".
	var str string
	quoted := len(data) > 0 && data[0] == '"'
	if quoted && f == FormatMsgpack {
		if str, ok = unquote(data); !ok {
			return nil, false
		}
	}
	w := eventWriter{f: f, b: make([]byte, 0, 160+len(channel)+len(channelSerial)+2*len(serial)+len(id)+len(name)+
		len(from.ClientID)+len(from.ConnectionID)+len(data)+len(data)/8)}
	w.mapHeader(2 + count(channel != "", channelSerial != ""))
	w.key("action")
	w.uint(uint64(ActionMessage))
	if channel != "" {
		w.key("channel")
		w.str(channel)
	}
	if channelSerial != "" {
		w.key("channelSerial")
		w.str(channelSerial)
	}
	w.key("messages")
	w.arrayHeader1()
	w.mapHeader(1 + count(name != "", len(data) > 0, len(data) > 0 && !quoted, from.ClientID != "",
		from.ConnectionID != "", ms != 0, serial != ""))
	w.key("id")
	w.strBytes(id)
	if name != "" {
		w.key("name")
		w.str(name)
	}
	if len(data) > 0 {
		w.key("data")
		switch {
		case !quoted:
			w.strBytes(data)
		case f == FormatMsgpack:
			w.str(str)
		default:
			w.raw(data)
		}
		if !quoted {
			w.key("encoding")
			w.str("json")
		}
	}
	if from.ClientID != "" {
		w.key("clientId")
		w.str(from.ClientID)
	}
	if from.ConnectionID != "" {
		w.key("connectionId")
		w.str(from.ConnectionID)
	}
	if ms != 0 {
		w.key("timestamp")
		w.uint(uint64(ms))
	}
	if serial != "" {
		w.key("serial")
		w.str(serial)
	}
	w.end()
	return w.b, true
}

// unquote is the string a JSON string literal holds.
func unquote(data []byte) (string, bool) {
	var s string
	err := json.Unmarshal(data, &s)
	return s, err == nil
}

func count(conds ...bool) int {
	n := 0
	for _, c := range conds {
		if c {
			n++
		}
	}
	return n
}

// eventWriter appends one event frame in JSON or msgpack. In JSON it
// tracks the open objects and array so it can close them (end) and put
// the commas between fields.
type eventWriter struct {
	f     Format
	b     []byte
	first bool // JSON: the next key opens its object
	open  [3]byte
	nOpen int
}

func (w *eventWriter) mapHeader(n int) {
	if w.f == FormatMsgpack {
		w.b = append(w.b, 0x80|byte(n)) // fixmap: at most 9 fields here
		return
	}
	w.b = append(w.b, '{')
	w.open[w.nOpen] = '}'
	w.nOpen++
	w.first = true
}

func (w *eventWriter) arrayHeader1() {
	if w.f == FormatMsgpack {
		w.b = append(w.b, 0x91) // fixarray of one
		return
	}
	w.b = append(w.b, '[')
	w.open[w.nOpen] = ']'
	w.nOpen++
}

func (w *eventWriter) key(k string) {
	if w.f == FormatMsgpack {
		w.b = append(w.b, 0xa0|byte(len(k))) // fixstr: every key is short
		w.b = append(w.b, k...)
		return
	}
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

func (w *eventWriter) end() {
	if w.f == FormatJSON {
		for i := w.nOpen - 1; i >= 0; i-- {
			w.b = append(w.b, w.open[i])
		}
	}
}

// uint writes a non-negative integer: its decimal text, or msgpack's
// smallest unsigned form (what Encode's compact ints give).
func (w *eventWriter) uint(v uint64) {
	if w.f == FormatJSON {
		var buf [20]byte
		i := len(buf)
		for {
			i--
			buf[i] = byte('0' + v%10)
			v /= 10
			if v == 0 {
				break
			}
		}
		w.b = append(w.b, buf[i:]...)
		return
	}
	switch {
	case v < 128:
		w.b = append(w.b, byte(v))
	case v < 1<<8:
		w.b = append(w.b, 0xcc, byte(v))
	case v < 1<<16:
		w.b = append(w.b, 0xcd, byte(v>>8), byte(v))
	case v < 1<<32:
		w.b = append(w.b, 0xce, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	default:
		w.b = append(w.b, 0xcf, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
}

func (w *eventWriter) raw(v []byte) { w.b = append(w.b, v...) }

func (w *eventWriter) str(s string)      { w.b = appendString(w.b, w.f, s) }
func (w *eventWriter) strBytes(s []byte) { w.b = appendString(w.b, w.f, s) }

// appendString writes a string: in msgpack its bytes (valid UTF-8 here),
// in JSON quoted and escaped as encoding/json escapes it (HTML
// characters, U+2028 and U+2029, and invalid UTF-8 as U+FFFD included).
func appendString[T ~string | ~[]byte](b []byte, f Format, s T) []byte {
	if f == FormatMsgpack {
		switch n := len(s); {
		case n < 32:
			b = append(b, 0xa0|byte(n))
		case n < 1<<8:
			b = append(b, 0xd9, byte(n))
		case n < 1<<16:
			b = append(b, 0xda, byte(n>>8), byte(n))
		default:
			b = append(b, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
		}
		return append(b, s...)
	}
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := decodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		} else {
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// decodeRune is utf8.DecodeRune for either kind of string.
func decodeRune[T ~string | ~[]byte](s T) (rune, int) {
	var buf [utf8.UTFMax]byte
	n := copy(buf[:], s)
	return utf8.DecodeRune(buf[:n])
}
