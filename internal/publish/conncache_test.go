package publish

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/testutil"
)

// keepAlive is a publish endpoint served with ConnContext, as the server
// serves it, and a client that keeps one connection open and reports
// whether each request reused it.
type keepAlive struct {
	keys   *auth.APIKeys
	url    string
	client *http.Client
}

func newKeepAlive(t *testing.T) *keepAlive {
	t.Helper()
	keys, err := auth.ParseAPIKeys(testKeys, testCaps)
	noErr(t, err)
	h := hub.New(hub.NewMemory(hub.MemoryConfig{}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = h.Run(ctx); close(done) }()
	mux := http.NewServeMux()
	New(h, keys, Config{}, zerolog.Nop()).Register(mux)
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ConnContext = ConnContext
	srv.Start()
	tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		srv.Close()
		cancel()
		<-done
	})
	return &keepAlive{keys: keys, url: srv.URL, client: &http.Client{Transport: tr}}
}

type published struct {
	Status, Code int
	Reused       bool
}

// publish posts one message to channel with authz as the Authorization
// header, on the kept connection after the first request.
func (k *keepAlive) publish(t *testing.T, channel, authz string) published {
	t.Helper()
	var reused bool
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, k.url+"/channels/"+channel+"/messages",
		strings.NewReader(`{"name":"note.added","data":{"n":1}}`))
	noErr(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", authz)
	resp, err := k.client.Do(req)
	noErr(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	noErr(t, err)
	var body ablyproto.ErrorBody
	_ = json.Unmarshal(b, &body)
	return published{resp.StatusCode, body.Error.Code, reused}
}

func basicAuthz(name, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(name+":"+secret))
}

// TestConnCacheRefusesWhatNoLongerVerifies: on one keep-alive connection
// whose key verified (and was remembered), a wrong secret for the same key
// is refused, the right one still works, another key gets its own
// capability, and a key deleted or replaced at runtime is refused at once.
func TestConnCacheRefusesWhatNoLongerVerifies(t *testing.T) {
	t.Parallel()
	k := newKeepAlive(t)
	good := basicAuthz(keyName, keySecret)
	ok := published{http.StatusCreated, 0, true}
	refused := published{http.StatusUnauthorized, ablyproto.CodeInvalidCredentials, true}

	first := k.publish(t, "room:1", good)
	testutil.Equal(t, "first publish", published{http.StatusCreated, 0, false}, first)
	testutil.Equal(t, "again, remembered", ok, k.publish(t, "room:1", good))
	testutil.Equal(t, "a wrong secret after the key verified", refused,
		k.publish(t, "room:1", basicAuthz(keyName, "wrong-wrong-wrong-wrong")))
	testutil.Equal(t, "the right secret again", ok, k.publish(t, "room:1", good))
	testutil.Equal(t, "a key that may not publish here", published{http.StatusUnauthorized, ablyproto.CodeCapability, true},
		k.publish(t, "room:1", basicAuthz(benchKey, benchSecret)))
	testutil.Equal(t, "that key where it may", ok, k.publish(t, "bench:1", basicAuthz(benchKey, benchSecret)))
	testutil.Equal(t, "the first key once more", ok, k.publish(t, "room:1", good))

	k.keys.Remove(keyName)
	testutil.Equal(t, "the key after it was deleted", refused, k.publish(t, "room:1", good))
	noErr(t, k.keys.Add(keyName, "another-secret-another", auth.AllowAll))
	testutil.Equal(t, "the old secret after the key was replaced", refused, k.publish(t, "room:1", good))
	testutil.Equal(t, "the new secret", ok, k.publish(t, "room:1", basicAuthz(keyName, "another-secret-another")))
}

// TestConnCacheEntry: what a connection remembers. A verified header is
// stored with the generation read before the check; a refused one never
// is and does not replace the stored one; without ConnContext nothing is
// stored anywhere.
func TestConnCacheEntry(t *testing.T) {
	t.Parallel()
	keys, err := auth.ParseAPIKeys(testKeys, testCaps)
	noErr(t, err)
	h := New(hub.New(hub.NewMemory(hub.MemoryConfig{})), keys, Config{}, zerolog.Nop())
	ctx := ConnContext(context.Background(), nil)
	cs := ctx.Value(connKey{}).(*connState)
	auth := func(authz string, ctx context.Context) error {
		r := httptest.NewRequest(http.MethodPost, "/channels/x/messages", nil).WithContext(ctx)
		r.Header.Set("Authorization", authz)
		_, err := h.authenticate(r)
		return err
	}
	good := basicAuthz(keyName, keySecret)
	noErr(t, auth(good, ctx))
	e := cs.basic.Load()
	if e == nil {
		t.Fatal("a verified header was not remembered")
	}
	testutil.Equal(t, "remembered header", good, e.authz)
	testutil.Equal(t, "remembered key", keyName, e.keyName)
	testutil.Equal(t, "remembered generation", keys.Generation(), e.gen)

	for _, bad := range []string{basicAuthz(keyName, "wrong-wrong-wrong-wrong"), basicAuthz("nobody", keySecret), "Basic !!", good + "x"} {
		if err := auth(bad, ctx); err == nil {
			t.Errorf("%q verified", bad)
		}
		if cs.basic.Load() != e {
			t.Errorf("refusing %q changed the remembered entry", bad)
		}
	}

	noErr(t, auth(basicAuthz(readerKey, readerSecret), ctx))
	testutil.Equal(t, "key after another verified", readerKey, cs.basic.Load().keyName)

	noErr(t, auth(good, context.Background())) // no connection state: nothing to remember
	testutil.Equal(t, "key after a request without ConnContext", readerKey, cs.basic.Load().keyName)
}

func TestEqualConstantTime(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		a, b string
		want bool
	}{{"", "", true}, {"abc", "abc", true}, {"abc", "abd", false}, {"abc", "ab", false}, {"xbc", "abc", false}} {
		testutil.Equal(t, c.a+" == "+c.b, c.want, equalConstantTime(c.a, c.b))
	}
}
