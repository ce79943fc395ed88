package ablyrt_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/ablyrt"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/testutil"
)

// These tests speak the protocol frame by frame, for the behaviours an
// SDK does not expose: exact flags, serials, errors and the msgSerial
// dedupe after a resume. The SDK scenarios are in ablygo_test.go.

type wire struct {
	t      testing.TB
	ws     *websocket.Conn
	format ablyproto.Format
}

func dial(t testing.TB, n *node, format ablyproto.Format, query url.Values) *wire {
	t.Helper()
	if query.Get("v") == "" {
		query.Set("v", "5")
	}
	query.Set("format", format.String())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, "ws://127.0.0.1:"+strconv.Itoa(n.port)+"/?"+query.Encode(), nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	ws.SetReadLimit(4 << 20)
	t.Cleanup(func() { _ = ws.CloseNow() })
	return &wire{t: t, ws: ws, format: format}
}

func (w *wire) write(pm *ablyproto.ProtocolMessage) {
	w.t.Helper()
	b, err := ablyproto.Encode(w.format, pm)
	if err != nil {
		w.t.Fatal(err)
	}
	typ := websocket.MessageText
	if w.format == ablyproto.FormatMsgpack {
		typ = websocket.MessageBinary
	}
	if err := w.ws.Write(context.Background(), typ, b); err != nil {
		w.t.Fatal(err)
	}
}

// read returns the next frame that is not an idle HEARTBEAT.
func (w *wire) read() *ablyproto.ProtocolMessage {
	w.t.Helper()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		typ, b, err := w.ws.Read(ctx)
		cancel()
		if err != nil {
			w.t.Fatalf("read: %v", err)
		}
		want := websocket.MessageText
		if w.format == ablyproto.FormatMsgpack {
			want = websocket.MessageBinary
		}
		testutil.Equal(w.t, "frame type", want, typ)
		pm, err := ablyproto.Decode(w.format, b)
		if err != nil {
			w.t.Fatal(err)
		}
		if pm.Action == ablyproto.ActionHeartbeat && pm.ID == "" {
			continue
		}
		return pm
	}
}

func (w *wire) expect(action ablyproto.Action) *ablyproto.ProtocolMessage {
	w.t.Helper()
	pm := w.read()
	if pm.Action != action {
		b, _ := json.Marshal(pm)
		w.t.Fatalf("got action %d, want %d: %s", pm.Action, action, b)
	}
	return pm
}

