package realtime

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/httpx"
	"github.com/handoff-health/handoff/internal/testutil"
	"github.com/handoff-health/handoff/presence"
	"github.com/handoff-health/handoff/protocol"
)

// phoneTokenA is the mobile token of the one phone the test servers know:
// a phone of session "a".
const phoneTokenA = "phone-token-a"

// phoneGrants answers Config.Phone as capture does: one phone, on
// session:a; every other token is unknown.
func phoneGrants(_ context.Context, tok string) (PhoneGrant, error) {
	if tok != phoneTokenA {
		return PhoneGrant{}, ErrPhoneUnknown
	}
	return PhoneGrant{Channel: "session:a", ClientID: "phone:0a1b2c3d4e5f", Expires: time.Now().Add(time.Hour)}, nil
}

// presenceNode starts a node with a memory presence registry of grace.
func presenceNode(t *testing.T, grace time.Duration, authorize func(context.Context, auth.Claims, string) error) (*node, *auth.Verifier) {
	t.Helper()
	reg := presence.NewMemory(presence.MemoryConfig{Grace: grace, SweepInterval: 20 * time.Millisecond})
	t.Cleanup(reg.Stop)
	v := newVerifier(t)
	return startNode(t, memoryHub(t), v, Config{Presence: reg, Phone: phoneGrants, Authorize: authorize}), v
}

// ignoreTS compares presence members without their timestamps, which the
// registry sets.
var ignoreTS = cmpopts.IgnoreFields(protocol.PresenceMember{}, "TS")

// watch subscribes r to channel with presence and returns the members
// the subscribed frame lists.
func (r *raw) watch(channel string) []protocol.PresenceMember {
	r.t.Helper()
	r.send(map[string]any{"type": "subscribe", "id": "w", "channel": channel, "presence": true})
	f := r.next()
	if f.Type != protocol.FrameSubscribed || f.Presence == nil {
		r.t.Fatalf("reply to subscribe with presence: %+v, want subscribed with a presence list", f)
	}
	return f.Presence
}

// presenceFrame is the FramePresence a watcher of channel expects.
func presenceFrame(channel string, action protocol.PresenceAction, clientID, connID, data string) frame {
	m := &protocol.PresenceMember{ClientID: clientID, ConnectionID: connID}
	if data != "" {
		m.Data = json.RawMessage(data)
	}
	return frame{Type: protocol.FramePresence, Channel: channel, Action: action, Member: m}
}

func TestPresencePhoneEntersUpdatesLeaves(t *testing.T) {
	t.Parallel()
	n, v := presenceNode(t, time.Hour, nil)
	desk := connect(t, n.url, issue(t, v, "fac1", "gp1", time.Hour))
	testutil.Equal(t, "members before anyone entered", []protocol.PresenceMember{}, desk.watch("session:a"))

	phone := dialRaw(t, n.url, bearer(phoneTokenA))
	hello := phone.next()
	if hello.Type != protocol.FrameConnected {
		t.Fatalf("phone's first frame %q, want connected", hello.Type)
	}
	phone.send(map[string]any{"type": "presence", "id": 1, "channel": "session:a", "action": "enter", "data": map[string]string{"device": "phone"}})
	testutil.Equal(t, "ack", frame{Type: protocol.FrameAck, Ref: json.RawMessage("1"), Channel: "session:a"}, phone.next())
	testutil.Equal(t, "enter seen by the desktop",
		presenceFrame("session:a", protocol.PresenceEnter, "phone:0a1b2c3d4e5f", hello.ConnectionID, `{"device":"phone"}`),
		desk.next(), ignoreTS)

	late := connect(t, n.url, issue(t, v, "fac1", "gp2", time.Hour))
	testutil.Equal(t, "members listed to a later watcher",
		[]protocol.PresenceMember{{ClientID: "phone:0a1b2c3d4e5f", ConnectionID: hello.ConnectionID, Data: json.RawMessage(`{"device":"phone"}`)}},
		late.watch("session:a"), ignoreTS)

	phone.send(map[string]any{"type": "presence", "id": 2, "channel": "session:a", "action": "update", "data": "busy"})
	testutil.Equal(t, "ack", frame{Type: protocol.FrameAck, Ref: json.RawMessage("2"), Channel: "session:a"}, phone.next())
	want := presenceFrame("session:a", protocol.PresenceUpdate, "phone:0a1b2c3d4e5f", hello.ConnectionID, `"busy"`)
	testutil.Equal(t, "update seen by the desktop", want, desk.next(), ignoreTS)
	testutil.Equal(t, "update seen by the later watcher", want, late.next(), ignoreTS)

	phone.send(map[string]any{"type": "presence", "id": 3, "channel": "session:a", "action": "leave"})
	testutil.Equal(t, "ack", frame{Type: protocol.FrameAck, Ref: json.RawMessage("3"), Channel: "session:a"}, phone.next())
	got := desk.next()
	testutil.Equal(t, "leave seen by the desktop", protocol.PresenceLeave, got.Action)
	testutil.Equal(t, "leave names the phone", "phone:0a1b2c3d4e5f", got.Member.ClientID)
	if !got.Member.TS.After(time.Now().Add(-time.Minute)) {
		t.Errorf("member ts %v is not a recent time", got.Member.TS)
	}

	// A second leave is done too (nothing to remove), and nobody hears it.
	phone.send(map[string]any{"type": "presence", "id": 4, "channel": "session:a", "action": "leave"})
	testutil.Equal(t, "ack of a leave of nobody", frame{Type: protocol.FrameAck, Ref: json.RawMessage("4"), Channel: "session:a"}, phone.next())
	desk.send(map[string]any{"type": "ping", "id": "p"})
	testutil.Equal(t, "nothing before the pong", frame{Type: protocol.FramePong, Ref: json.RawMessage(`"p"`)}, desk.next())
}

