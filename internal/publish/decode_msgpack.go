package publish

import (
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/handoff-health/handoff/ablyproto"
)

// parseMsgpackMessages reads a msgpack publish body (ably-go's default)
// straight into messages. It gives what the route gave when it converted
// the body to JSON text (ablyproto.MsgpackToJSON) and decoded that:
// FuzzParseMsgpackMessages compares the two. So a map's keys are applied
// in sorted order (json.Marshal's), matched as parseMessages matches JSON
// keys; strings lose invalid UTF-8 byte by byte to U+FFFD; Data and Extras
// are the JSON encoding of their value. The messages are appended to
// dst[:0], as parseMessages does.
func parseMsgpackMessages(dst []ablyproto.Message, body []byte) ([]ablyproto.Message, error) {
	v, err := ablyproto.DecodeMsgpackBody(body)
	if err != nil {
		return nil, errBadMsgpack
	}
	var d mpDecoder
	var ms []ablyproto.Message
	switch t := v.(type) {
	case map[string]any:
		ms = append(dst[:0], ablyproto.Message{})
		d.message(&ms[0], t)
	case []any:
		ms = dst[:0]
		if ms == nil {
			ms = make([]ablyproto.Message, 0, len(t))
		}
		for range t {
			ms = append(ms, ablyproto.Message{})
		}
		for i, e := range t {
			switch e := e.(type) {
			case map[string]any:
				d.message(&ms[i], e)
			case nil:
			default:
				d.wrongType("")
			}
		}
	default:
		return nil, errorf(http.StatusBadRequest, ablyproto.CodeBadRequest, "body must be a message object or an array of them")
	}
	if d.typeErr {
		return nil, errorf(http.StatusBadRequest, ablyproto.CodeBadRequest, "field %q has the wrong type", d.typeField)
	}
	return ms, nil
}

var errBadMsgpack = errorf(http.StatusBadRequest, ablyproto.CodeBadRequest, "request body is not valid msgpack holding JSON-compatible values")

// mpDecoder keeps the first type error, as msgDecoder does.
type mpDecoder struct {
	typeErr   bool
	typeField string
	keys      []string
}

func (d *mpDecoder) wrongType(field string) {
	if !d.typeErr {
		d.typeErr, d.typeField = true, field
	}
}

func (d *mpDecoder) message(m *ablyproto.Message, obj map[string]any) {
	d.keys = d.keys[:0]
	for k := range obj {
		d.keys = append(d.keys, k)
	}
	slices.Sort(d.keys)
	for _, k := range d.keys {
		d.field(m, fieldOfKey(k), obj[k])
	}
}

func (d *mpDecoder) field(m *ablyproto.Message, f int, v any) {
	switch f {
	case fieldNone:
	case fieldData, fieldExtras:
		raw, _ := json.Marshal(v) // DecodeMsgpackBody checked that v has a JSON form
		if f == fieldData {
			m.Data = raw
		} else {
			m.Extras = raw
		}
	case fieldTimestamp, fieldAction:
		d.integer(m, f, v)
	default:
		switch s := v.(type) {
		case nil:
		case string:
			setString(m, f, validString(s))
		default:
			d.wrongType(fieldNames[f])
		}
	}
}

func setString(m *ablyproto.Message, f int, s string) {
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

// integer sets Timestamp or Action from a msgpack number, as its JSON
// text would have set it: an integer that fits int64, or a float whose
// JSON text is one.
func (d *mpDecoder) integer(m *ablyproto.Message, f int, v any) {
	var n int64
	ok := true
	switch t := v.(type) {
	case nil:
		if f == fieldAction {
			m.Action = nil
		}
		return
	case int8:
		n = int64(t)
	case int16:
		n = int64(t)
	case int32:
		n = int64(t)
	case int64:
		n = t
	case uint8:
		n = int64(t)
	case uint16:
		n = int64(t)
	case uint32:
		n = int64(t)
	case uint64:
		n, ok = int64(t), t <= math.MaxInt64
	case float32, float64:
		text, _ := json.Marshal(t)
		var err error
		n, err = strconv.ParseInt(string(text), 10, 64)
		ok = err == nil
	default:
		ok = false
	}
	switch {
	case !ok:
		d.wrongType(fieldNames[f])
	case f == fieldTimestamp:
		m.Timestamp = n
	default:
		a := int(n)
		m.Action = &a
	}
}

// fieldOfKey is fieldOf for a msgpack map key.
func fieldOfKey(k string) int {
	if len(k) <= 32 && utf8.ValidString(k) {
		var buf [32]byte
		return fieldOf(append(buf[:0], k...))
	}
	return fieldOf(jsonRoundTrip(k))
}

// validString is jsonRoundTrip as a string, s itself when it is valid.
func validString(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return string(jsonRoundTrip(s))
}

// jsonRoundTrip is s as it comes back from a JSON round trip: each byte of
// invalid UTF-8 becomes U+FFFD.
func jsonRoundTrip(s string) []byte {
	if utf8.ValidString(s) {
		return []byte(s)
	}
	out := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		out = utf8.AppendRune(out, r)
		i += n
	}
	return out
}
