package server_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ably/ably-go/ably"

	"github.com/handoff-health/handoff/internal/config"
	"github.com/handoff-health/handoff/internal/testutil"
)

// provisioned is the part of POST /apps' reply the tests read.
type provisioned struct {
	AppID string `json:"appId"`
	Keys  []struct {
		ID, Value, KeyName, KeyStr, Capability string
	} `json:"keys"`
}

// ablytestConfig is the body ably-go v1.4.0's ablytest.DefaultConfig()
// sends (keys with a capability, namespaces, presence fixtures).
const ablytestConfig = `{"keys":[{"capability":"{\"[*]*\":[\"*\"]}"}],
 "namespaces":[{"id":"persisted","persisted":true},{"id":"mutable","mutableMessages":true}],
 "channels":[{"name":"persisted:presence_fixtures","presence":[{"clientId":"client_bool","data":"true"},
  {"clientId":"client_json","data":"{\"test\": \"x\"}"}]}]}`

func provisionerConfig(t *testing.T) config.Config {
	cfg := defaults(t)
	cfg.JWTSecret = testJWTSecret
	cfg.TestProvisioner = true
	return cfg
}

// TestProvisionerOnlyWithTheFlag: a node without --test-provisioner has no
// /apps (404), and config validation refuses the flag on a non-loopback
// address, so a production node never serves it.
func TestProvisionerOnlyWithTheFlag(t *testing.T) {
	t.Parallel()
	cfg := defaults(t)
	cfg.JWTSecret = testJWTSecret
	n := startNode(t, cfg)
	testutil.Equal(t, "POST /apps without the flag", http.StatusNotFound, n.do("POST", "/apps", "", ablytestConfig).status)
	testutil.Equal(t, "DELETE /apps/x without the flag", http.StatusNotFound, n.do("DELETE", "/apps/x", "", nil).status)

	for _, addr := range []string{":8080", "0.0.0.0:8080", "192.168.1.2:8080"} {
		c := provisionerConfig(t)
		c.Addr = addr
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "--test-provisioner") || !strings.Contains(err.Error(), "HANDOFF_TEST_PROVISIONER") {
			t.Errorf("--test-provisioner on %s: %v, want a config error naming the flag", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:8080", "localhost:8080", "[::1]:8080"} {
		c := provisionerConfig(t)
		c.Addr = addr
		if err := c.Validate(); err != nil {
			t.Errorf("--test-provisioner on %s: %v", addr, err)
		}
	}
}

// TestProvisionerApps: POST /apps with ablytest's body returns an app whose
// key works for REST and for realtime (ably-go, both formats); two apps
// share nothing: the same channel name holds separate messages and
// history; a key cannot delete another app; DELETE /apps/{id} makes its
// keys stop working.
func TestProvisionerApps(t *testing.T) {
	t.Parallel()
	n := startNode(t, provisionerConfig(t))
	var a, b provisioned
	must(t, n.do("POST", "/apps", "", ablytestConfig), http.StatusCreated, &a)
	must(t, n.do("POST", "/apps", "", ablytestConfig), http.StatusCreated, &b)
	if a.AppID == "" || a.AppID == b.AppID || len(a.Keys) != 1 || a.Keys[0].Value == "" {
		t.Fatalf("apps %+v and %+v", a, b)
	}
	testutil.Equal(t, "keyName", a.AppID+"."+a.Keys[0].ID, a.Keys[0].KeyName)
	testutil.Equal(t, "capability echoed", `{"[*]*":["*"]}`, a.Keys[0].Capability)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, binary := range []bool{false, true} {
		rt, err := ably.NewRealtime(ably.WithKey(a.Keys[0].KeyStr), ably.WithEndpoint("127.0.0.1"), ably.WithPort(n.port),
			ably.WithTLS(false), ably.WithInsecureAllowBasicAuthWithoutTLS(), ably.WithUseBinaryProtocol(binary),
			ably.WithLogLevel(ably.LogNone))
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var got []string
		ch := rt.Channels.Get("shared")
		if _, err := ch.SubscribeAll(ctx, func(m *ably.Message) {
			mu.Lock()
			got = append(got, m.Name)
			mu.Unlock()
		}); err != nil {
			t.Fatal(err)
		}
		if err := ch.Publish(ctx, "a.rt", "x"); err != nil {
			t.Fatal(err)
		}
		if err := n.ablyREST(t, b.Keys[0].KeyStr).Channels.Get("shared").Publish(ctx, "b.rest", "y"); err != nil {
			t.Fatal(err)
		}
		if err := n.ablyREST(t, a.Keys[0].KeyStr).Channels.Get("shared").Publish(ctx, "a.rest", "z"); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, "app A's two messages", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(got) >= 2
		})
		mu.Lock()
		testutil.Equal(t, "app A sees only its own messages", []string{"a.rt", "a.rest"}, got)
		mu.Unlock()
		rt.Close()
	}
	names := func(key string) []string {
		page, err := n.ablyREST(t, key).Channels.Get("shared").History().Pages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for page.Next(ctx) {
			for _, m := range page.Items() {
				out = append(out, m.Name)
			}
		}
		return out
	}
	testutil.Equal(t, "app A's history", []string{"a.rest", "a.rt", "a.rest", "a.rt"}, names(a.Keys[0].KeyStr))
	testutil.Equal(t, "app B's history", []string{"b.rest", "b.rest"}, names(b.Keys[0].KeyStr))

	del := func(id, keyName, secret string) int {
		req, err := http.NewRequest("DELETE", n.url+"/apps/"+id, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(keyName, secret)
		return send(t, req).status
	}
	testutil.Equal(t, "B's key deleting A", http.StatusUnauthorized, del(a.AppID, b.Keys[0].KeyName, b.Keys[0].Value))
	testutil.Equal(t, "a wrong secret", http.StatusUnauthorized, del(a.AppID, a.Keys[0].KeyName, "wrong-secret-wrong-secret"))
	testutil.Equal(t, "A deleting itself", http.StatusNoContent, del(a.AppID, a.Keys[0].KeyName, a.Keys[0].Value))
	err := n.ablyREST(t, a.Keys[0].KeyStr).Channels.Get("shared").Publish(ctx, "after", "x")
	var ei *ably.ErrorInfo
	if !errors.As(err, &ei) || ei.StatusCode != http.StatusUnauthorized {
		t.Fatalf("publish with a deleted app's key: %v, want a 401", err)
	}
	testutil.Equal(t, "app B still works", []string{"b.rest", "b.rest"}, names(b.Keys[0].KeyStr))

	testutil.Equal(t, "a body that is not JSON", http.StatusBadRequest, n.do("POST", "/apps", "", "{nope").status)
	testutil.Equal(t, "a bad capability", http.StatusBadRequest,
		n.do("POST", "/apps", "", `{"keys":[{"capability":"not json"}]}`).status)
}