// TestPresenceCloseLeavesAtOnce: a socket closed with a close frame (the
// phone page going away) leaves at once, although the grace is an hour.
func TestPresenceCloseLeavesAtOnce(t *testing.T) {
	t.Parallel()
	n, v := presenceNode(t, time.Hour, nil)
	desk := connect(t, n.url, issue(t, v, "fac1", "gp1", time.Hour))
	desk.watch("session:a")
	phone := connect(t, n.url, phoneTokenA)
	phone.send(map[string]any{"type": "presence", "channel": "session:a", "action": "enter"})
	if f := phone.next(); f.Type != protocol.FrameAck {
		t.Fatalf("reply to enter: %+v", f)
	}
	if f := desk.next(); f.Action != protocol.PresenceEnter {
		t.Fatalf("desktop saw %+v, want the enter", f)
	}
	if err := phone.ws.Close(websocket.StatusGoingAway, "page hidden"); err != nil {
		t.Fatal(err)
	}
	f := desk.next()
	testutil.Equal(t, "synthesized leave after the close", protocol.PresenceLeave, f.Action)
	testutil.Equal(t, "leave names the phone", "phone:0a1b2c3d4e5f", f.Member.ClientID)
}

// TestPresenceDropKeepsMemberForGrace: a socket that drops without a close
// frame keeps its member (the phone may be back in a moment, on a new
// socket), and the member leaves once the grace has passed.
func TestPresenceDropKeepsMemberForGrace(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		grace time.Duration
	}{{"grace not over", time.Hour}, {"grace over", 300 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n, v := presenceNode(t, tc.grace, nil)
			phone := connect(t, n.url, phoneTokenA)
			phone.send(map[string]any{"type": "presence", "channel": "session:a", "action": "enter"})
			if f := phone.next(); f.Type != protocol.FrameAck {
				t.Fatalf("reply to enter: %+v", f)
			}
			_ = phone.ws.CloseNow() // no close frame: a dropped network
			testutil.Eventually(t, "the server has let the dropped socket go", func() bool { return countConns(n) == 0 })

			desk := connect(t, n.url, issue(t, v, "fac1", "gp1", time.Hour))
			members := desk.watch("session:a")
			if tc.grace == time.Hour {
				testutil.Equal(t, "members after the drop", 1, len(members))
				return
			}
			if len(members) == 1 {
				f := desk.next() // the leave when the grace ends
				testutil.Equal(t, "leave after the grace", protocol.PresenceLeave, f.Action)
			}
			late := connect(t, n.url, issue(t, v, "fac1", "gp2", time.Hour))
			testutil.Equal(t, "members after the grace", []protocol.PresenceMember{}, late.watch("session:a"))
		})
	}
}

