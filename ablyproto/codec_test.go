package ablyproto_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/internal/testutil"
)

func i64(n int64) *int64 { return &n }

// TestProtocolMessageJSON: the frames ABLY-PROTOCOL.md quotes decode field
// by field, and an ACK for msgSerial 0 keeps msgSerial and count.
func TestProtocolMessageJSON(t *testing.T) {
	t.Parallel()
	in := `{"action":15,"channel":"c","msgSerial":0,"messages":[{"name":"n","data":"d","action":0,"size":2}]}`
	pm, err := ablyproto.Decode(ablyproto.FormatJSON, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "action", ablyproto.ActionMessage, pm.Action)
	testutil.Equal(t, "msgSerial", int64(0), *pm.MsgSerial)
	testutil.Equal(t, "data", `"d"`, string(pm.Messages[0].Data.JSON))

	hb, err := ablyproto.Decode(ablyproto.FormatJSON, []byte(`{"id":"p1"}`))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "missing action is HEARTBEAT", ablyproto.ActionHeartbeat, hb.Action)

	ack, err := ablyproto.Encode(ablyproto.FormatJSON, &ablyproto.ProtocolMessage{Action: ablyproto.ActionAck, MsgSerial: i64(0), Count: 1,
		Res: []ablyproto.PublishResult{{Serials: []string{"e-1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "ack", `{"action":1,"count":1,"msgSerial":0,"res":[{"serials":["e-1"]}]}`, string(ack))
}

// TestProtocolMessageMsgpack: a frame round-trips through msgpack with the
// JSON field names, string data stays a str, binary stays a bin and a map
// becomes its JSON text.
func TestProtocolMessageMsgpack(t *testing.T) {
	t.Parallel()
	raw, err := msgpack.Marshal(map[string]any{
		"action": 15, "channel": "c", "msgSerial": 3,
		"messages": []any{
			map[string]any{"name": "s", "data": "hi"},
			map[string]any{"name": "b", "data": []byte{1, 2}},
			map[string]any{"name": "m", "data": map[string]any{"k": []any{1, "x"}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	pm, err := ablyproto.Decode(ablyproto.FormatMsgpack, raw)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "msgSerial", int64(3), *pm.MsgSerial)
	testutil.Equal(t, "string data", `"hi"`, string(pm.Messages[0].Data.JSON))
	testutil.Equal(t, "binary", true, pm.Messages[1].Data.IsBinary())
	testutil.Equal(t, "map data", `{"k":[1,"x"]}`, string(pm.Messages[2].Data.JSON))

	out := &ablyproto.ProtocolMessage{Action: ablyproto.ActionMessage, Channel: "c", ChannelSerial: "e-2",
		Messages: []ablyproto.RealtimeMessage{ablyproto.EventMessage("e-2", "image.added", json.RawMessage(`{"a":1}`), time.UnixMilli(5), ablyproto.Origin{}).Realtime()}}
	b, err := ablyproto.Encode(ablyproto.FormatMsgpack, out)
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := msgpack.Unmarshal(b, &generic); err != nil {
		t.Fatal(err)
	}
	msg := generic["messages"].([]any)[0].(map[string]any)
	testutil.Equal(t, "encoded data is a str", `{"a":1}`, msg["data"])
	testutil.Equal(t, "encoding", "json", msg["encoding"])
	testutil.Equal(t, "id", "handoff-e-2", msg["id"])
	if _, ok := generic["msgSerial"]; ok {
		t.Fatal("msgSerial sent on a MESSAGE")
	}
	back, err := ablyproto.Decode(ablyproto.FormatMsgpack, b)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "round trip", out.Messages[0].Serial, back.Messages[0].Serial)
}

// TestDecodeRefuses: garbage, trailing bytes and data with no JSON form
// are errors, never panics.
func TestDecodeRefuses(t *testing.T) {
	t.Parallel()
	mapKeys, _ := msgpack.Marshal(map[string]any{"messages": []any{map[string]any{"data": map[int]any{1: 2}}}})
	for name, tc := range map[string]struct {
		f ablyproto.Format
		b []byte
	}{
		"json garbage":     {ablyproto.FormatJSON, []byte(`{"action":`)},
		"json wrong type":  {ablyproto.FormatJSON, []byte(`{"action":"x"}`)},
		"msgpack garbage":  {ablyproto.FormatMsgpack, []byte{0xc1}},
		"msgpack trailing": {ablyproto.FormatMsgpack, []byte{0x80, 0x80}},
		"msgpack int keys": {ablyproto.FormatMsgpack, mapKeys},
		// A 4-billion-element array in a few bytes must be refused before
		// the library pre-allocates it (found by FuzzDecodeMsgpack).
		"msgpack huge array": {ablyproto.FormatMsgpack, []byte{0x81, 0xa8, 'm', 'e', 's', 's', 'a', 'g', 'e', 's', 0x91, 0x81, 0xa4, 'd', 'a', 't', 'a', 0xdd, 0xff, 0xff, 0xff, 0xff, 0x00}},
		"msgpack deep":       {ablyproto.FormatMsgpack, append(bytes.Repeat([]byte{0x91}, 200), 0xc0)},
	} {
		if _, err := ablyproto.Decode(tc.f, tc.b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func fuzzSeeds(f *testing.F, format ablyproto.Format) {
	for _, pm := range []*ablyproto.ProtocolMessage{
		{Action: ablyproto.ActionHeartbeat, ID: "x"},
		{Action: ablyproto.ActionAttach, Channel: "c", ChannelSerial: "abc-1", Flags: ablyproto.FlagAttachResume, Params: map[string]string{"rewind": "1"}},
		{Action: ablyproto.ActionMessage, Channel: "c", MsgSerial: i64(0), Messages: []ablyproto.RealtimeMessage{{Name: "n", Data: &ablyproto.Data{JSON: json.RawMessage(`"{\"a\":1}"`)}, Encoding: "json"}}},
		{Action: ablyproto.ActionAuth, Auth: &ablyproto.AuthDetails{AccessToken: "t"}},
	} {
		b, err := ablyproto.Encode(format, pm)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// fuzzRoundTrip: whatever decodes re-encodes, and decodes again.
func fuzzRoundTrip(t *testing.T, format ablyproto.Format, b []byte) {
	pm, err := ablyproto.Decode(format, b)
	if err != nil {
		return
	}
	out, err := ablyproto.Encode(format, pm)
	if err != nil {
		t.Fatalf("decoded frame does not re-encode: %v", err)
	}
	if _, err := ablyproto.Decode(format, out); err != nil {
		t.Fatalf("re-encoded frame does not decode: %v", err)
	}
}

func FuzzDecodeJSON(f *testing.F) {
	fuzzSeeds(f, ablyproto.FormatJSON)
	f.Add([]byte(`{"messages":[{"data":{"a":[1,2,{"b":null}]}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) { fuzzRoundTrip(t, ablyproto.FormatJSON, b) })
}

func FuzzDecodeMsgpack(f *testing.F) {
	fuzzSeeds(f, ablyproto.FormatMsgpack)
	f.Add([]byte{0x81, 0xa4, 'd', 'a', 't', 'a', 0xc4, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) { fuzzRoundTrip(t, ablyproto.FormatMsgpack, b) })
}
