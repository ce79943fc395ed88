package publish

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/handoff-health/handoff/ablyproto"
)

// parseMessagesStd is the route's decoder before parseMessages:
// json.Unmarshal into ablyproto.Message. It defines what parseMessages
// must accept, refuse and return.
func parseMessagesStd(body []byte) ([]ablyproto.Message, error) {
	var ms []ablyproto.Message
	var err error
	switch {
	case len(body) > 0 && body[0] == '{':
		ms = make([]ablyproto.Message, 1)
		err = json.Unmarshal(body, &ms[0])
	case len(body) > 0 && body[0] == '[':
		err = json.Unmarshal(body, &ms)
	default:
		return nil, errorf(http.StatusBadRequest, ablyproto.CodeBadRequest, "body must be a message object or an array of them")
	}
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr):
		return nil, errorf(http.StatusBadRequest, ablyproto.CodeBadRequest, "field %q has the wrong type", typeErr.Field)
	case err != nil:
		return nil, errorf(http.StatusBadRequest, ablyproto.CodeBadRequest, "request body is not valid JSON")
	}
	return ms, nil
}

// sameDecode fails t unless parseMessages and parseMessagesStd agree on
// body: the same messages, or the same error.
func sameDecode(t *testing.T, body []byte) {
	t.Helper()
	want, wantErr := parseMessagesStd(body)
	for _, dst := range [][]ablyproto.Message{nil, dirtyMessages()} {
		got, gotErr := parseMessages(dst, body)
		if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
			t.Fatalf("body %q: error %v, want %v", body, gotErr, wantErr)
		}
		if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0 && dst != nil) {
			t.Fatalf("body %q: messages\n%#v\nwant\n%#v", body, got, want)
		}
	}
}

// dirtyMessages is a reused slice still holding old messages, as a
// pooled one would if it were not cleared: the decoders must not let
// any of it through.
func dirtyMessages() []ablyproto.Message {
	a := 7
	m := ablyproto.Message{ID: "old", Name: "old", Data: json.RawMessage("1"), Encoding: "json", ClientID: "old",
		ConnectionID: "old", Timestamp: 1, Serial: "old", Action: &a, Extras: json.RawMessage("{}")}
	return []ablyproto.Message{m, m, m}
}

var decodeSeeds = []string{
	`{"name":"note.added","data":{"noteId":"n-1","text":"a short clinical note"}}`,
	`[{"id":"a:0","name":"x","data":"{\"a\":1}","encoding":"json"},{"id":"a:1","name":"y","data":[1,2.5e3,-0,true,false,null]}]`,
	`[{"name":"x","data":"aGk=","encoding":"base64","clientId":"c","connectionId":"k","connectionKey":"q","size":12,"version":{"serial":"1"},"timestamp":1700000000000,"serial":"s","action":0,"extras":{"headers":{"a":"b"}}}]`,
	`{"NAME":"n","Data":1,"ID":"i","ClientID":"c","ENCODING":"","ſerial":"k","\u0061ction":null}`,
	`{"name":"a","name":"b","data":1,"data":null,"action":1,"action":null}`,
	`{"name":1}`, `{"name":{"a":1}}`, `{"action":1.5}`, `{"action":"0"}`, `{"timestamp":1e3}`,
	`{"timestamp":99999999999999999999}`, `{"action":-9223372036854775808}`, `[1]`, `[null,{"name":"x"}]`,
	`[[],{}]`, `[]`, `{}`, `{"name":"x"} `, `{"name":"x"}x`, `{"name":1,"data":}`, `{"name":"\ud83d\ude00\ud800x\u00e9\u0000"}`,
	"{\"name\":\"\xff\xfe a\"}", "{\"data\":\"\xff\"}", `{"name":"a\"b\\c\/d\b\f\n\r\t"}`, `{"name":"\x"}`,
	`{"data":01}`, `{"data":-}`, `{"data":1.}`, `{"data":1e}`, `{"data":tru}`, `[{"name":"x"},]`, `{"name":"x",}`,
	`{"data":{"a":[{"b":{}}]},"extras":[]}`, `[` + strings.Repeat("[", 9998) + strings.Repeat("]", 9998) + `]`,
	`[` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `]`, `{"name":1,"data":` + strings.Repeat("[", 10001) + `}`,
	`{"id":true,"name":false}`, `{"clientId":null}`, `null`, `"x"`, ``, `[{"k":"K"}]`,
}

