package ablyproto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Format is a realtime connection's wire format (the format= query
// parameter): JSON in text frames or msgpack in binary frames. Each SDK
// decodes by the format it asked for, not by the frame type.
type Format int

const (
	FormatJSON Format = iota
	FormatMsgpack
)

// ParseFormat reads format=; empty is JSON, Ably's default for a client
// that names none.
func ParseFormat(s string) (Format, bool) {
	switch s {
	case "", "json":
		return FormatJSON, true
	case "msgpack":
		return FormatMsgpack, true
	}
	return 0, false
}

func (f Format) String() string {
	if f == FormatMsgpack {
		return "msgpack"
	}
	return "json"
}

// MaxDataDepth bounds the nesting of msgpack data converted to JSON, so a
// hostile frame cannot recurse deeply.
const MaxDataDepth = 64

// ErrBadFrame wraps every decode failure.
var ErrBadFrame = errors.New("ablyproto: malformed protocol message")

// Decode parses one frame in format f.
func Decode(f Format, b []byte) (*ProtocolMessage, error) {
	pm := new(ProtocolMessage)
	var err error
	if f == FormatMsgpack {
		if err = checkMsgpack(b); err == nil {
			dec := msgpack.NewDecoder(bytes.NewReader(b))
			dec.SetCustomStructTag("json")
			err = dec.Decode(pm)
		}
	} else {
		err = json.Unmarshal(b, pm)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadFrame, err)
	}
	return pm, nil
}

// Encode writes one frame in format f.
func Encode(f Format, pm *ProtocolMessage) ([]byte, error) {
	if f == FormatMsgpack {
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		enc.SetCustomStructTag("json")
		enc.UseCompactInts(true)
		if err := enc.Encode(pm); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	return json.Marshal(pm)
}

// EncodeMsgpack writes the data as msgpack: a JSON string as a str,
// binary as a bin, any other JSON value as its msgpack equivalent.
func (d *Data) EncodeMsgpack(enc *msgpack.Encoder) error {
	switch {
	case d.Bin != nil:
		return enc.EncodeBytes(d.Bin)
	case len(d.JSON) == 0:
		return enc.EncodeNil()
	case d.JSON[0] == '"':
		var s string
		if err := json.Unmarshal(d.JSON, &s); err != nil {
			return err
		}
		return enc.EncodeString(s)
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(d.JSON))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return err
	}
	return enc.Encode(jsonToMsgpack(v))
}

func jsonToMsgpack(v any) any {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	case map[string]any:
		for k, e := range t {
			t[k] = jsonToMsgpack(e)
		}
	case []any:
		for i, e := range t {
			t[i] = jsonToMsgpack(e)
		}
	}
	return v
}

// DecodeMsgpack reads msgpack data: a bin becomes Bin, anything else its
// JSON text. Maps must have string keys.
func (d *Data) DecodeMsgpack(dec *msgpack.Decoder) error {
	d.JSON, d.Bin = nil, nil
	c, err := dec.PeekCode()
	if err != nil {
		return err
	}
	if msgpcode.IsBin(c) {
		b, err := dec.DecodeBytes()
		if err != nil {
			return err
		}
		if b == nil {
			b = []byte{}
		}
		d.Bin = b
		return nil
	}
	v, err := dec.DecodeInterface()
	if err != nil {
		return err
	}
	v, err = msgpackToJSON(v, 0)
	if err != nil {
		return err
	}
	d.JSON, err = json.Marshal(v)
	return err
}

// msgpackToJSON checks that a decoded msgpack value has a JSON form:
// string map keys, no binary inside a structure, bounded depth.
func msgpackToJSON(v any, depth int) (any, error) {
	if depth > MaxDataDepth {
		return nil, errors.New("data nested too deeply")
	}
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			c, err := msgpackToJSON(e, depth+1)
			if err != nil {
				return nil, err
			}
			t[k] = c
		}
	case []any:
		for i, e := range t {
			c, err := msgpackToJSON(e, depth+1)
			if err != nil {
				return nil, err
			}
			t[i] = c
		}
	case []byte:
		return nil, errors.New("binary inside structured data")
	case nil, string, bool, int8, int16, int32, int64, uint8, uint16, uint32, uint64, float32, float64:
	default:
		return nil, fmt.Errorf("data of type %T has no JSON form", v)
	}
	return v, nil
}

// MsgpackToJSON converts one msgpack document (a REST body sent with
// Content-Type application/x-msgpack, ably-go's default) to the JSON text
// of the same value, so the JSON decoding and its checks apply unchanged.
// Binary values are refused: handoff stores JSON only, and the SDKs send
// binary REST data as base64 text anyway.
func MsgpackToJSON(b []byte) ([]byte, error) {
	if err := checkMsgpack(b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadFrame, err)
	}
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	v, err := dec.DecodeInterface()
	if err == nil {
		v, err = msgpackToJSON(v, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadFrame, err)
	}
	return json.Marshal(v)
}

// DecodeMsgpackBody decodes one msgpack document (a REST body sent as
// application/x-msgpack) to the Go value whose JSON encoding
// MsgpackToJSON returns, and refuses exactly what MsgpackToJSON refuses,
// so a caller can read the value directly instead of through JSON text.
func DecodeMsgpackBody(b []byte) (any, error) {
	if err := checkMsgpack(b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadFrame, err)
	}
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	v, err := dec.DecodeInterface()
	if err == nil {
		v, err = msgpackToJSON(v, 0)
	}
	if err == nil && !finite(v) {
		err = errors.New("NaN or infinity has no JSON form")
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadFrame, err)
	}
	return v, nil
}

// finite reports whether every number in v (checked by msgpackToJSON)
// has a JSON form, as json.Marshal requires.
func finite(v any) bool {
	switch t := v.(type) {
	case map[string]any:
		for _, e := range t {
			if !finite(e) {
				return false
			}
		}
	case []any:
		for _, e := range t {
			if !finite(e) {
				return false
			}
		}
	case float64:
		return !math.IsNaN(t) && !math.IsInf(t, 0)
	case float32:
		return !math.IsNaN(float64(t)) && !math.IsInf(float64(t), 0)
	}
	return true
}

// JSONToMsgpack converts one JSON document to msgpack with the same
// structure: a REST reply for a client that asked for msgpack (ably-js on
// Node decodes success bodies by its own format, whatever the
// Content-Type). Integers stay integers, so timestamps keep their type.
func JSONToMsgpack(b []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return msgpack.Marshal(jsonToMsgpack(v))
}