func keyQuery(extra ...string) url.Values {
	q := url.Values{"key": {testKey}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return q
}

func serialPtr(n int64) *int64 { return &n }

var wireFormats = []ablyproto.Format{ablyproto.FormatJSON, ablyproto.FormatMsgpack}

// TestConnected: CONNECTED carries every connectionDetails field the SDKs
// read, and a fresh connectionKey on every transport.
func TestConnected(t *testing.T) {
	t.Parallel()
	n := startNode(t, startHub(t), ablyrt.Config{})
	for _, f := range wireFormats {
		w := dial(t, n, f, keyQuery("clientId", "desk-42"))
		pm := w.expect(ablyproto.ActionConnected)
		d := pm.ConnectionDetails
		if pm.ConnectionID == "" || d == nil || d.ConnectionKey == "" {
			t.Fatalf("%s: CONNECTED without id or key: %+v", f, pm)
		}
		testutil.Equal(t, "clientId", "desk-42", d.ClientID)
		testutil.Equal(t, "maxIdleInterval", int64(15000), d.MaxIdleInterval)
		testutil.Equal(t, "connectionStateTtl", int64(120000), d.ConnectionStateTTL)
		testutil.Equal(t, "maxMessageSize", int64(hub.MaxDataBytes), d.MaxMessageSize)
		if d.MaxFrameSize == 0 || d.MaxInboundRate == 0 || d.ServerID == "" {
			t.Fatalf("%s: incomplete connectionDetails %+v", f, d)
		}
		// A resume keeps the id and changes the key.
		_ = w.ws.CloseNow()
		w2 := dial(t, n, f, keyQuery("resume", d.ConnectionKey))
		pm2 := w2.expect(ablyproto.ActionConnected)
		testutil.Equal(t, "resumed id", pm.ConnectionID, pm2.ConnectionID)
		if pm2.Error != nil || pm2.ConnectionDetails.ConnectionKey == d.ConnectionKey {
			t.Fatalf("%s: resume: error %v, key %q (was %q)", f, pm2.Error, pm2.ConnectionDetails.ConnectionKey, d.ConnectionKey)
		}
		// recover= (a new client instance with a recovery key) is a resume.
		_ = w2.ws.CloseNow()
		wr := dial(t, n, f, keyQuery("recover", pm2.ConnectionDetails.ConnectionKey))
		testutil.Equal(t, "recovered id", pm.ConnectionID, wr.expect(ablyproto.ActionConnected).ConnectionID)
		// A forged key is a new connection with 80008.
		w3 := dial(t, n, f, keyQuery("resume", pm.ConnectionID+"!abc-AAAAAAAAAAAAAAAAAAAAAA"))
		pm3 := w3.expect(ablyproto.ActionConnected)
		if pm3.ConnectionID == pm.ConnectionID || pm3.Error == nil || pm3.Error.Code != 80008 {
			t.Fatalf("%s: forged resume: id %q error %+v", f, pm3.ConnectionID, pm3.Error)
		}
		// Something that is no connection key at all is Ably's 80018.
		w5 := dial(t, n, f, keyQuery("recover", "_____!ably___test_fake-key____"))
		if pm5 := w5.expect(ablyproto.ActionConnected); pm5.Error == nil || pm5.Error.Code != 80018 {
			t.Fatalf("%s: malformed recover key: error %+v, want 80018", f, pm5.Error)
		}
		// Another API key cannot resume this connection.
		w4 := dial(t, n, f, url.Values{"key": {subKey}, "resume": {pm2.ConnectionDetails.ConnectionKey}})
		if pm4 := w4.expect(ablyproto.ActionConnected); pm4.ConnectionID == pm.ConnectionID {
			t.Fatalf("%s: another key resumed the connection", f)
		}
	}
}

// TestRefusedConnections: bad credentials, versions and formats get an
// ERROR frame after a successful upgrade, never an HTTP 401; a plain
// GET / is still a 404.
func TestRefusedConnections(t *testing.T) {
	t.Parallel()
	n := startNode(t, startHub(t), ablyrt.Config{})
	for _, tc := range []struct {
		name  string
		q     url.Values
		code  int
		token bool
	}{
		{"wrong secret", url.Values{"key": {keyName + ":wrong-0123456789abcdef"}}, 40101, false},
		{"no credentials", url.Values{}, 40100, false},
		{"bad token", url.Values{"access_token": {"hdf1.nope.nope"}}, 40140, true},
		{"version 1", keyQuery("v", "1"), 40000, false},
		{"version 7", keyQuery("v", "7"), 40000, false},
	} {
		for _, f := range wireFormats {
			w := dial(t, n, f, tc.q)
			pm := w.expect(ablyproto.ActionError)
			testutil.Equal(t, tc.name+" code", tc.code, pm.Error.Code)
			if tc.token && pm.Error.StatusCode != 401 {
				t.Fatalf("%s: token error with status %d", tc.name, pm.Error.StatusCode)
			}
		}
	}
	resp, err := http.Get(n.http.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	testutil.Equal(t, "plain GET /", http.StatusNotFound, resp.StatusCode)
}

// TestHeartbeats: a HEARTBEAT with an id is echoed; an idle connection
// gets protocol HEARTBEATs.
func TestHeartbeats(t *testing.T) {
	t.Parallel()
	n := startNode(t, startHub(t), ablyrt.Config{MaxIdleInterval: 200 * time.Millisecond})
	for _, f := range wireFormats {
		w := dial(t, n, f, keyQuery())
		w.expect(ablyproto.ActionConnected)
		w.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionHeartbeat, ID: "ping-1"})
		pm := w.expect(ablyproto.ActionHeartbeat)
		testutil.Equal(t, "echoed id", "ping-1", pm.ID)
		// Idle heartbeats have no id; read them raw.
		for range 2 {
			_, b, err := w.ws.Read(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			hb, err := ablyproto.Decode(f, b)
			if err != nil || hb.Action != ablyproto.ActionHeartbeat {
				t.Fatalf("%s: idle frame %+v %v", f, hb, err)
			}
			testutil.Equal(t, "idle heartbeat id", "", hb.ID)
		}
	}
}

// TestAttachReplay: ATTACHED always carries a channelSerial and the mode
// flags; an ATTACH with a channelSerial replays strictly after it with
// RESUMED; an unknown serial is 90003 without RESUMED; rewind replays the
// last N; DETACH is answered with DETACHED.
func TestAttachReplay(t *testing.T) {
	t.Parallel()
	n := startNode(t, startHub(t), ablyrt.Config{})
	for _, f := range wireFormats {
		channel := "session:replay-" + f.String()
		w := dial(t, n, f, keyQuery())
		w.expect(ablyproto.ActionConnected)
		w.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionAttach, Channel: channel})
		at := w.expect(ablyproto.ActionAttached)
		testutil.Equal(t, "empty channel serial", "0", at.ChannelSerial)
		testutil.Equal(t, "mode flags", ablyproto.FlagModes, at.Flags)
		var serials []string
		for i := range 5 {
			ev, err := n.hub.Publish(context.Background(), channel, hub.Publication{Type: "e", Data: json.RawMessage(strconv.Itoa(i))})
			if err != nil {
				t.Fatal(err)
			}
			serials = append(serials, ev.ID)
			m := w.expect(ablyproto.ActionMessage)
			testutil.Equal(t, "live channelSerial", ev.ID, m.ChannelSerial)
			testutil.Equal(t, "live serial", ev.ID, m.Messages[0].Serial)
		}
		w.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionDetach, Channel: channel})
		w.expect(ablyproto.ActionDetached)

		w.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionAttach, Channel: channel, ChannelSerial: serials[1], Flags: ablyproto.FlagAttachResume})
		at = w.expect(ablyproto.ActionAttached)
		if !at.HasFlag(ablyproto.FlagResumed) || at.Error != nil {
			t.Fatalf("%s: resumed attach: flags %d error %v", f, at.Flags, at.Error)
		}
		testutil.Equal(t, "attach serial", serials[1], at.ChannelSerial)
		for _, want := range serials[2:] {
			testutil.Equal(t, "replayed", want, w.expect(ablyproto.ActionMessage).ChannelSerial)
		}

		w.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionAttach, Channel: channel + "x", ChannelSerial: "nosuchepoch-3"})
		at = w.expect(ablyproto.ActionAttached)
		if at.HasFlag(ablyproto.FlagResumed) || at.Error == nil || at.Error.Code != 90003 {
			t.Fatalf("%s: lost continuity: flags %d error %+v", f, at.Flags, at.Error)
		}

		w2 := dial(t, n, f, keyQuery())
		w2.expect(ablyproto.ActionConnected)
		w2.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionAttach, Channel: channel, Params: map[string]string{"rewind": "2"}})
		at = w2.expect(ablyproto.ActionAttached)
		testutil.Equal(t, "rewind param echoed", "2", at.Params["rewind"])
		for _, want := range serials[3:] {
			testutil.Equal(t, "rewound", want, w2.expect(ablyproto.ActionMessage).ChannelSerial)
		}
		w2.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionClose})
		w2.expect(ablyproto.ActionClosed)
	}
}

