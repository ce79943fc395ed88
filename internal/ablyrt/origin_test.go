package ablyrt_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ably/ably-go/ably"

	"github.com/handoff-health/handoff/internal/ablyrt"
	"github.com/handoff-health/handoff/internal/testutil"
)

// origin is what an Ably reader learns about who published a message.
type origin struct {
	ID, ClientID, ConnectionID string
	Data                       any
}

func originsOf(msgs []*ably.Message) []origin {
	out := make([]origin, len(msgs))
	for i, m := range msgs {
		out[i] = origin{m.ID, m.ClientID, m.ConnectionID, m.Data}
	}
	return out
}

// history reads channel's history, oldest first, with ably-go's REST
// client in the given format.
func history(t *testing.T, port int, binary bool, channel string) []*ably.Message {
	t.Helper()
	rest, err := ably.NewREST(options(port, binary, ably.WithKey(testKey))...)
	if err != nil {
		t.Fatal(err)
	}
	pages, err := rest.Channels.Get(channel).History(ably.HistoryWithDirection(ably.Forwards)).Pages(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !pages.Next(ctx(t)) {
		t.Fatal(pages.Err())
	}
	return pages.Items()
}

// TestAblyGoRealtimeOrigin: a realtime publish reaches another connection
// with the publisher's connectionId and clientId and Ably's realtime id
// "<connectionId>:<msgSerial>:<index>", the same live, in REST history, and
// when replayed to a subscriber that was disconnected while it was
// published and resumed.
func TestAblyGoRealtimeOrigin(t *testing.T) {
	t.Parallel()
	n := startNode(t, startHub(t), ablyrt.Config{})
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			channel := "session:origin-" + f.name
			rest := restJSON(t, n.port)
			pub := realtime(t, n.port, f.binary, ably.WithClientID("desk-42"), ably.WithAuthCallback(func(ctx context.Context, _ ably.TokenParams) (ably.Tokener, error) {
				return rest.Auth.RequestToken(ctx, &ably.TokenParams{ClientID: "desk-42"})
			}))
			waitState(t, pub, ably.ConnectionStateConnected)
			addr := n.http.Listener.Addr().String()
			p := testutil.StartProxy(t, addr)
			sub := realtime(t, p.Port(), f.binary, ably.WithKey(testKey))
			got := subscribe(t, sub.Channels.Get(channel))
			waitState(t, sub, ably.ConnectionStateConnected)
			subID := sub.Connection.ID()
			pch := pub.Channels.Get(channel)
			publish := func(data string) {
				t.Helper()
				if err := pch.Publish(ctx(t), "note", data); err != nil {
					t.Fatal(err)
				}
			}
			publish("live-0")
			publish("live-1")
			testutil.Eventually(t, "the live messages", func() bool { return got.len() >= 2 })

			// The subscriber's transport drops and cannot come back (nothing
			// listens on port 1) until the third message is stored: it gets
			// that one by replay, when the resumed connection re-attaches.
			p.Retarget("127.0.0.1:1")
			p.Cut()
			testutil.Eventually(t, "the subscriber is disconnected", func() bool {
				return sub.Connection.State() != ably.ConnectionStateConnected
			})
			publish("replayed-2")
			p.Retarget(addr)
			testutil.Eventually(t, "the replayed message", func() bool { return got.len() >= 3 })
			waitState(t, sub, ably.ConnectionStateConnected)
			testutil.Equal(t, "the subscriber resumed its connection", subID, sub.Connection.ID())

			conn := pub.Connection.ID()
			want := []origin{
				{conn + ":0:0", "desk-42", conn, "live-0"},
				{conn + ":1:0", "desk-42", conn, "live-1"},
				{conn + ":2:0", "desk-42", conn, "replayed-2"},
			}
			testutil.Equal(t, "messages received live and replayed", want, originsOf(got.all()))
			testutil.Equal(t, "messages in history", want, originsOf(history(t, n.port, f.binary, channel)))
		})
	}
}

// TestAblyGoRESTOrigin: ably-go's idempotent REST ids ("<base>:<index>",
// one base per publish) and its clientId reach history and a realtime
// subscriber; REST messages have no connectionId.
func TestAblyGoRESTOrigin(t *testing.T) {
	t.Parallel()
	n := startNode(t, startHub(t), ablyrt.Config{})
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			channel := "session:rest-origin-" + f.name
			sub := realtime(t, n.port, f.binary, ably.WithKey(testKey))
			got := subscribe(t, sub.Channels.Get(channel))
			rest, err := ably.NewREST(options(n.port, f.binary, ably.WithKey(testKey), ably.WithClientID("desk-7"),
				ably.WithIdempotentRESTPublishing(true))...)
			if err != nil {
				t.Fatal(err)
			}
			ch := rest.Channels.Get(channel)
			if err := ch.PublishMultiple(ctx(t), []*ably.Message{{Name: "a", Data: "0"}, {Name: "b", Data: "1"}}); err != nil {
				t.Fatal(err)
			}
			if err := ch.Publish(ctx(t), "c", "2"); err != nil {
				t.Fatal(err)
			}
			if err := ch.PublishMultiple(ctx(t), []*ably.Message{{ID: "given-id:0", Name: "d", Data: "3"}}); err != nil {
				t.Fatal(err)
			}
			hist := history(t, n.port, f.binary, channel)
			if len(hist) != 4 {
				t.Fatalf("history has %d messages, want 4", len(hist))
			}
			base1, idx, _ := strings.Cut(hist[0].ID, ":")
			base2, _, _ := strings.Cut(hist[2].ID, ":")
			if base1 == "" || idx != "0" || base2 == "" || base2 == base1 {
				t.Fatalf("ids %q and %q are not ably-go's idempotent ids of two publishes", hist[0].ID, hist[2].ID)
			}
			want := []origin{
				{base1 + ":0", "desk-7", "", "0"},
				{base1 + ":1", "desk-7", "", "1"},
				{base2 + ":0", "desk-7", "", "2"},
				{"given-id:0", "desk-7", "", "3"},
			}
			testutil.Equal(t, "messages in history", want, originsOf(hist))
			testutil.Eventually(t, "the live messages", func() bool { return got.len() >= 4 })
			testutil.Equal(t, "messages received live", want, originsOf(got.all()))
		})
	}
}
