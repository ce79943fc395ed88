package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/ably/ably-go/ably"

	"github.com/handoff-health/handoff/client"
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
	next(t, desktop, client.KindSubscribed)

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
		ev := nextEvent(t, desktop, s.Channel)
		if ev.Type != want.typ || !jsonEqual(ev.Data, want.data) {
			t.Fatalf("event %d: %s %s, want %s %s", i, ev.Type, ev.Data, want.typ, want.data)
		}
		if res[i].Serial == nil || *res[i].Serial != ev.ID {
			t.Errorf("event %d: serial %v, cursor %s", i, res[i].Serial, ev.ID)
		}
	}

	t.Run("bad key", func(t *testing.T) {
		for _, key := range []string{apiKeyName + ":" + apiKeySecret + "x", "ghost:" + apiKeySecret} {
			err := n.ablyREST(t, key).Channels.Get(s.Channel).Publish(context.Background(), "x", "y")
			var ae *ably.ErrorInfo
			if !errors.As(err, &ae) || ae.StatusCode != http.StatusUnauthorized {
				t.Errorf("key %s…: err = %v, want a 401", key[:5], err)
			}
		}
		r := n.do("POST", "/channels/"+s.Channel+"/messages", "", `{"name":"x"}`)
		if r.status != http.StatusUnauthorized || r.errCode() != "unauthorized" || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("no credentials: %d %s", r.status, r.body)
		}
	})

	t.Run("no keys configured accepts none", func(t *testing.T) {
		cfg := devConfig(t)
		cfg.APIKeys = ""
		other := startNode(t, cfg)
		err := other.ablyREST(t, apiKeys).Channels.Get("session:x").Publish(context.Background(), "x", "y")
		var ae *ably.ErrorInfo
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusUnauthorized {
			t.Errorf("err = %v, want a 401", err)
		}
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
