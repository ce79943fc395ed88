package ablyrt_test

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ably/ably-go/ably"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/internal/ablyrt"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestAblyGoReauthNarrows (RTC8a1): an in-band AUTH whose token narrows
// the capability fails, with a channel ERROR 40160, every attached
// channel the new capability no longer allows, and nothing more reaches
// it; a channel still allowed stays attached and keeps delivering, and
// the connection keeps its id. A later AUTH that widens the capability
// lets the failed channel attach again.
func TestAblyGoReauthNarrows(t *testing.T) {
	t.Parallel()
	n := startNode(t, startHub(t), ablyrt.Config{})
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			kept, lost := "session:kept-"+f.name, "session:lost-"+f.name
			rest := restJSON(t, n.port)
			var calls atomic.Int32
			c := realtime(t, n.port, f.binary, ably.WithAuthCallback(func(ctx context.Context, p ably.TokenParams) (ably.Tokener, error) {
				calls.Add(1)
				return rest.Auth.RequestToken(ctx, &ably.TokenParams{Capability: p.Capability})
			}), ably.WithDefaultTokenParams(ably.TokenParams{Capability: `{"*":["*"]}`}))
			keptCh, lostCh := c.Channels.Get(kept), c.Channels.Get(lost)
			keptIn, lostIn := subscribe(t, keptCh), subscribe(t, lostCh)
			id := c.Connection.ID()
			failed := make(chan ably.ChannelStateChange, 4)
			lostCh.On(ably.ChannelEventFailed, func(ch ably.ChannelStateChange) { failed <- ch })

			if _, err := c.Auth.Authorize(ctx(t), &ably.TokenParams{Capability: `{"` + kept + `":["subscribe"]}`}); err != nil {
				t.Fatalf("authorize: %v", err)
			}
			select {
			case ch := <-failed:
				var e *ably.ErrorInfo
				if !errors.As(error(ch.Reason), &e) || e.Code != 40160 {
					t.Fatalf("channel failed with %v, want 40160", ch.Reason)
				}
			case <-ctx(t).Done():
				t.Fatal("the narrowed-out channel did not fail")
			}
			testutil.Equal(t, "same connection", id, c.Connection.ID())
			if c.Connection.State() != ably.ConnectionStateConnected || keptCh.State() != ably.ChannelStateAttached {
				t.Fatalf("connection %v and kept channel %v, want connected and attached", c.Connection.State(), keptCh.State())
			}
			testutil.Equal(t, "callback calls", int32(2), calls.Load())

			pub := func(channel string, i int) {
				t.Helper()
				if err := rest.Channels.Get(channel).Publish(ctx(t), "m", strconv.Itoa(i)); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 3 {
				pub(lost, i)
				pub(kept, i)
			}
			// The kept channel's last message was published after the lost
			// channel's: had the lost channel still been delivering, its
			// messages would be in by then.
			testutil.Eventually(t, "the kept channel delivers", func() bool { return keptIn.len() >= 3 })
			testutil.Equal(t, "nothing on the failed channel", 0, lostIn.len())

			// Widened again, the channel attaches (a FAILED channel only
			// attaches when asked).
			if _, err := c.Auth.Authorize(ctx(t), &ably.TokenParams{Capability: `{"*":["*"]}`}); err != nil {
				t.Fatalf("authorize: %v", err)
			}
			if err := lostCh.Attach(ctx(t)); err != nil {
				t.Fatalf("attach after widening: %v", err)
			}
			pub(lost, 3)
			testutil.Eventually(t, "the re-attached channel delivers", func() bool { return lostIn.len() >= 1 })
			testutil.Equal(t, "only the new message", any("3"), lostIn.all()[0].Data)
		})
	}
}

// TestReauthFrames: frame by frame, a narrowing AUTH answers CONNECTED
// (same connectionId) and then a channel ERROR 40160 for each channel the
// capability no longer allows, a channel that only loses publish stays
// attached, an AUTH with a token for another clientId fails the
// connection with 40102, and one with a token the server never issued
// with 40101.
func TestReauthFrames(t *testing.T) {
	t.Parallel()
	n := startNode(t, startHub(t), ablyrt.Config{})
	keys, err := auth.ParseAPIKeys(testKey, "")
	if err != nil {
		t.Fatal(err)
	}
	token := func(clientID, capability string) string {
		tok, err := auth.AblyTokens{Keys: keys, Now: time.Now}.Issue(auth.AblyTokenClaims{KeyName: keyName, ClientID: clientID,
			Issued: time.Now().UnixMilli(), Expires: time.Now().Add(time.Hour).UnixMilli(), Capability: capability})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, f := range wireFormats {
		w := dial(t, n, f, url.Values{"access_token": {token("desk-1", `{"*":["*"]}`)}})
		id := w.expect(ablyproto.ActionConnected).ConnectionID
		for _, ch := range []string{"a", "b", "c"} {
			w.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionAttach, Channel: ch})
			w.expect(ablyproto.ActionAttached)
		}
		// a keeps everything, b keeps subscribe only, c goes.
		w.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionAuth,
			Auth: &ablyproto.AuthDetails{AccessToken: token("desk-1", `{"a":["*"],"b":["subscribe"]}`)}})
		testutil.Equal(t, "same connection", id, w.expect(ablyproto.ActionConnected).ConnectionID)
		e := w.expect(ablyproto.ActionError)
		testutil.Equal(t, "failed channel", "c", e.Channel)
		testutil.Equal(t, "code", 40160, e.Error.Code)
		testutil.Equal(t, "status", 401, e.Error.StatusCode)
		// b is still attached: a publish on it is NACKed on the capability,
		// and a ping answers (no further ERROR came before it).
		w.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionMessage, Channel: "b", MsgSerial: serialPtr(0),
			Messages: []ablyproto.RealtimeMessage{{Name: "n"}}})
		testutil.Equal(t, "publish on b", 40160, w.expect(ablyproto.ActionNack).Error.Code)
		w.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionHeartbeat, ID: "ping"})
		testutil.Equal(t, "no other ERROR", "ping", w.expect(ablyproto.ActionHeartbeat).ID)

		w.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionAuth,
			Auth: &ablyproto.AuthDetails{AccessToken: token("desk-2", `{"*":["*"]}`)}})
		e = w.expect(ablyproto.ActionError)
		testutil.Equal(t, "connection-level", "", e.Channel)
		testutil.Equal(t, "clientId mismatch", 40102, e.Error.Code)

		// A token the server never issued fails the connection with a
		// code outside the token-error range, so the SDK does not renew
		// and retry it (RTC8a2: the connection goes FAILED).
		w = dial(t, n, f, url.Values{"access_token": {token("", `{"*":["*"]}`)}})
		w.expect(ablyproto.ActionConnected)
		w.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionAuth, Auth: &ablyproto.AuthDetails{AccessToken: "made:up"}})
		e = w.expect(ablyproto.ActionError)
		testutil.Equal(t, "bad token code", 40101, e.Error.Code)
		testutil.Equal(t, "bad token status", 401, e.Error.StatusCode)
	}
}
