//go:build integration

package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ably/ably-go/ably"
	"github.com/google/uuid"

	"github.com/handoff-health/handoff/internal/testutil"
)

type realtimeResult struct {
	Connect struct {
		ID     string `json:"id"`
		HasKey bool   `json:"hasKey"`
		Error  *jsErr `json:"error"`
	} `json:"connect"`
	Attach struct {
		State string `json:"state"`
		Error *jsErr `json:"error"`
	} `json:"attach"`
	Publish  struct{ Error *jsErr } `json:"publish"`
	HubEvent struct{ Error *jsErr } `json:"hubEvent"`
	Rest     struct{ Error *jsErr } `json:"rest"`
	Drop     struct {
		SameConnection bool     `json:"sameConnection"`
		States         []string `json:"states"`
		Error          *jsErr   `json:"error"`
	} `json:"drop"`
	Ping struct {
		MS    *float64 `json:"ms"`
		Error *jsErr   `json:"error"`
	} `json:"ping"`
	History struct {
		Names []string `json:"names"`
		Error *jsErr   `json:"error"`
	} `json:"history"`
	Token struct {
		Calls          int      `json:"calls"`
		SameConnection bool     `json:"sameConnection"`
		Seen           []string `json:"seen"`
		Error          *jsErr   `json:"error"`
	} `json:"token"`
	BadKey struct {
		State  string `json:"state"`
		Reason *jsErr `json:"reason"`
		Error  *jsErr `json:"error"`
	} `json:"badKey"`
	Presence struct {
		Events      []jsPresence `json:"events"`
		During      []jsPresence `json:"during"`
		After       []jsPresence `json:"after"`
		BConnection string       `json:"bConnection"`
		Error       *jsErr       `json:"error"`
	} `json:"presence"`
	Close struct {
		State string `json:"state"`
		Error *jsErr `json:"error"`
	} `json:"close"`
	// Failed is set by the browser page when the scenarios threw
	// outside a step.
	Failed   string `json:"failed"`
	Received []struct {
		jsMsg
		ConnectionID string `json:"connectionId"`
	} `json:"received"`
}

// TestAblyJSRealtime: each released ably-js version (protocol v3 to v6),
// unmodified, in Node, over JSON and msgpack, uses a node's Ably realtime
// protocol: connect with a key, attach and subscribe, publish with ACK,
// a photo added through the capture API arriving as an Ably message, REST
// publishes seen live, a transport cut while REST publishes continue
// (every message once, in order, on the same connection), ping, history
// untilAttach, token expiry and renewal, a refused key and close.
func TestAblyJSRealtime(t *testing.T) {
	t.Parallel()
	n, jwt := startAblyJSNode(t)
	rest := n.ablyREST(t, ablyJSKey)
	for _, version := range testutil.AblyJSVersions {
		for _, format := range []string{"json", "msgpack"} {
			t.Run(version+"/"+format, func(t *testing.T) {
				t.Parallel()
				s := n.createSession(jwt, "enc-ablyjs-rt-"+version+"-"+format)
				mobile := n.claim(s.Token)
				proxy := testutil.StartProxy(t, fmt.Sprintf("127.0.0.1:%d", n.port))
				var got realtimeResult
				runAblyJS(t, proxy.Port(), "realtime", version, format, s.Channel, map[string]func(){
					"photo": func() { n.addImage(mobile, uuid.NewString(), testutil.JPEG(t, 7)) },
					"cut":   func() { proxy.Cut(); publishGap(t, rest, s.Channel) },
				}, &got)
				checkRealtime(t, got)
			})
		}
	}
}

