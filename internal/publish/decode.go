package publish

import (
	"encoding/json"
	"net/http"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/handoff-health/handoff/ablyproto"
)

// parseMessages decodes a publish body (JSON text, trimmed): one Ably
// message object or an array of them. It is a hand-written decoder for
// the one shape the route accepts, in a single pass over the body, and
// gives exactly what json.Unmarshal into ablyproto.Message gave (the
// route's decoder until issue 14; FuzzParseMessages compares the two):
//
//   - keys match the fields exactly, else case-insensitively as
//     encoding/json folds them; unknown keys are ignored; the last of
//     duplicate keys wins;
//   - null leaves a string or number field as it is, clears Action, and
//     is kept as the text "null" in Data and Extras;
//   - a value of the wrong type is a type error naming the field (the
//     first one found), but a syntax error anywhere wins over it;
//   - strings are unquoted as encoding/json does (invalid UTF-8 and lone
//     surrogates become U+FFFD); Data and Extras are copied as sent;
//   - nesting deeper than encoding/json's 10,000 levels is a syntax
//     error.
//
// The messages are appended to dst[:0] (a pooled slice, or nil). Nothing
// returned points into body, which is a pooled buffer.
func parseMessages(dst []ablyproto.Message, body []byte) ([]ablyproto.Message, error) {
	d := msgDecoder{b: body}
	var ms []ablyproto.Message
	switch {
	case len(body) > 0 && body[0] == '{':
		ms = append(dst[:0], ablyproto.Message{})
		d.message(&ms[0])
	case len(body) > 0 && body[0] == '[':
		ms = d.array(dst[:0])
	default:
		return nil, errorf(http.StatusBadRequest, ablyproto.CodeBadRequest, "body must be a message object or an array of them")
	}
	if !d.bad {
		d.ws()
		d.bad = d.i != len(d.b)
	}
	switch {
	case d.bad:
		return nil, errorf(http.StatusBadRequest, ablyproto.CodeBadRequest, "request body is not valid JSON")
	case d.typeErr:
		return nil, errorf(http.StatusBadRequest, ablyproto.CodeBadRequest, "field %q has the wrong type", d.typeField)
	}
	return ms, nil
}

// maxNesting is encoding/json's limit on nested objects and arrays.
const maxNesting = 10000

// msgDecoder walks the body once. bad is a syntax error (decoding stops);
// typeErr the first value of the wrong type (decoding goes on, as
// encoding/json's does, so that a later syntax error still wins).
type msgDecoder struct {
	b         []byte
	i         int
	depth     int
	bad       bool
	typeErr   bool
	typeField string
	scratch   []byte
}

func (d *msgDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *msgDecoder) wrongType(field string) {
	if !d.typeErr {
		d.typeErr, d.typeField = true, field
	}
}

// open enters an object or array at d.i.
func (d *msgDecoder) open() {
	d.i++
	d.depth++
	if d.depth > maxNesting {
		d.bad = true
	}
}

// array decodes [message, …]: null is a zero message, anything else
// but an object is a type error.
func (d *msgDecoder) array(ms []ablyproto.Message) []ablyproto.Message {
	d.open()
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		d.depth--
		if ms == nil {
			ms = []ablyproto.Message{}
		}
		return ms
	}
	for !d.bad {
		d.ws()
		ms = append(ms, ablyproto.Message{})
		switch {
		case d.i < len(d.b) && d.b[d.i] == '{':
			d.message(&ms[len(ms)-1])
		case d.literal("null"):
		default:
			d.wrongType("")
			d.skip()
		}
		if d.bad || !d.next(']') {
			break
		}
	}
	return ms
}

// next reads the separator after a member: true after ',' (another
// follows), false after end (the container is closed) or on bad input.
func (d *msgDecoder) next(end byte) bool {
	d.ws()
	if d.i < len(d.b) {
		switch d.b[d.i] {
		case ',':
			d.i++
			return true
		case end:
			d.i++
			d.depth--
			return false
		}
	}
	d.bad = true
	return false
}

// The message fields, and their names as encoding/json folds them.
const (
	fieldNone = iota
	fieldID
	fieldName
	fieldData
	fieldEncoding
	fieldClientID
	fieldConnectionID
	fieldTimestamp
	fieldSerial
	fieldAction
	fieldExtras
)

