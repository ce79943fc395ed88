package client_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/handoff-health/handoff/client"
	"github.com/handoff-health/handoff/internal/realtime"
	"github.com/handoff-health/handoff/internal/testutil"
	"github.com/handoff-health/handoff/presence"
	"github.com/handoff-health/handoff/protocol"
)

// TestPresenceEnterAndReenter: a client present on a channel is seen by a
// watcher; when its socket is cut it reconnects and enters again on its
// new socket, and LeavePresence ends it.
func TestPresenceEnterAndReenter(t *testing.T) {
	t.Parallel()
	reg := presence.NewMemory(presence.MemoryConfig{Grace: time.Hour})
	t.Cleanup(reg.Stop)
	s := startServer(t, realtime.Config{Presence: reg})
	token := func(context.Context) (string, error) { return s.token(t, "f", time.Hour), nil }

	watcher := newClient(t, s.url, token)
	if err := watcher.SubscribeWithPresence("session:p", ""); err != nil {
		t.Fatal(err)
	}
	run(t, watcher)
	sub := testutil.Next(t, watcher, client.KindSubscribed)
	testutil.Equal(t, "members before anyone entered", []protocol.PresenceMember{}, sub.Members)

	u, err := url.Parse(s.url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testutil.StartProxy(t, u.Host)
	member := newClient(t, "ws://127.0.0.1:"+strconv.Itoa(proxy.Port())+realtime.Path, token)
	member.EnterPresence("session:p", json.RawMessage(`{"device":"phone"}`))
	run(t, member)

	first := testutil.Next(t, watcher, client.KindPresence)
	type seen struct{ Type, ClientID, Data string }
	testutil.Equal(t, "enter", seen{"enter", "desktop:gp", `{"device":"phone"}`}, seen{first.Type, first.ClientID, string(first.Data)})

	proxy.Cut()
	again := testutil.Next(t, watcher, client.KindPresence)
	testutil.Equal(t, "enter again after the cut", seen{"enter", "desktop:gp", `{"device":"phone"}`}, seen{again.Type, again.ClientID, string(again.Data)})
	if again.ConnectionID == first.ConnectionID {
		t.Errorf("the re-enter came from the same connection %q", first.ConnectionID)
	}

	member.LeavePresence("session:p")
	left := testutil.Next(t, watcher, client.KindPresence)
	testutil.Equal(t, "leave of the new socket's member", seen{"leave", again.ConnectionID, ""}, seen{left.Type, left.ConnectionID, ""})
}