func checkRealtime(t *testing.T, got realtimeResult) {
	t.Helper()
	if got.Failed != "" {
		t.Fatalf("the scenarios stopped: %s", got.Failed)
	}
	for name, e := range map[string]*jsErr{
		"connect": got.Connect.Error, "attach": got.Attach.Error, "publish": got.Publish.Error,
		"hubEvent": got.HubEvent.Error, "rest": got.Rest.Error, "drop": got.Drop.Error, "ping": got.Ping.Error,
		"history": got.History.Error, "token": got.Token.Error, "badKey": got.BadKey.Error, "presence": got.Presence.Error,
		"close": got.Close.Error,
	} {
		if e != nil {
			t.Errorf("%s: %+v", name, *e)
		}
	}
	if got.Connect.ID == "" || !got.Connect.HasKey {
		t.Errorf("connected without an id or a connection key: %+v", got.Connect)
	}
	testutil.Check(t, "channel state after subscribe", "attached", got.Attach.State)

	// Everything the first connection received, in order, each once.
	want := []string{"rt-1", "rt-2", "rt-3", "image.added", "rest-1", "gap-1", "gap-2", "gap-3", "gap-4", "gap-5", "token-1", "token-2"}
	var names []string
	ids := map[string]bool{}
	for _, m := range got.Received {
		if slices.Contains(want, m.Name) {
			names = append(names, m.Name)
		}
		if ids[m.ID] {
			t.Errorf("message %s (%s) received twice", m.ID, m.Name)
		}
		ids[m.ID] = true
		if m.ID == "" || m.Timestamp == 0 {
			t.Errorf("message %s without id or timestamp: %+v", m.Name, m)
		}
		if (m.Name == "rt-1" || m.Name == "rt-2") && m.ConnectionID != got.Connect.ID {
			t.Errorf("%s connectionId %q, want the publisher's %q", m.Name, m.ConnectionID, got.Connect.ID)
		}
		if m.Name == "rt-1" && !jsonEqual(m.Data, `{"n":1}`) {
			t.Errorf("rt-1 data %s, want the object", m.Data)
		}
	}
	testutil.Check(t, "messages received by the first connection", want, names)
	if !got.Drop.SameConnection {
		t.Errorf("after the cut the connection was not resumed (states %v)", got.Drop.States)
	}
	if !slices.Contains(got.Drop.States, "disconnected") && !slices.Contains(got.Drop.States, "connecting") {
		t.Errorf("the cut went unnoticed: states %v", got.Drop.States)
	}
	if got.Ping.MS == nil {
		t.Error("ping returned no round trip time")
	}
	// untilAttach: what the channel held at its attach serial, oldest
	// first. ably-js 2.28 keeps the first attach's serial (the phone's claim
	// only); 2.12 to 2.19 take the serial of the re-attach after the cut.
	// Either way it is the channel's history up to a point, in order.
	all := append([]string{"mobile.connected"}, want...)
	if h := got.History.Names; len(h) == 0 || len(h) > len(all) || !slices.Equal(h, all[:len(h)]) {
		t.Errorf("history untilAttach forwards %v, want a prefix of %v from the claim on", h, all)
	}
	if got.Token.Calls < 2 || !slices.Contains(got.Token.Seen, "token-2") {
		t.Errorf("token renewal: authCallback called %d times, seen %v", got.Token.Calls, got.Token.Seen)
	}
	if !got.Token.SameConnection {
		t.Error("token renewal: the connection was replaced, not kept")
	}
	if r := got.BadKey.Reason; got.BadKey.State != "failed" || r == nil || r.Code != 40101 {
		t.Errorf("wrong secret: state %s, reason %+v; want failed with 40101", got.BadKey.State, r)
	}
	checkPresence(t, got)
	testutil.Check(t, "state after close", "closed", got.Close.State)
}

// jsPresence is a PresenceMessage as the scenarios report it.
type jsPresence struct {
	Action       string          `json:"action"`
	ClientID     string          `json:"clientId"`
	ConnectionID string          `json:"connectionId"`
	ID           string          `json:"id"`
	Data         json.RawMessage `json:"data"`
}

// checkPresence: ably-js saw b's enter (an object, decoded), update,
// leave, second enter and the LEAVE the server synthesized when b closed
// (its id not b's connection's, so ably-js orders it by time); get
// listed b while present and nobody after.
func checkPresence(t *testing.T, got realtimeResult) {
	t.Helper()
	p := got.Presence
	var actions []string
	for _, e := range p.Events {
		if e.ClientID == "js-b" {
			actions = append(actions, e.Action)
		}
	}
	testutil.Check(t, "b's presence events", []string{"enter", "update", "leave", "enter", "leave"}, actions)
	if len(p.Events) > 0 && !jsonEqual(p.Events[0].Data, `{"role":"phone"}`) {
		t.Errorf("enter data %s, want the object", p.Events[0].Data)
	}
	if len(p.Events) > 0 && (p.Events[0].ConnectionID != p.BConnection || !strings.HasPrefix(p.Events[0].ID, p.BConnection+":")) {
		t.Errorf("enter connectionId %q id %q, want b's connection %q", p.Events[0].ConnectionID, p.Events[0].ID, p.BConnection)
	}
	if last := len(p.Events) - 1; last >= 0 && strings.HasPrefix(p.Events[last].ID, p.BConnection) {
		t.Errorf("the synthesized leave's id %q starts with b's connection id", p.Events[last].ID)
	}
	if len(p.During) != 1 || p.During[0].ClientID != "js-b" || p.During[0].Action != "present" {
		t.Errorf("members while b is present: %+v", p.During)
	}
	testutil.Check(t, "members after b closed", 0, len(p.After))
}

// publishGap publishes gap-1..gap-5 through REST, straight to the node,
// while a client's transport is cut.
func publishGap(t *testing.T, rest *ably.REST, channel string) {
	t.Helper()
	for i := 1; i <= 5; i++ {
		if err := rest.Channels.Get(channel).Publish(context.Background(), fmt.Sprintf("gap-%d", i), fmt.Sprintf("published while cut, %d", i)); err != nil {
			t.Errorf("REST publish gap-%d: %v", i, err)
		}
	}
}