// TestParseMessagesMatchesStd: the hand-written decoder agrees with
// encoding/json on the SDKs' bodies and on the corner cases.
func TestParseMessagesMatchesStd(t *testing.T) {
	t.Parallel()
	for _, s := range decodeSeeds {
		sameDecode(t, []byte(s))
	}
}

// FuzzParseMessages compares parseMessages with encoding/json on random
// bodies (go test -fuzz=FuzzParseMessages ./internal/publish/).
func FuzzParseMessages(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { sameDecode(t, body) })
}

// parseMsgpackMessagesStd is the msgpack route before
// parseMsgpackMessages: the body converted to JSON text, then decoded.
func parseMsgpackMessagesStd(body []byte) ([]ablyproto.Message, error) {
	j, err := ablyproto.MsgpackToJSON(body)
	if err != nil {
		return nil, errBadMsgpack
	}
	return parseMessagesStd(bytes.TrimSpace(j))
}

func sameMsgpackDecode(t *testing.T, body []byte) {
	t.Helper()
	want, wantErr := parseMsgpackMessagesStd(body)
	for _, dst := range [][]ablyproto.Message{nil, dirtyMessages()} {
		got, gotErr := parseMsgpackMessages(dst, body)
		if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
			t.Fatalf("body %x: error %v, want %v", body, gotErr, wantErr)
		}
		if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0 && dst != nil) {
			t.Fatalf("body %x: messages\n%#v\nwant\n%#v", body, got, want)
		}
	}
}

// msgpackSeeds are the JSON seeds as msgpack, and values only msgpack
// can hold: binary, NaN, big unsigned and float numbers, invalid UTF-8
// keys, keys equal under folding, a timestamp extension.
func msgpackSeeds(t testing.TB) [][]byte {
	var out [][]byte
	for _, s := range decodeSeeds {
		if b, err := ablyproto.JSONToMsgpack([]byte(s)); err == nil {
			out = append(out, b)
		}
	}
	for _, v := range []any{
		map[string]any{"name": "x", "data": []byte{1, 2}},
		map[string]any{"name": "x", "size": math.NaN()},
		map[string]any{"name": "x", "data": math.Inf(1)},
		map[string]any{"timestamp": uint64(math.MaxUint64), "name": "x"},
		map[string]any{"timestamp": 1.0, "action": float32(0)},
		map[string]any{"timestamp": 1e21, "action": -0.0},
		map[string]any{"timestamp": 1e20},
		map[string]any{"action": uint8(2), "timestamp": int8(-3)},
		map[string]any{"NAME": "a", "name": "b", "Name": 3},
		map[string]any{"n\xffame": "a", "name\xff": "b", "data": "\xff<&>\u2028"},
		map[string]any{"name": "\xffx\xfe", "data": map[string]any{"b": 1, "a": []any{"<", 1.5, nil, true}}},
		map[string]any{"name": "x", "data": time.Unix(1, 0)},
		[]any{nil, map[string]any{"name": "x"}, 3, "y"},
		[]any{}, "x", nil, 5,
	} {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return append(out, []byte{0x81, 0x01, 0x02}, []byte{0xc1}, []byte{0x91, 0x80, 0x00})
}

// TestParseMsgpackMessagesMatchesStd: reading msgpack directly gives what
// the JSON detour gave.
func TestParseMsgpackMessagesMatchesStd(t *testing.T) {
	t.Parallel()
	for _, b := range msgpackSeeds(t) {
		sameMsgpackDecode(t, b)
	}
}

// FuzzParseMsgpackMessages compares the direct msgpack decoder with the
// JSON detour on random bodies.
func FuzzParseMsgpackMessages(f *testing.F) {
	for _, b := range msgpackSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) { sameMsgpackDecode(t, body) })
}

