package server_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ably/ably-go/ably"

	"github.com/handoff-health/handoff/internal/testutil"
)

// ablyJWT signs an Ably JWT with the test API key, as an integrator's auth
// server does for Ably.
func ablyJWT(t *testing.T, capability, clientID string, ttl time.Duration) string {
	t.Helper()
	h, _ := json.Marshal(map[string]string{"typ": "JWT", "alg": "HS256", "kid": apiKeyName})
	now := time.Now().Unix()
	c, _ := json.Marshal(map[string]any{"iat": now, "exp": now + int64(ttl/time.Second),
		"x-ably-capability": capability, "x-ably-clientId": clientID})
	signed := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	m := hmac.New(sha256.New, []byte(apiKeySecret))
	m.Write([]byte(signed))
	return signed + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// TestAblyJWTWithSDK: an Ably JWT from the integrator's own auth server is
// a token to ably-go unchanged, over REST (Bearer) and realtime
// (access_token): its capability and clientId apply, and one signed with
// the wrong secret is refused with a token error.
func TestAblyJWTWithSDK(t *testing.T) {
	t.Parallel()
	n := startNode(t, devConfig(t))
	jwt := n.devToken()
	s := n.createSession(jwt, "enc-ably-jwt")
	token := ablyJWT(t, `{"`+s.Channel+`":["publish","subscribe","history"]}`, "pms-1", 10*time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	for _, binary := range []bool{false, true} {
		rest, err := ably.NewREST(ably.WithToken(token), ably.WithEndpoint("127.0.0.1"), ably.WithPort(n.port),
			ably.WithTLS(false), ably.WithUseBinaryProtocol(binary), ably.WithLogLevel(ably.LogNone))
		if err != nil {
			t.Fatal(err)
		}
		if err := rest.Channels.Get(s.Channel).Publish(ctx, "integrator.jwt", "rest"); err != nil {
			t.Fatalf("REST publish with an Ably JWT (binary %v): %v", binary, err)
		}
		err = rest.Channels.Get("session:elsewhere").Publish(ctx, "integrator.jwt", "x")
		var ae *ably.ErrorInfo
		if !errors.As(err, &ae) || ae.Code != 40160 {
			t.Errorf("REST publish outside the JWT's capability (binary %v): %v, want 40160", binary, err)
		}
	}

	rt, err := ably.NewRealtime(ably.WithToken(token), ably.WithEndpoint("127.0.0.1"), ably.WithPort(n.port),
		ably.WithTLS(false), ably.WithLogLevel(ably.LogNone))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	var mu sync.Mutex
	var got []*ably.Message
	ch := rt.Channels.Get(s.Channel)
	if _, err := ch.SubscribeAll(ctx, func(m *ably.Message) {
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	}); err != nil {
		t.Fatalf("realtime attach with an Ably JWT: %v", err)
	}
	testutil.Check(t, "clientId from x-ably-clientId", "pms-1", rt.Auth.ClientID())
	if err := ch.Publish(ctx, "integrator.jwt", "realtime"); err != nil {
		t.Fatalf("realtime publish with an Ably JWT: %v", err)
	}
	testutil.Eventually(t, "the realtime publish echoed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 1
	})
	other := rt.Channels.Get("session:elsewhere")
	if err := other.Attach(ctx); err == nil {
		t.Error("attach outside the JWT's capability succeeded")
	}

	forged := ablyJWT(t, `{"*":["*"]}`, "", time.Minute)
	forged = forged[:len(forged)-4] + "AAAA"
	bad, err := ably.NewREST(ably.WithToken(forged), ably.WithEndpoint("127.0.0.1"), ably.WithPort(n.port),
		ably.WithTLS(false), ably.WithUseBinaryProtocol(false), ably.WithLogLevel(ably.LogNone))
	if err != nil {
		t.Fatal(err)
	}
	err = bad.Channels.Get(s.Channel).Publish(ctx, "integrator.jwt", "x")
	var ae *ably.ErrorInfo
	if !errors.As(err, &ae) || ae.StatusCode != 401 || ae.Code < 40140 || ae.Code > 40149 {
		t.Errorf("a forged JWT: %v, want a 401 token error", err)
	}
}
