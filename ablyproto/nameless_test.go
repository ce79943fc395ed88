package ablyproto

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// A message without a name (RSL1f1) goes out without a "name" field, in
// REST JSON and in realtime JSON and msgpack frames, as Ably sends it.
func TestNamelessMessageHasNoNameField(t *testing.T) {
	t.Parallel()
	m := EventMessage("e-1", "", json.RawMessage(`"x"`), time.UnixMilli(1), Origin{MsgID: "b:0"})
	rest, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(rest, []byte(`"name"`)) {
		t.Errorf("REST JSON %s has a name field", rest)
	}
	pm := &ProtocolMessage{Action: ActionMessage, Channel: "c", Messages: []RealtimeMessage{m.Realtime()}}
	for _, f := range []Format{FormatJSON, FormatMsgpack} {
		b, err := Encode(f, pm)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("name")) {
			t.Errorf("%s frame %q has a name field", f, b)
		}
		back, err := Decode(f, b)
		if err != nil {
			t.Fatal(err)
		}
		if got := back.Messages[0]; got.Name != "" || got.ID != "b:0" {
			t.Errorf("%s: decoded %+v", f, got)
		}
	}
}