// TestResendAfterResume: a publish resent with the same msgSerial after a
// resume is ACKed again with the same serials and published once; a
// second copy on the same transport is not answered twice.
func TestResendAfterResume(t *testing.T) {
	t.Parallel()
	n := startNode(t, startHub(t), ablyrt.Config{})
	for _, f := range wireFormats {
		channel := "session:resend-" + f.String()
		w := dial(t, n, f, keyQuery())
		c := w.expect(ablyproto.ActionConnected)
		pub := &ablyproto.ProtocolMessage{Action: ablyproto.ActionMessage, Channel: channel, MsgSerial: serialPtr(0),
			Messages: []ablyproto.RealtimeMessage{{Name: "n", Data: &ablyproto.Data{JSON: json.RawMessage(`"d"`)}}}}
		w.write(pub)
		ack := w.expect(ablyproto.ActionAck)
		testutil.Equal(t, "msgSerial", int64(0), *ack.MsgSerial)
		testutil.Equal(t, "count", 1, ack.Count)
		_ = w.ws.CloseNow()

		w2 := dial(t, n, f, keyQuery("resume", c.ConnectionDetails.ConnectionKey))
		testutil.Equal(t, "same connection", c.ConnectionID, w2.expect(ablyproto.ActionConnected).ConnectionID)
		w2.write(pub)
		again := w2.expect(ablyproto.ActionAck)
		testutil.Equal(t, "same serials", ack.Res, again.Res)
		// ably-go can send one serial twice on one transport (a channel
		// queue flushed on CONNECTED, then resendAcks): the copy gets no
		// answer, or ably-go panics on an ACK with nothing pending. The
		// next frame must be serial 1's NACK.
		w2.write(pub)
		pub.MsgSerial = serialPtr(1)
		pub.Messages[0].Encoding = "base64"
		w2.write(pub)
		nack := w2.expect(ablyproto.ActionNack)
		testutil.Equal(t, "nack serial", int64(1), *nack.MsgSerial)
		testutil.Equal(t, "nack code", 40000, nack.Error.Code)

		evs, _, err := n.hub.History(context.Background(), channel, hub.Cursor{})
		if err != nil {
			t.Fatal(err)
		}
		testutil.Equal(t, "published once", 1, len(evs))
	}
}

