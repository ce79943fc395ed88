package publish

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ably/ably-go/ably"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestPublishOrigin: a REST message's event keeps its id and clientId by
// Ably's rules (the credentials' clientId wins, a message may repeat but
// not contradict it, the wildcard lets each message name its own) and no
// connectionId; bad ones refuse the request and publish nothing.
func TestPublishOrigin(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{})
	rest := r.ably(t, keyName+":"+keySecret)
	token := func(clientID string) string {
		td, err := rest.Auth.RequestToken(context.Background(), &ably.TokenParams{ClientID: clientID})
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + base64.StdEncoding.EncodeToString([]byte(td.Token))
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	desk9, wildcard := token("desk-9"), token("*")
	// An Ably JWT, as an integrator's auth server signs it with the key.
	jwtHead, _ := json.Marshal(map[string]string{"typ": "JWT", "alg": "HS256", "kid": keyName})
	jwtClaims, _ := json.Marshal(map[string]any{"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
		"x-ably-capability": `{"*":["*"]}`, "x-ably-clientId": "desk-jwt"})
	signed := base64.RawURLEncoding.EncodeToString(jwtHead) + "." + base64.RawURLEncoding.EncodeToString(jwtClaims)
	mac := hmac.New(sha256.New, []byte(keySecret))
	mac.Write([]byte(signed))
	jwt := "Bearer " + signed + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	type reply struct {
		Status, Code int
		Origin       hub.Origin
	}
	cases := []struct {
		name, authz, header, body string
		want                      reply
	}{
		{"key, no clientId", "", "", `{"name":"x","id":"base:0"}`, reply{201, 0, hub.Origin{MsgID: "base:0"}}},
		{"key, the message's clientId", "", "", `{"name":"x","clientId":"Dr. Müller"}`, reply{201, 0, hub.Origin{ClientID: "Dr. Müller"}}},
		{"key with X-Ably-ClientId", "", b64("desk-7"), `{"name":"x"}`, reply{201, 0, hub.Origin{ClientID: "desk-7"}}},
		{"key with X-Ably-ClientId, repeated", "", b64("desk-7"), `{"name":"x","clientId":"desk-7"}`, reply{201, 0, hub.Origin{ClientID: "desk-7"}}},
		{"key with X-Ably-ClientId, contradicted", "", b64("desk-7"), `{"name":"x","clientId":"other"}`, reply{400, 40012, hub.Origin{}}},
		{"X-Ably-ClientId not base64", "", "%%%", `{"name":"x"}`, reply{400, 40000, hub.Origin{}}},
		{"token with a clientId", desk9, "", `{"name":"x","id":"t:1"}`, reply{201, 0, hub.Origin{MsgID: "t:1", ClientID: "desk-9"}}},
		{"token with a clientId, contradicted", desk9, "", `{"name":"x","clientId":"other"}`, reply{400, 40012, hub.Origin{}}},
		{"Ably JWT with a clientId", jwt, "", `{"name":"x","id":"j:0"}`, reply{201, 0, hub.Origin{MsgID: "j:0", ClientID: "desk-jwt"}}},
		{"Ably JWT with a clientId, contradicted", jwt, "", `{"name":"x","clientId":"other"}`, reply{400, 40012, hub.Origin{}}},
		{"wildcard token", wildcard, "", `{"name":"x","clientId":"anyone"}`, reply{201, 0, hub.Origin{ClientID: "anyone"}}},
		{"a REST connectionId is ignored", "", "", `{"name":"x","connectionId":"c0nn"}`, reply{201, 0, hub.Origin{}}},
		{"the wildcard as a message's clientId", wildcard, "", `{"name":"x","clientId":"*"}`, reply{400, 40000, hub.Origin{}}},
		{"id with a space", "", "", `{"name":"x","id":"a b:0"}`, reply{400, 40000, hub.Origin{}}},
		{"clientId with a newline", "", "", `{"name":"x","clientId":"a\nb"}`, reply{400, 40000, hub.Origin{}}},
		{"id too long", "", "", `{"name":"x","id":"` + strings.Repeat("i", hub.MaxOriginIDLen+1) + `"}`, reply{400, 40000, hub.Origin{}}},
		{"one bad message spoils the batch", "", "", `[{"name":"ok"},{"name":"x","clientId":"*"}]`, reply{400, 40000, hub.Origin{}}},
	}
	for _, tc := range cases {
		channel := "origin-" + strings.NewReplacer(" ", "-", ",", "", "'", "").Replace(tc.name)
		req, err := http.NewRequest(http.MethodPost, r.url+"/channels/"+channel+"/messages", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if tc.authz != "" {
			req.Header.Set("Authorization", tc.authz)
		} else {
			req.SetBasicAuth(keyName, keySecret)
		}
		if tc.header != "" {
			req.Header.Set("X-Ably-ClientId", tc.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error struct{ Code int } `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		got := reply{Status: resp.StatusCode, Code: body.Error.Code}
		evs, _, _ := r.backend.History(context.Background(), channel, hub.Cursor{})
		if tc.want.Status == 201 {
			if len(evs) != 1 {
				t.Fatalf("%s: %d events stored, want 1", tc.name, len(evs))
			}
			got.Origin = evs[0].Origin
		} else if len(evs) != 0 {
			t.Errorf("%s: a refused request stored %d events", tc.name, len(evs))
		}
		testutil.Check(t, tc.name, tc.want, got)
	}
}

// TestBatchPublishOrigin: POST /messages applies the same rules.
func TestBatchPublishOrigin(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{})
	post := func(body, clientHeader string) int {
		req, _ := http.NewRequest(http.MethodPost, r.url+"/messages", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(keyName, keySecret)
		req.Header.Set("X-Ably-ClientId", base64.StdEncoding.EncodeToString([]byte(clientHeader)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	testutil.Equal(t, "batch status", 201, post(`{"channels":["b1","b2"],"messages":{"id":"bb:0","name":"x"}}`, "desk-7"))
	for _, ch := range []string{"b1", "b2"} {
		evs, _, _ := r.backend.History(context.Background(), ch, hub.Cursor{})
		if len(evs) != 1 {
			t.Fatalf("%s: %d events", ch, len(evs))
		}
		testutil.Equal(t, ch+" origin", hub.Origin{MsgID: "bb:0", ClientID: "desk-7"}, evs[0].Origin)
	}
	testutil.Equal(t, "batch with a contradicted clientId", 400, post(`{"channels":"b3","messages":{"name":"x","clientId":"other"}}`, "desk-7"))
	evs, _, _ := r.backend.History(context.Background(), "b3", hub.Cursor{})
	testutil.Equal(t, "events stored by the refused batch", 0, len(evs))
}