var fieldNames = [...]string{fieldID: "id", fieldName: "name", fieldData: "data",
	fieldEncoding: "encoding", fieldClientID: "clientId", fieldConnectionID: "connectionId",
	fieldTimestamp: "timestamp", fieldSerial: "serial", fieldAction: "action", fieldExtras: "extras"}

var foldedFieldNames = func() map[string]int {
	m := make(map[string]int, len(fieldNames))
	for f, name := range fieldNames {
		if f != fieldNone {
			m[string(foldName(nil, []byte(name)))] = f
		}
	}
	return m
}()

func fieldOf(key []byte) int {
	switch string(key) {
	case "id":
		return fieldID
	case "name":
		return fieldName
	case "data":
		return fieldData
	case "encoding":
		return fieldEncoding
	case "clientId":
		return fieldClientID
	case "connectionId":
		return fieldConnectionID
	case "timestamp":
		return fieldTimestamp
	case "serial":
		return fieldSerial
	case "action":
		return fieldAction
	case "extras":
		return fieldExtras
	}
	var buf [32]byte
	return foldedFieldNames[string(foldName(buf[:0], key))]
}

// foldName is encoding/json's key folding: ASCII upper case, and each
// other rune the smallest of its Unicode fold set.
func foldName(out, in []byte) []byte {
	for i := 0; i < len(in); {
		if c := in[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(in[i:])
		for {
			r2 := unicode.SimpleFold(r)
			if r2 <= r {
				r = r2
				break
			}
			r = r2
		}
		out = utf8.AppendRune(out, r)
		i += n
	}
	return out
}

// message decodes one message object at d.i.
func (d *msgDecoder) message(m *ablyproto.Message) {
	d.open()
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		d.depth--
		return
	}
	for !d.bad {
		d.ws()
		key, ok := d.str()
		if !ok {
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
		d.field(m, fieldOf(key))
		if d.bad || !d.next('}') {
			return
		}
	}
}

// field decodes the value at d.i into the field f of m.
func (d *msgDecoder) field(m *ablyproto.Message, f int) {
	switch f {
	case fieldNone:
		d.skip()
	case fieldData, fieldExtras:
		start := d.i
		d.skip()
		if !d.bad {
			raw := json.RawMessage(append([]byte(nil), d.b[start:d.i]...))
			if f == fieldData {
				m.Data = raw
			} else {
				m.Extras = raw
			}
		}
	case fieldTimestamp, fieldAction:
		d.integer(m, f)
	default:
		d.stringField(m, f)
	}
}

func (d *msgDecoder) stringField(m *ablyproto.Message, f int) {
	if d.literal("null") {
		return
	}
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		d.wrongType(fieldNames[f])
		d.skip()
		return
	}
	raw, ok := d.str()
	if !ok {
		d.bad = true
		return
	}
	s := internString(raw)
	switch f {
	case fieldID:
		m.ID = s
	case fieldName:
		m.Name = s
	case fieldEncoding:
		m.Encoding = s
	case fieldClientID:
		m.ClientID = s
	case fieldConnectionID:
		m.ConnectionID = s
	case fieldSerial:
		m.Serial = s
	}
}

// internString is string(b), without an allocation for the usual
// encodings.
func internString(b []byte) string {
	switch string(b) {
	case "json":
		return "json"
	case "base64":
		return "base64"
	}
	return string(b)
}

// integer decodes Timestamp or Action: an integer literal that fits
// int64; null clears Action and leaves Timestamp.
func (d *msgDecoder) integer(m *ablyproto.Message, f int) {
	if d.literal("null") {
		if f == fieldAction {
			m.Action = nil
		}
		return
	}
	start := d.i
	if d.i >= len(d.b) || (d.b[d.i] != '-' && (d.b[d.i] < '0' || d.b[d.i] > '9')) {
		d.wrongType(fieldNames[f])
		d.skip()
		return
	}
	if !d.number() {
		d.bad = true
		return
	}
	n, err := strconv.ParseInt(string(d.b[start:d.i]), 10, 64)
	if err != nil {
		d.wrongType(fieldNames[f])
		return
	}
	if f == fieldTimestamp {
		m.Timestamp = n
		return
	}
	a := int(n)
	m.Action = &a
}