// TestSlowConsumer: a connection whose send queue overflows is sent
// DISCONNECTED (so the SDK resumes from its channel serials), not cut.
func TestSlowConsumer(t *testing.T) {
	t.Parallel()
	n := startNode(t, startHub(t), ablyrt.Config{SendQueueMessages: 4})
	for _, f := range wireFormats {
		channel := "session:slow-" + f.String()
		for i := range 200 {
			if _, err := n.hub.Publish(context.Background(), channel, hub.Publication{Type: "e", Data: json.RawMessage(strconv.Itoa(i))}); err != nil {
				t.Fatal(err)
			}
		}
		w := dial(t, n, f, keyQuery())
		w.expect(ablyproto.ActionConnected)
		w.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionAttach, Channel: channel, ChannelSerial: "0"})
		for {
			pm := w.read()
			if pm.Action == ablyproto.ActionDisconnected {
				testutil.Equal(t, "code", 80003, pm.Error.Code)
				break
			}
			if pm.Action != ablyproto.ActionAttached && pm.Action != ablyproto.ActionMessage {
				t.Fatalf("%s: unexpected action %d", f, pm.Action)
			}
		}
	}
}

// TestRefusals: invalid channel names (40010), the channel limit (90010),
// the server's own event names (NACK 40300), presence (NACK 40000), a
// token whose clientId contradicts the clientId parameter (ERROR 40102).
func TestRefusals(t *testing.T) {
	t.Parallel()
	n := startNode(t, startHub(t), ablyrt.Config{MaxChannels: 1})
	for _, f := range wireFormats {
		w := dial(t, n, f, keyQuery())
		w.expect(ablyproto.ActionConnected)
		w.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionAttach, Channel: "[bad channel"})
		testutil.Equal(t, "invalid name", 40010, w.expect(ablyproto.ActionError).Error.Code)
		w.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionAttach, Channel: "one"})
		w.expect(ablyproto.ActionAttached)
		w.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionAttach, Channel: "two"})
		e := w.expect(ablyproto.ActionError)
		testutil.Equal(t, "channel limit", 90010, e.Error.Code)
		testutil.Equal(t, "channel named", "two", e.Channel)
		w.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionMessage, Channel: "one", MsgSerial: serialPtr(0),
			Messages: []ablyproto.RealtimeMessage{{Name: "image.added", Data: &ablyproto.Data{JSON: json.RawMessage(`{}`)}}}})
		testutil.Equal(t, "server namespace", 40300, w.expect(ablyproto.ActionNack).Error.Code)
		w.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionPresence, Channel: "one", MsgSerial: serialPtr(1),
			Presence: []ablyproto.RealtimeMessage{{ClientID: "a"}}})
		nack := w.expect(ablyproto.ActionNack)
		testutil.Equal(t, "presence", 40000, nack.Error.Code)
		testutil.Equal(t, "presence serial", int64(1), *nack.MsgSerial)

		keys, err := auth.ParseAPIKeys(testKey, "")
		if err != nil {
			t.Fatal(err)
		}
		tok, err := auth.AblyTokens{Keys: keys, Now: time.Now}.Issue(auth.AblyTokenClaims{KeyName: keyName,
			Issued: time.Now().UnixMilli(), Expires: time.Now().Add(time.Hour).UnixMilli(), Capability: `{"*":["*"]}`, ClientID: "desk-1"})
		if err != nil {
			t.Fatal(err)
		}
		tw := dial(t, n, f, url.Values{"access_token": {tok}, "clientId": {"desk-2"}})
		testutil.Equal(t, "clientId mismatch", 40102, tw.expect(ablyproto.ActionError).Error.Code)
		ok := dial(t, n, f, url.Values{"access_token": {tok}})
		testutil.Equal(t, "token clientId", "desk-1", ok.expect(ablyproto.ActionConnected).ConnectionDetails.ClientID)
		// A wildcard token used without a clientId is announced as "*"
		// (RSA7b2), so ably-go lets its messages name a clientId.
		wild, err := auth.AblyTokens{Keys: keys, Now: time.Now}.Issue(auth.AblyTokenClaims{KeyName: keyName,
			Issued: time.Now().UnixMilli(), Expires: time.Now().Add(time.Hour).UnixMilli(), Capability: `{"*":["*"]}`, ClientID: "*"})
		if err != nil {
			t.Fatal(err)
		}
		testutil.Equal(t, "wildcard token's clientId", "*",
			dial(t, n, f, url.Values{"access_token": {wild}}).expect(ablyproto.ActionConnected).ConnectionDetails.ClientID)
		testutil.Equal(t, "wildcard token's clientId when the client names one", "desk-3",
			dial(t, n, f, url.Values{"access_token": {wild}, "clientId": {"desk-3"}}).expect(ablyproto.ActionConnected).ConnectionDetails.ClientID)

		// A message may repeat its connection's clientId, not contradict
		// it (40012, status 400); "*" is no message's clientId; an id
		// out of bounds is refused; nothing refused is published.
		for i, m := range []struct {
			msg  ablyproto.RealtimeMessage
			code int
		}{
			{ablyproto.RealtimeMessage{Name: "n", ClientID: "desk-2"}, ablyproto.CodeInvalidClientID},
			{ablyproto.RealtimeMessage{Name: "n", ClientID: "*"}, ablyproto.CodeBadRequest},
			{ablyproto.RealtimeMessage{Name: "n", ID: "has a space"}, ablyproto.CodeBadRequest},
			{ablyproto.RealtimeMessage{Name: "n", ID: "b:1"}, ablyproto.CodeInvalidMessageID}, // beside one without an id (RSL1k3)
		} {
			ok.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionMessage, Channel: "refused-" + f.String(), MsgSerial: serialPtr(int64(i)),
				Messages: []ablyproto.RealtimeMessage{{Name: "fine"}, m.msg}})
			nack := ok.expect(ablyproto.ActionNack)
			testutil.Equal(t, fmt.Sprintf("message %d refused", i), [2]int{m.code, 400}, [2]int{nack.Error.Code, nack.Error.StatusCode})
		}
		evs, _, err := n.hub.History(context.Background(), "refused-"+f.String(), hub.Cursor{})
		if err != nil {
			t.Fatal(err)
		}
		testutil.Equal(t, "events published by refused messages", 0, len(evs))
	}
}

