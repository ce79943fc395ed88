package ablyproto_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestEventMessageOrigin: a hub-originated event is "handoff-<serial>"
// with no clientId or connectionId; an Ably client's event keeps its
// message id, clientId and connectionId, in JSON and in msgpack alike.
func TestEventMessageOrigin(t *testing.T) {
	t.Parallel()
	ts := time.UnixMilli(1753000000123)
	type ids struct{ ID, ClientID, ConnectionID string }
	for name, tc := range map[string]struct {
		from ablyproto.Origin
		want ids
	}{
		"hub event":        {ablyproto.Origin{}, ids{ID: "handoff-k3j5x0a2b9qzm-42"}},
		"realtime publish": {ablyproto.Origin{MsgID: "hK3x9aQ2Lm:5:0", ClientID: "desk-42", ConnectionID: "hK3x9aQ2Lm"}, ids{"hK3x9aQ2Lm:5:0", "desk-42", "hK3x9aQ2Lm"}},
		"REST publish":     {ablyproto.Origin{MsgID: "Zm9vYmFyYmF6:1", ClientID: "desk-42"}, ids{ID: "Zm9vYmFyYmF6:1", ClientID: "desk-42"}},
	} {
		m := ablyproto.EventMessage("k3j5x0a2b9qzm-42", "note", json.RawMessage(`"hi"`), ts, tc.from)
		testutil.Equal(t, name+": REST message", tc.want, ids{m.ID, m.ClientID, m.ConnectionID})
		testutil.Equal(t, name+": serial", "k3j5x0a2b9qzm-42", m.Serial)
		pm := &ablyproto.ProtocolMessage{Action: ablyproto.ActionMessage, Channel: "c", Messages: []ablyproto.RealtimeMessage{m.Realtime()}}
		for _, f := range []ablyproto.Format{ablyproto.FormatJSON, ablyproto.FormatMsgpack} {
			b, err := ablyproto.Encode(f, pm)
			if err != nil {
				t.Fatal(err)
			}
			var generic map[string]any
			if f == ablyproto.FormatJSON {
				err = json.Unmarshal(b, &generic)
			} else {
				err = msgpack.Unmarshal(b, &generic)
			}
			if err != nil {
				t.Fatal(err)
			}
			msg := generic["messages"].([]any)[0].(map[string]any)
			str := func(k string) string { s, _ := msg[k].(string); return s }
			testutil.Equal(t, name+": realtime message fields", tc.want, ids{str("id"), str("clientId"), str("connectionId")})
		}
	}
}
