package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ably/ably-go/ably"

	"github.com/handoff-health/handoff/client"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestPublishAPI: code written for Ably (the real ably-go REST client)
// publishes through a node with a key from --api-keys, and a desktop's
// realtime socket on that node receives the event.
func TestPublishAPI(t *testing.T) {
	t.Parallel()
	n := startNode(t, devConfig(t))
	jwt := n.devToken()
	s := n.createSession(jwt, "enc-publish")

	desktop := n.realtime(t, jwt)
	if err := desktop.Subscribe(s.Channel, ""); err != nil {
		t.Fatal(err)
	}
	testutil.Next(t, desktop, client.KindSubscribed)

	ch := n.ablyREST(t, apiKeys).Channels.Get(s.Channel)
	res, err := ch.PublishMultipleWithResult(context.Background(), []*ably.Message{
		{Name: "integrator.note", Data: map[string]any{"text": "from the PMS", "n": 1}},
		{Name: "integrator.ping", Data: "two"},
	})
	if err != nil {
		t.Fatalf("ably-go publish: %v", err)
	}
	for i, want := range []struct{ typ, data string }{
		{"integrator.note", `{"n":1,"text":"from the PMS"}`},
		{"integrator.ping", `"two"`},
	} {
		ev := testutil.NextEvent(t, desktop, s.Channel)
		testutil.Equal(t, fmt.Sprintf("event %d type", i), want.typ, ev.Type)
		if !jsonEqual(ev.Data, want.data) {
			t.Fatalf("event %d data: %s, want %s", i, ev.Data, want.data)
		}
		if res[i].Serial == nil {
			t.Errorf("event %d: no serial", i)
		} else {
			testutil.Check(t, fmt.Sprintf("event %d serial = cursor", i), *res[i].Serial, ev.ID)
		}
	}

	t.Run("bad key", func(t *testing.T) {
		for _, key := range []string{apiKeyName + ":" + apiKeySecret + "x", "ghost:" + apiKeySecret} {
			err := n.ablyREST(t, key).Channels.Get(s.Channel).Publish(context.Background(), "x", "y")
			var ae *ably.ErrorInfo
			if !errors.As(err, &ae) {
				t.Errorf("key %s…: err = %v, want an Ably error", key[:5], err)
				continue
			}
			testutil.Check(t, "status for key "+key[:5]+"…", http.StatusUnauthorized, ae.StatusCode)
		}
		r := n.do("POST", "/channels/"+s.Channel+"/messages", "", `{"name":"x"}`)
		testutil.Check(t, "status without credentials", http.StatusUnauthorized, r.status)
		testutil.Check(t, "error code without credentials", 40100, r.ablyCode())
		if h := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Basic") {
			t.Errorf("WWW-Authenticate %q, want Basic", h)
		}
	})

	t.Run("no keys configured accepts none", func(t *testing.T) {
		cfg := devConfig(t)
		cfg.APIKeys = ""
		other := startNode(t, cfg)
		err := other.ablyREST(t, apiKeys).Channels.Get("session:x").Publish(context.Background(), "x", "y")
		var ae *ably.ErrorInfo
		if !errors.As(err, &ae) {
			t.Fatalf("err = %v, want an Ably error", err)
		}
		testutil.Check(t, "status", http.StatusUnauthorized, ae.StatusCode)
	})
}

func jsonEqual(got []byte, want string) bool {
	var a, b any
	return json.Unmarshal(got, &a) == nil && json.Unmarshal([]byte(want), &b) == nil && equalJSON(a, b)
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// TestNodeAblyREST: a node serves the rest of Ably's REST surface to
// ably-go: the time, history, and a token from requestToken.
func TestNodeAblyREST(t *testing.T) {
	t.Parallel()
	n := startNode(t, devConfig(t))
	ctx := context.Background()
	rest := n.ablyREST(t, apiKeys)
	if _, err := rest.Time(ctx); err != nil {
		t.Fatalf("ably-go Time: %v", err)
	}
	ch := rest.Channels.Get("integrator:h")
	for _, name := range []string{"a", "b", "c"} {
		if err := ch.Publish(ctx, name, map[string]any{"name": name}); err != nil {
			t.Fatal(err)
		}
	}
	td, err := rest.Auth.RequestToken(ctx, &ably.TokenParams{Capability: `{"integrator:*":["history"]}`})
	if err != nil {
		t.Fatalf("ably-go RequestToken: %v", err)
	}
	reader, err := ably.NewREST(ably.WithTokenDetails(td), ably.WithEndpoint("127.0.0.1"), ably.WithPort(n.port),
		ably.WithTLS(false), ably.WithUseBinaryProtocol(false), ably.WithLogHandler(ablyLog{t}))
	if err != nil {
		t.Fatal(err)
	}
	items, err := reader.Channels.Get("integrator:h").History().Items(ctx)
	if err != nil {
		t.Fatalf("ably-go History with a token: %v", err)
	}
	var names []string
	for items.Next(ctx) {
		m := items.Item()
		testutil.Equal[any](t, "data of "+m.Name, map[string]any{"name": m.Name}, m.Data)
		names = append(names, m.Name)
	}
	testutil.Equal(t, "history, newest first", []string{"c", "b", "a"}, names)
	err = reader.Channels.Get("integrator:h").Publish(ctx, "x", "y")
	var ae *ably.ErrorInfo
	if !errors.As(err, &ae) {
		t.Fatalf("publish with a history-only token: err = %v, want an Ably error", err)
	}
	testutil.Check(t, "publish with a history-only token: code", ably.ErrorCode(40160), ae.Code)
}
