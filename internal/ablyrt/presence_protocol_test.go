package ablyrt_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/internal/ablyrt"
	"github.com/handoff-health/handoff/internal/testutil"
	"github.com/handoff-health/handoff/presence"
)

func presenceFrame(channel string, serial int64, items ...ablyproto.RealtimeMessage) *ablyproto.ProtocolMessage {
	return &ablyproto.ProtocolMessage{Action: ablyproto.ActionPresence, Channel: channel, MsgSerial: &serial, Presence: items}
}

func item(action presence.Action, clientID string, data *ablyproto.Data) ablyproto.RealtimeMessage {
	a := int(action)
	return ablyproto.RealtimeMessage{Action: &a, ClientID: clientID, Data: data}
}

func jsonData(s string) *ablyproto.Data { return &ablyproto.Data{JSON: json.RawMessage(s)} }

// expectNack reads the answer to serial and checks its error code.
func (w *wire) expectNack(serial int64, code int) {
	w.t.Helper()
	pm := w.expect(ablyproto.ActionNack)
	if pm.MsgSerial == nil || *pm.MsgSerial != serial || pm.Error == nil || pm.Error.Code != code {
		b, _ := json.Marshal(pm)
		w.t.Fatalf("%s: NACK %s, want msgSerial %d code %d", w.format, b, serial, code)
	}
}

// TestPresenceFrames: inbound PRESENCE is refused with Ably's codes (not
// attached 90001, no presence capability 40160, a contradicting clientId
// 40012, no clientId 91000, binary data and other actions 40000), ACKed
// without res when applied, echoed to the attached sender as PRESENCE
// with the id "<connectionId>:<msgSerial>:<index>" and no channelSerial;
// a resend of the same msgSerial after a resume is ACKed again and not
// applied twice.
func TestPresenceFrames(t *testing.T) {
	t.Parallel()
	reg := presence.NewMemory(presence.MemoryConfig{})
	t.Cleanup(reg.Stop)
	n := startNode(t, startHub(t), ablyrt.Config{Presence: reg})
	for _, f := range wireFormats {
		channel := "session:frames-" + f.String()
		w := dial(t, n, f, keyQuery("clientId", "desk"))
		con := w.expect(ablyproto.ActionConnected)

		w.write(presenceFrame(channel, 0, item(presence.Enter, "", nil)))
		w.expectNack(0, 90001)
		w.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionAttach, Channel: channel})
		if at := w.expect(ablyproto.ActionAttached); at.HasFlag(ablyproto.FlagHasPresence) {
			t.Fatalf("%s: HAS_PRESENCE on a channel without members", f)
		}
		w.write(presenceFrame(channel, 1, item(presence.Enter, "someone-else", nil)))
		w.expectNack(1, 40012)
		w.write(presenceFrame(channel, 2, item(presence.Present, "", nil)))
		w.expectNack(2, 40000)
		if f == ablyproto.FormatMsgpack {
			w.write(presenceFrame(channel, 3, item(presence.Enter, "", &ablyproto.Data{Bin: []byte{1, 2}})))
			w.expectNack(3, 40000)
		}
		w.write(presenceFrame(channel, 4, item(presence.Enter, "", jsonData(`"here"`))))
		// The event may come before the ACK: the registry fans it out as
		// it applies it.
		ack, ev := w.read(), w.read()
		if ack.Action == ablyproto.ActionPresence {
			ack, ev = ev, ack
		}
		if ack.Action != ablyproto.ActionAck || *ack.MsgSerial != 4 || ack.Count != 1 || ack.Res != nil {
			t.Fatalf("%s: ACK %+v", f, ack)
		}
		if ev.ChannelSerial != "" || len(ev.Presence) != 1 || ev.Presence[0].ID != con.ConnectionID+":4:0" ||
			ev.Presence[0].ClientID != "desk" || *ev.Presence[0].Action != int(presence.Enter) {
			b, _ := json.Marshal(ev)
			t.Fatalf("%s: PRESENCE %s", f, b)
		}

		// The transport drops; the SDK resumes and resends msgSerial 4.
		_ = w.ws.CloseNow()
		w2 := dial(t, n, f, keyQuery("clientId", "desk", "resume", con.ConnectionDetails.ConnectionKey))
		testutil.Equal(t, "resumed", con.ConnectionID, w2.expect(ablyproto.ActionConnected).ConnectionID)
		w2.write(presenceFrame(channel, 4, item(presence.Enter, "", jsonData(`"here"`))))
		if ack := w2.expect(ablyproto.ActionAck); *ack.MsgSerial != 4 {
			t.Fatalf("%s: resend ACK %+v", f, ack)
		}
		hist, err := reg.History(context.Background(), channel, presence.HistoryQuery{})
		if err != nil {
			t.Fatal(err)
		}
		testutil.Equal(t, "events after the resend", 1, len(hist))

		// Capability and identity.
		sub := dial(t, n, f, url.Values{"key": {subKey}})
		sub.expect(ablyproto.ActionConnected)
		sub.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionAttach, Channel: "sub:" + f.String()})
		sub.expect(ablyproto.ActionAttached)
		sub.write(presenceFrame("sub:"+f.String(), 0, item(presence.Enter, "x", nil)))
		sub.expectNack(0, 40160)
		anon := dial(t, n, f, keyQuery())
		anon.expect(ablyproto.ActionConnected)
		anon.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionAttach, Channel: channel})
		at := anon.expect(ablyproto.ActionAttached)
		if !at.HasFlag(ablyproto.FlagHasPresence) {
			t.Fatalf("%s: no HAS_PRESENCE with a member present", f)
		}
		sync := anon.expect(ablyproto.ActionSync)
		if len(sync.Presence) != 1 || !strings.HasSuffix(sync.ChannelSerial, ":") || *sync.Presence[0].Action != int(presence.Present) {
			t.Fatalf("%s: SYNC %+v", f, sync)
		}
		anon.write(presenceFrame(channel, 0, item(presence.Enter, "", nil)))
		anon.expectNack(0, 91000)
		// A key without a clientId may enter any clientId (enterClient).
		anon.write(presenceFrame(channel, 1, item(presence.Enter, "phone", jsonData(`"{\"a\":1}"`))))
		for pm := anon.read(); pm.Action != ablyproto.ActionAck; pm = anon.read() {
			testutil.Equal(t, "frame before the ACK", ablyproto.ActionPresence, pm.Action)
		}
	}
}

// TestPresenceDisabled: without a registry PRESENCE is NACKed and
// ATTACHED never has HAS_PRESENCE.
func TestPresenceDisabled(t *testing.T) {
	t.Parallel()
	n := startNode(t, startHub(t), ablyrt.Config{})
	for _, f := range wireFormats {
		w := dial(t, n, f, keyQuery("clientId", "desk"))
		w.expect(ablyproto.ActionConnected)
		w.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionAttach, Channel: "session:off"})
		if at := w.expect(ablyproto.ActionAttached); at.HasFlag(ablyproto.FlagHasPresence) {
			t.Fatalf("%s: HAS_PRESENCE without presence", f)
		}
		w.write(presenceFrame("session:off", 0, item(presence.Enter, "", nil)))
		w.expectNack(0, 40000)
	}
}
