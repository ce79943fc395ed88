package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ably/ably-go/ably"
	"github.com/google/uuid"

	"github.com/handoff-health/handoff/internal/testutil"
)

// TestWidgetTokensOnHandoff: the seed's widget flow with handoff as its
// Ably. The desktop asks POST /api/medtech/session/ably-token for a
// TokenRequest (signed with --widget-key), gives it to an unmodified Ably
// SDK through authCallback, and the SDK exchanges it with handoff itself,
// attaches to the session's channel and sees the phone's photo arrive.
// The token reaches that one channel, to subscribe only.
func TestWidgetTokensOnHandoff(t *testing.T) {
	t.Parallel()
	cfg := devConfig(t)
	cfg.APIKeys = apiKeys + ",handoff.widget:widget-secret-0123456789"
	cfg.WidgetKey = "handoff.widget"
	n := startNode(t, cfg)
	jwt := n.devToken()
	s := n.createSession(jwt, "enc-widget")
	other := n.createSession(jwt, "enc-widget-other")

	var calls int
	var mu sync.Mutex
	authCallback := func(ctx context.Context, _ ably.TokenParams) (ably.Tokener, error) {
		mu.Lock()
		calls++
		mu.Unlock()
		r := n.do("POST", "/api/medtech/session/ably-token", jwt, map[string]string{"sessionId": s.SessionID})
		if r.status != http.StatusOK {
			t.Errorf("ably-token: %d %s", r.status, r.body)
		}
		var tr ably.TokenRequest
		if err := json.Unmarshal(r.body, &tr); err != nil {
			return nil, err
		}
		return tr, nil
	}
	rt, err := ably.NewRealtime(ably.WithAuthCallback(authCallback), ably.WithEndpoint("127.0.0.1"), ably.WithPort(n.port),
		ably.WithTLS(false), ably.WithLogLevel(ably.LogNone))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var names []string
	ch := rt.Channels.Get(s.Channel)
	if _, err := ch.SubscribeAll(ctx, func(m *ably.Message) {
		mu.Lock()
		names = append(names, m.Name)
		mu.Unlock()
	}); err != nil {
		t.Fatalf("attach with the widget's token: %v", err)
	}
	mobile := n.claim(s.Token)
	n.addImage(mobile, uuid.NewString(), testutil.JPEG(t, 3))
	testutil.Eventually(t, "the photo on the widget's Ably channel", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, name := range names {
			if name == "image.added" {
				return true
			}
		}
		return false
	})
	mu.Lock()
	asked := calls
	mu.Unlock()
	if asked < 1 {
		t.Error("the SDK never asked the endpoint for a TokenRequest")
	}
	if err := ch.Publish(ctx, "note", "x"); err == nil {
		t.Error("the widget's token published: it is for subscribing only")
	}
	if err := rt.Channels.Get(other.Channel).Attach(ctx); err == nil {
		t.Error("the widget's token attached another session's channel")
	}

	// Another facility's desktop gets no TokenRequest for this session.
	otherDesk := startNode(t, cfg).devToken()
	r := n.do("POST", "/api/medtech/session/ably-token", otherDesk, map[string]string{"sessionId": s.SessionID})
	if r.status == http.StatusOK {
		t.Error("a JWT from another node's dev secret got a TokenRequest")
	}
}