// TestProvisionerDeleteOnKeepAlive: a connection remembers the API key
// that verified on it (publish.ConnContext), and deleting the app refuses
// that key at once on the same keep-alive connection.
func TestProvisionerDeleteOnKeepAlive(t *testing.T) {
	t.Parallel()
	n := startNode(t, provisionerConfig(t))
	var a provisioned
	must(t, n.do("POST", "/apps", "", ablytestConfig), http.StatusCreated, &a)
	key := a.Keys[0]
	tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	type sent struct {
		Status int
		Reused bool
	}
	do := func(method, path, body string) sent {
		t.Helper()
		var s sent
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { s.Reused = i.Reused },
		})
		req, err := http.NewRequestWithContext(ctx, method, n.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(key.KeyName, key.Value)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		s.Status = resp.StatusCode
		return s
	}
	msg := `{"name":"n","data":"x"}`
	testutil.Equal(t, "first publish", sent{http.StatusCreated, false}, do("POST", "/channels/shared/messages", msg))
	testutil.Equal(t, "second publish, same connection", sent{http.StatusCreated, true}, do("POST", "/channels/shared/messages", msg))
	testutil.Equal(t, "deleting the app, same connection", sent{http.StatusNoContent, true}, do("DELETE", "/apps/"+a.AppID, ""))
	testutil.Equal(t, "publish after the delete, same connection", sent{http.StatusUnauthorized, true}, do("POST", "/channels/shared/messages", msg))
}