// TestServerAsksForAuth: ahead of a token's expiry the server sends AUTH;
// a client that answers with a new token keeps its connection (CONNECTED,
// same id) and is not disconnected at the old token's expiry; one that
// does not is sent DISCONNECTED 40142 at expiry.
func TestServerAsksForAuth(t *testing.T) {
	t.Parallel()
	n := startNode(t, startHub(t), ablyrt.Config{})
	keys, err := auth.ParseAPIKeys(testKey, "")
	if err != nil {
		t.Fatal(err)
	}
	token := func(ttl time.Duration) string {
		tok, err := auth.AblyTokens{Keys: keys, Now: time.Now}.Issue(auth.AblyTokenClaims{KeyName: keyName,
			Issued: time.Now().UnixMilli(), Expires: time.Now().Add(ttl).UnixMilli(), Capability: `{"*":["*"]}`})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, f := range wireFormats {
		w := dial(t, n, f, url.Values{"access_token": {token(800 * time.Millisecond)}})
		id := w.expect(ablyproto.ActionConnected).ConnectionID
		w.expect(ablyproto.ActionAuth)
		w.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionAuth, Auth: &ablyproto.AuthDetails{AccessToken: token(time.Hour)}})
		testutil.Equal(t, "same connection after AUTH", id, w.expect(ablyproto.ActionConnected).ConnectionID)
		// Past the old expiry the connection still answers.
		time.Sleep(time.Second)
		w.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionHeartbeat, ID: "still-there"})
		testutil.Equal(t, "alive after the old expiry", "still-there", w.expect(ablyproto.ActionHeartbeat).ID)

		lazy := dial(t, n, f, url.Values{"access_token": {token(400 * time.Millisecond)}})
		lazy.expect(ablyproto.ActionConnected)
		lazy.expect(ablyproto.ActionAuth)
		d := lazy.expect(ablyproto.ActionDisconnected)
		testutil.Equal(t, "expired", 40142, d.Error.Code)
		testutil.Equal(t, "status", 401, d.Error.StatusCode)
	}
}
