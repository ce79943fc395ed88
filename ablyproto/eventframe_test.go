package ablyproto

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// genericEventFrame is the frame EncodeEventFrame stands for, through
// Encode.
func genericEventFrame(t testing.TB, f Format, channel, channelSerial, serial, name string, data json.RawMessage, ts time.Time, from Origin) []byte {
	t.Helper()
	m := EventMessage(serial, name, data, ts, from).Realtime()
	b, err := Encode(f, &ProtocolMessage{Action: ActionMessage, Channel: channel, ChannelSerial: channelSerial, Messages: []RealtimeMessage{m}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decoded is a frame as a client reads it: Decode, with each message's
// data as its value rather than its JSON text (JSON may escape one string
// in more than one way).
func decoded(t testing.TB, f Format, b []byte) ProtocolMessage {
	t.Helper()
	pm, err := Decode(f, b)
	if err != nil {
		t.Fatalf("%s frame does not decode: %v: %q", f, err, b)
	}
	for i := range pm.Messages {
		if d := pm.Messages[i].Data; d != nil && d.JSON != nil {
			var v any
			if err := json.Unmarshal(d.JSON, &v); err != nil {
				t.Fatalf("%s data %q: %v", f, d.JSON, err)
			}
			norm, _ := json.Marshal(v)
			pm.Messages[i].Data = &Data{JSON: norm}
		}
	}
	return *pm
}

type eventCase struct {
	channel, channelSerial, serial, name string
	data                                 json.RawMessage
	ts                                   time.Time
	from                                 Origin
}

// checkEventFrame: the fast frame decodes to what Encode's does; in
// msgpack the bytes are the same.
func checkEventFrame(t testing.TB, c eventCase) {
	t.Helper()
	for _, f := range []Format{FormatJSON, FormatMsgpack} {
		fast, ok := EncodeEventFrame(f, c.channel, c.channelSerial, c.serial, c.name, c.data, c.ts, c.from)
		if !ok {
			continue
		}
		want := genericEventFrame(t, f, c.channel, c.channelSerial, c.serial, c.name, c.data, c.ts, c.from)
		if f == FormatMsgpack && !bytes.Equal(fast, want) {
			t.Fatalf("msgpack frame differs from Encode's for %+v:\n fast %q\n want %q", c, fast, want)
		}
		if got, exp := decoded(t, f, fast), decoded(t, f, want); !reflect.DeepEqual(got, exp) {
			t.Fatalf("%s frame decodes differently for %+v:\n fast %q\n want %q", f, c, fast, want)
		}
	}
}

func TestEncodeEventFrame(t *testing.T) {
	ts := time.UnixMilli(1753000000123)
	for _, c := range []eventCase{
		{"session:7c1e", "k3j5x0a2b9qzm-42", "k3j5x0a2b9qzm-42", "image.added", json.RawMessage(`{"imageId":"img_01HZX3","size":482113}`), ts, Origin{}},
		{"bench-17", "e-1", "e-1", "bench", json.RawMessage(`{"t":1753000000123456789,"r":1753000000123456789}`), ts, Origin{MsgID: "conn:0:0", ClientID: "desk", ConnectionID: "conn"}},
		{"c", "", "", "", nil, time.UnixMilli(0), Origin{}},
		{"", "s", "s", "n", json.RawMessage(`"a plain string with \"quotes\", <html> & \u2028 and \\ backslash"`), ts, Origin{}},
		{"c<&>", "s\u2029", "s", "näme\t\n", json.RawMessage(`["<", "&", ">", "é", 1.5e3, null, true]`), ts, Origin{ClientID: "ü\x01"}},
		{"c", "s", "s", "n", json.RawMessage(`12`), time.UnixMilli(5), Origin{}},
		{"c", "s", "s", "n", json.RawMessage(`{"long":"` + strings.Repeat("x", 300) + `"}`), ts, Origin{}},
		{"c", "s", "s", "n", json.RawMessage(`{"longer":"` + strings.Repeat("y", 70000) + `"}`), ts, Origin{}},
		{"c", "s", "s", "n", json.RawMessage(`"` + strings.Repeat("z", 40) + `"`), time.UnixMilli(300), Origin{}},
		{"c", "s", "s", "n", json.RawMessage(`{"a":1}`), time.UnixMilli(70000), Origin{}},
		{"c", "s", "s", "n", json.RawMessage(`{"a":1}`), time.UnixMilli(1 << 33), Origin{}},
	} {
		checkEventFrame(t, c)
	}
	// Not covered: the caller falls back to Encode.
	if _, ok := EncodeEventFrame(FormatJSON, "c", "s", "s", "n", json.RawMessage(`{"a":1}`), ts, Origin{Headers: `{"k":"v"}`}); ok {
		t.Fatal("headers: want the fallback")
	}
	if _, ok := EncodeEventFrame(FormatMsgpack, "c", "s", "s", "n", json.RawMessage("\"\xff\""), ts, Origin{}); ok {
		t.Fatal("invalid UTF-8 data: want the fallback")
	}
	if _, ok := EncodeEventFrame(FormatJSON, "c", "s", "s", "n", json.RawMessage(`1`), time.UnixMilli(-1), Origin{}); ok {
		t.Fatal("a timestamp before 1970: want the fallback")
	}
}

func TestEncodeEventFrameRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "Z", "0", " ", "\"", "\\", "<", ">", "&", "\n", "\t", "\x00", "\x1f", "é", "日本", "\u2028", "\u2029", "😀", "\x7f", "/"}
	str := func(max int) string {
		var sb strings.Builder
		for range r.IntN(max + 1) {
			sb.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		return sb.String()
	}
	for range 2000 {
		s := str(12)
		var data json.RawMessage
		switch r.IntN(4) {
		case 0:
			data, _ = json.Marshal(str(80))
		case 1:
			data, _ = json.Marshal(map[string]any{"k": str(40), "n": r.Float64(), "list": []any{str(5), r.IntN(1000), nil}})
		case 2:
			data, _ = json.Marshal(r.Int64())
		}
		checkEventFrame(t, eventCase{str(20), s, s, str(10), data, time.UnixMilli(r.Int64N(1 << 42)),
			Origin{MsgID: str(3), ClientID: str(6), ConnectionID: str(6)}})
	}
}

func FuzzEncodeEventFrame(f *testing.F) {
	f.Add("session:a", "e-1", "n", []byte(`{"a":"<b>"}`), int64(1753000000123), "", "desk", "conn")
	f.Add("c", "", "", []byte(`"x\u2028"`), int64(0), "id:0:0", "", "")
	f.Fuzz(func(t *testing.T, channel, serial, name string, data []byte, ms int64, msgID, clientID, connID string) {
		if len(data) > 0 && !json.Valid(data) {
			return // the hub stores valid JSON only
		}
		checkEventFrame(t, eventCase{channel, serial, serial, name, data, time.UnixMilli(ms), Origin{MsgID: msgID, ClientID: clientID, ConnectionID: connID}})
	})
}

func BenchmarkEncodeEventFrame(b *testing.B) {
	data := json.RawMessage(`{"imageId":"img_01HZX3","url":"https://files.example/blob/abc?sig=0123456789abcdef0123456789abcdef&exp=1753000000","bodySite":"left-forearm","capturedAt":"2026-12-02T13:00:00Z","size":482113}`)
	ts := time.UnixMilli(1753000000123)
	for _, f := range []Format{FormatJSON, FormatMsgpack} {
		b.Run(f.String()+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := EncodeEventFrame(f, "session:7c1e", "k3j5x0a2b9qzm-42", "k3j5x0a2b9qzm-42", "image.added", data, ts, Origin{}); !ok {
					b.Fatal("fallback")
				}
			}
		})
		b.Run(f.String()+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				genericEventFrame(b, f, "session:7c1e", "k3j5x0a2b9qzm-42", "k3j5x0a2b9qzm-42", "image.added", data, ts, Origin{})
			}
		})
	}
}
