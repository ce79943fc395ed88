package ablyrt_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/ablyrt"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestAppPrefix: behind a test app's channel prefix (scope.go) the Ably
// channel "x" is the hub channel "<prefix>x", and the client never sees
// the prefix. A name that is fine alone but not behind the prefix is a
// 40010 refusal, like any invalid name, never an outage (50300) and never
// an attach to the app's bare prefix.
func TestAppPrefix(t *testing.T) {
	t.Parallel()
	const prefix = "t1@"
	n := startNode(t, startHub(t), ablyrt.Config{ChannelPrefix: func(string) string { return prefix }})
	tooLong := strings.Repeat("a", hub.MaxChannelLen)
	for _, f := range wireFormats {
		w := dial(t, n, f, keyQuery())
		w.expect(ablyproto.ActionConnected)
		for _, name := range []string{"", tooLong} {
			w.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionAttach, Channel: name})
			e := w.expect(ablyproto.ActionError)
			testutil.Equal(t, "attach to a "+strconv.Itoa(len(name))+"-byte name behind the prefix", [2]int{40010, 400}, [2]int{e.Error.Code, e.Error.StatusCode})
			w.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionMessage, Channel: name, MsgSerial: serialPtr(int64(len(name))),
				Messages: []ablyproto.RealtimeMessage{{Name: "note", Data: &ablyproto.Data{JSON: json.RawMessage(`{}`)}}}})
			nack := w.expect(ablyproto.ActionNack)
			testutil.Equal(t, "publish to a "+strconv.Itoa(len(name))+"-byte name behind the prefix", [2]int{40010, 400}, [2]int{nack.Error.Code, nack.Error.StatusCode})
		}

		ch := "room-" + f.String()
		w.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionAttach, Channel: ch})
		testutil.Equal(t, "attached channel", ch, w.expect(ablyproto.ActionAttached).Channel)
		if _, err := n.hub.Publish(context.Background(), prefix+ch, hub.Publication{Type: "note", Data: json.RawMessage(`{"n":1}`)}); err != nil {
			t.Fatal(err)
		}
		m := w.expect(ablyproto.ActionMessage)
		testutil.Equal(t, "delivered channel name", ch, m.Channel)
		testutil.Equal(t, "delivered message", "note", m.Messages[0].Name)
	}
}