// FuzzStoredData: storedData's fast path for encoding "json" gives what
// ablyproto.StoredData gives, for any data the decoders can pass it
// (valid JSON).
func FuzzStoredData(f *testing.F) {
	for _, s := range []string{`"{\"a\":1}"`, `"[1,\"\u00e9\"]"`, `"{"`, `"\ud800"`, `"\"x\""`, `"  1 "`, `"tru"`, "\"\xff\"", `1`, `null`, `""`, `{"a":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		got, gotErr := storedData(data, "json")
		want, wantErr := ablyproto.StoredData(data, "json")
		if !errors.Is(gotErr, wantErr) || !bytes.Equal(got, want) {
			t.Fatalf("data %q: %q, %v; want %q, %v", data, got, gotErr, want, wantErr)
		}
	})
}

// BenchmarkDecode compares the body's decoding alone, old ("std") and
// new, on the bodies the SDKs send: std is encoding/json (msgpack through
// JSON text), ablyproto.StoredData and the hub's json.Valid of the data;
// new is parseMessages (parseMsgpackMessages) and storedData.
func BenchmarkDecode(b *testing.B) {
	native := []byte(`{"name":"note.added","data":{"noteId":"n-1","text":"a short clinical note of about this size"}}`)
	// ably-js over JSON: the data as a JSON string, an idempotent id,
	// and the fields the SDK adds.
	ablyJS := []byte(`[{"id":"Q2hhbm5lbFRlc3Q:0","name":"note.added","data":"{\"noteId\":\"n-1\",\"text\":\"a short clinical note of about this size\"}","encoding":"json","action":0,"extras":{"headers":{"k":"v"}}}]`)
	var ten bytes.Buffer
	ten.WriteByte('[')
	for i := range 10 {
		if i > 0 {
			ten.WriteByte(',')
		}
		ten.Write(native)
	}
	ten.WriteByte(']')
	mp, err := ablyproto.JSONToMsgpack(ablyJS)
	if err != nil {
		b.Fatal(err)
	}
	std := func(parse func([]byte) ([]ablyproto.Message, error)) func([]byte) error {
		return func(body []byte) error {
			ms, err := parse(body)
			for _, m := range ms {
				d, err := ablyproto.StoredData(m.Data, m.Encoding)
				if err != nil || !json.Valid(d) {
					return errors.New("bad data")
				}
			}
			return err
		}
	}
	hand := func(parse func([]byte) ([]ablyproto.Message, error)) func([]byte) error {
		return func(body []byte) error {
			ms, err := parse(body)
			for _, m := range ms {
				if _, err := storedData(m.Data, m.Encoding); err != nil {
					return err
				}
			}
			return err
		}
	}
	for _, c := range []struct {
		name      string
		body      []byte
		std, hand func([]byte) error
	}{
		{"native", native, std(parseMessagesStd), hand(withoutDst(parseMessages))},
		{"ably-js", ablyJS, std(parseMessagesStd), hand(withoutDst(parseMessages))},
		{"10-messages", ten.Bytes(), std(parseMessagesStd), hand(withoutDst(parseMessages))},
		{"msgpack", mp, std(parseMsgpackMessagesStd), hand(withoutDst(parseMsgpackMessages))},
	} {
		for _, d := range []struct {
			name string
			f    func([]byte) error
		}{{"std", c.std}, {"new", c.hand}} {
			b.Run(c.name+"/"+d.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := d.f(c.body); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// withoutDst is parse with a fresh slice each time, as the old decoders had.
func withoutDst(parse func([]ablyproto.Message, []byte) ([]ablyproto.Message, error)) func([]byte) ([]ablyproto.Message, error) {
	return func(body []byte) ([]ablyproto.Message, error) { return parse(nil, body) }
}
