package hub

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestRecordRoundTrip: a history record gives back the event as Publish
// made it, every field, for the shapes events take (no data, no origin,
// long and non-ASCII fields).
func TestRecordRoundTrip(t *testing.T) {
	t.Parallel()
	cur := Cursor{Epoch: NewEpoch(), Offset: 42}
	for _, ev := range []Event{
		{Type: "image.added", Data: json.RawMessage(`{"k":1}`), TS: time.Now().UTC()},
		{TS: time.Unix(1, 2).UTC()},
		{Type: strings.Repeat("t", 300), Data: json.RawMessage(`"` + strings.Repeat("é", 70000) + `"`), TS: time.Now().UTC(),
			Origin: Origin{MsgID: "base:0", ClientID: "phone", ConnectionID: "conn-1", Headers: `{"a":"b"}`}},
	} {
		ev.ID, ev.Channel, ev.Cursor = cur.String(), "session:x", cur
		got := decodeRecord(encodeRecord(&ev), "session:x", cur)
		if !reflect.DeepEqual(got, ev) {
			t.Fatalf("record round trip:\n got %+v\nwant %+v", got, ev)
		}
	}
}

func FuzzRecord(f *testing.F) {
	f.Add("type", `{"a":1}`, "id:0", "client", "conn", `{"h":1}`, int64(1700000000123456789))
	f.Fuzz(func(t *testing.T, typ, data, msgID, clientID, connID, headers string, ns int64) {
		cur := Cursor{Epoch: "e", Offset: 7}
		ev := Event{ID: cur.String(), Channel: "c", Type: typ, TS: time.Unix(0, ns).UTC(), Cursor: cur,
			Origin: Origin{MsgID: msgID, ClientID: clientID, ConnectionID: connID, Headers: headers}}
		if data != "" {
			ev.Data = json.RawMessage(data)
		}
		if got := decodeRecord(encodeRecord(&ev), "c", cur); !reflect.DeepEqual(got, ev) {
			t.Fatalf("got %+v, want %+v", got, ev)
		}
	})
}