// TestPresenceShutdownDetaches: a node that shuts down (1001) leaves its
// sockets' members for the grace, so the phone reconnecting to another
// node does not flicker "disconnected" on the desktop.
func TestPresenceShutdownDetaches(t *testing.T) {
	t.Parallel()
	reg := presence.NewMemory(presence.MemoryConfig{Grace: time.Hour})
	t.Cleanup(reg.Stop)
	v := newVerifier(t)
	h := memoryHub(t)
	a := startNode(t, h, v, Config{Presence: reg, Phone: phoneGrants})
	b := startNode(t, h, v, Config{Presence: reg, Phone: phoneGrants})
	phone := connect(t, a.url, phoneTokenA)
	phone.send(map[string]any{"type": "presence", "channel": "session:a", "action": "enter"})
	if f := phone.next(); f.Type != protocol.FrameAck {
		t.Fatalf("reply to enter: %+v", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.srv.Shutdown(ctx) }()
	phone.expectClose(CloseGoingAway) // reading answers the close handshake
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	desk := connect(t, b.url, issue(t, v, "fac1", "gp1", time.Hour))
	testutil.Equal(t, "members after the phone's node shut down", 1, len(desk.watch("session:a")))
}

func TestPresenceRefusals(t *testing.T) {
	t.Parallel()
	// The desktop may use session:a only, as capture.Authorize decides.
	authorize := func(_ context.Context, _ auth.Claims, ch string) error {
		if ch != "session:a" {
			return &httpx.Error{Status: 404, Code: string(protocol.CodeNotFound), Message: "session not found"}
		}
		return nil
	}
	n, v := presenceNode(t, time.Hour, authorize)
	desk := connect(t, n.url, issue(t, v, "fac1", "gp1", time.Hour))
	phone := connect(t, n.url, phoneTokenA)
	big := strings.Repeat("x", protocol.MaxPresenceDataBytes)
	for _, tc := range []struct {
		name string
		r    *raw
		op   map[string]any
		code protocol.ErrorCode
	}{
		{"desktop enters a channel it may not see", desk, map[string]any{"action": "enter", "channel": "session:b"}, protocol.CodeNotFound},
		{"desktop watches a channel it may not see", desk, map[string]any{"type": "subscribe", "presence": true, "channel": "session:b"}, protocol.CodeNotFound},
		{"phone enters another session", phone, map[string]any{"action": "enter", "channel": "session:b"}, protocol.CodeForbidden},
		{"phone subscribes to its own session", phone, map[string]any{"type": "subscribe", "channel": "session:a"}, protocol.CodeForbidden},
		{"no action", desk, map[string]any{"channel": "session:a"}, protocol.CodeInvalidFrame},
		{"unknown action", desk, map[string]any{"action": "present", "channel": "session:a"}, protocol.CodeInvalidFrame},
		{"data too large", desk, map[string]any{"action": "enter", "channel": "session:a", "data": big}, protocol.CodeInvalidFrame},
		{"bad channel", desk, map[string]any{"action": "enter", "channel": "[filter]x"}, protocol.CodeBadChannel},
	} {
		op := map[string]any{"type": "presence", "id": "x"}
		for k, val := range tc.op {
			op[k] = val
		}
		tc.r.send(op)
		f := tc.r.next()
		if !testutil.Check(t, tc.name, frame{Type: protocol.FrameError, Code: tc.code}, frame{Type: f.Type, Code: f.Code}) {
			t.Logf("%s: %+v", tc.name, f)
		}
	}
}

func TestPresencePhoneAuth(t *testing.T) {
	t.Parallel()
	n, v := presenceNode(t, time.Hour, nil)
	dialRaw(t, n.url, bearer("some-other-phone")).expectClose(CloseUnauthorized)

	phone := connect(t, n.url, phoneTokenA)
	phone.send(map[string]any{"type": "auth", "id": "r", "token": phoneTokenA})
	f := phone.next()
	testutil.Equal(t, "re-auth with its own token", protocol.FrameAuthenticated, f.Type)
	phone.send(map[string]any{"type": "auth", "token": issue(t, v, "fac1", "gp1", time.Hour)})
	phone.expectClose(CloseForbidden)
}

func TestPresenceDisabled(t *testing.T) {
	t.Parallel()
	v := newVerifier(t)
	n := startNode(t, memoryHub(t), v, Config{})
	desk := connect(t, n.url, issue(t, v, "fac1", "gp1", time.Hour))
	for _, op := range []map[string]any{
		{"type": "presence", "channel": "session:a", "action": "enter"},
		{"type": "subscribe", "channel": "session:a", "presence": true},
	} {
		desk.send(op)
		f := desk.next()
		testutil.Equal(t, "refusal", frame{Type: protocol.FrameError, Channel: "session:a", Code: protocol.CodeForbidden},
			frame{Type: f.Type, Channel: f.Channel, Code: f.Code})
	}
}

// TestPresencePhoneRevokedWhileConnected: a phone revoked while its
// socket is open ("wrong patient" said elsewhere, or its session gone) is
// closed with 4001 at the next check, and its member leaves at once,
// although the grace is an hour.
func TestPresencePhoneRevokedWhileConnected(t *testing.T) {
	t.Parallel()
	var revoked atomic.Bool
	grants := func(ctx context.Context, tok string) (PhoneGrant, error) {
		if revoked.Load() {
			return PhoneGrant{}, ErrPhoneUnknown
		}
		return phoneGrants(ctx, tok)
	}
	reg := presence.NewMemory(presence.MemoryConfig{Grace: time.Hour})
	t.Cleanup(reg.Stop)
	v := newVerifier(t)
	n := startNode(t, memoryHub(t), v, Config{Presence: reg, Phone: grants, PhoneRecheck: 50 * time.Millisecond})
	desk := connect(t, n.url, issue(t, v, "fac1", "gp1", time.Hour))
	desk.watch("session:a")
	phone := connect(t, n.url, phoneTokenA)
	phone.send(map[string]any{"type": "presence", "channel": "session:a", "action": "enter"})
	if f := phone.next(); f.Type != protocol.FrameAck {
		t.Fatalf("reply to enter: %+v", f)
	}
	if f := desk.next(); f.Action != protocol.PresenceEnter {
		t.Fatalf("desktop saw %+v, want the enter", f)
	}
	revoked.Store(true)
	phone.expectClose(CloseUnauthorized)
	testutil.Equal(t, "leave of the revoked phone", protocol.PresenceLeave, desk.next().Action)
}
