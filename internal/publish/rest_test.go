package publish

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ably/ably-go/ably"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/internal/testutil"
)

// ablyWith is r.ably with extra options (token auth, token params).
func (r *rig) ablyWith(t *testing.T, opts ...ably.ClientOption) *ably.REST {
	t.Helper()
	base := []ably.ClientOption{
		ably.WithEndpoint("127.0.0.1"), ably.WithPort(r.port), ably.WithTLS(false),
		ably.WithUseBinaryProtocol(false), ably.WithInsecureAllowBasicAuthWithoutTLS(),
	}
	c, err := ably.NewREST(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ablyErr is err as an Ably ErrorInfo's code and status.
func ablyErr(t *testing.T, err error) (ably.ErrorCode, int) {
	t.Helper()
	var ae *ably.ErrorInfo
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want an *ably.ErrorInfo", err)
	}
	return ae.Code, ae.StatusCode
}

func TestAblyGoTime(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{})
	got, err := r.ably(t, keyName+":"+keySecret).Time(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(got); d < -time.Minute || d > time.Minute {
		t.Fatalf("server time %v is %v from now", got, d)
	}
}

// TestAblyJSPublishFields: the body ably-js ≥ 2.7 sends is accepted; an
// action other than create is not.
func TestAblyJSPublishFields(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{})
	events := r.subscribe(t, "session:js")
	body := `[{"name":"note","data":"{\"a\":1}","id":"b4se:0","action":0,"encoding":"json","size":7,` +
		`"connectionKey":"k","connectionId":"c","serial":"s","version":{"serial":"s"},"timestamp":1,"extras":{}}]`
	resp := r.post(t, "/channels/session:js/messages", body, keyName, keySecret)
	defer resp.Body.Close()
	testutil.Check(t, "status", http.StatusCreated, resp.StatusCode)
	var reply ablyproto.PublishReply
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil {
		t.Fatalf("publish reply: %v", err)
	}
	ev := next(t, events)
	testutil.Equal(t, "stored", stored{"session:js", "note", `{"a":1}`}, storedOf(ev))
	testutil.Equal(t, "reply", ablyproto.PublishReply{Channel: "session:js", MessageID: ev.ID, Serials: []string{ev.ID}}, reply)

	resp = r.post(t, "/channels/session:js/messages", `[{"name":"note","action":1}]`, keyName, keySecret)
	testutil.Check(t, "action 1: status", http.StatusBadRequest, resp.StatusCode)
	testutil.Check(t, "action 1: code", ablyproto.CodeBadRequest, errorCode(t, resp))
	resp = r.post(t, "/channels/session:js/messages", `[{"name":"note","encoding":5}]`, keyName, keySecret)
	testutil.Check(t, "size of the wrong type: status", http.StatusBadRequest, resp.StatusCode)
	resp.Body.Close()
}

// TestAblyGoMsgpack: ably-go's default binary protocol sends REST
// publishes and TokenRequests as msgpack; both are accepted, and the
// messages read back like JSON-published ones.
func TestAblyGoMsgpack(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{})
	c, err := ably.NewREST(ably.WithKey(keyName+":"+keySecret), ably.WithEndpoint("127.0.0.1"), ably.WithPort(r.port),
		ably.WithTLS(false), ably.WithInsecureAllowBasicAuthWithoutTLS())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ch := c.Channels.Get("x")
	if err := ch.Publish(ctx, "s", "d"); err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish(ctx, "m", map[string]any{"a": 1.0}); err != nil {
		t.Fatal(err)
	}
	testutil.Check(t, "events", 2, r.historyLen(t, "x"))
	// A TokenRequest signed by the SDK and sent as msgpack: the MAC holds.
	tr, err := c.Auth.CreateTokenRequest(&ably.TokenParams{TTL: 60000})
	if err != nil {
		t.Fatal(err)
	}
	tc, err := ably.NewREST(ably.WithEndpoint("127.0.0.1"), ably.WithPort(r.port), ably.WithTLS(false),
		ably.WithAuthCallback(func(context.Context, ably.TokenParams) (ably.Tokener, error) { return tr, nil }))
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.Channels.Get("x").Publish(ctx, "t", "with a token"); err != nil {
		t.Fatal(err)
	}
	testutil.Check(t, "events", 3, r.historyLen(t, "x"))
}

// TestAblyGoHistory publishes 25 messages and reads them back on ably-go's
// path in both directions, ten a page.
func TestAblyGoHistory(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{})
	ch := r.ably(t, keyName+":"+keySecret).Channels.Get("session:h")
	ctx := context.Background()
	var serials, ids []string
	for i := range 25 {
		var data any = fmt.Sprintf("s%d", i)
		if i%2 == 1 {
			data = map[string]any{"i": float64(i)}
		}
		msg := &ably.Message{Name: "n" + fmt.Sprint(i), Data: data}
		res, err := ch.PublishMultipleWithResult(ctx, []*ably.Message{msg})
		if err != nil {
			t.Fatal(err)
		}
		serials = append(serials, *res[0].Serial)
		// ably-go gave the message its idempotent id "<base>:0" in place.
		if !strings.HasSuffix(msg.ID, ":0") {
			t.Fatalf("ably-go sent message %d with id %q, not an idempotent id", i, msg.ID)
		}
		ids = append(ids, msg.ID)
	}
	for _, dir := range []ably.Direction{ably.Forwards, ably.Backwards} {
		pages, err := ch.History(ably.HistoryWithLimit(10), ably.HistoryWithDirection(dir)).Pages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var sizes []int
		var got []*ably.Message
		for pages.Next(ctx) {
			sizes = append(sizes, len(pages.Items()))
			got = append(got, pages.Items()...)
		}
		if err := pages.Err(); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		testutil.Equal(t, string(dir)+" page sizes", []int{10, 10, 5}, sizes)
		items, err := ch.History(ably.HistoryWithDirection(dir)).Items(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; items.Next(ctx); k++ {
			if m := items.Item(); m.Encoding != "" || m.Data == nil {
				t.Errorf("%s item %d: data %v with encoding %q left", dir, k, m.Data, m.Encoding)
			}
		}
		for k, m := range got {
			i := k
			if dir == ably.Backwards {
				i = 24 - k
			}
			var data any = fmt.Sprintf("s%d", i)
			if i%2 == 1 {
				data = map[string]any{"i": float64(i)}
			}
			what := fmt.Sprintf("%s message %d", dir, k)
			testutil.Equal(t, what+" name", fmt.Sprint("n", i), m.Name)
			testutil.Equal(t, what+" data", data, decoded(t, m))
			testutil.Equal(t, what+" serial", serials[i], m.Serial)
			testutil.Equal(t, what+" id (the one ably-go published it with)", ids[i], m.ID)
			if m.Timestamp == 0 {
				t.Errorf("%s: no timestamp", what)
			}
		}
	}
}

// decoded is m's data as ably-go's Items decodes it; its Pages leaves
// encoding "json" undone.
func decoded(t *testing.T, m *ably.Message) any {
	t.Helper()
	if m.Encoding != "json" {
		return m.Data
	}
	var v any
	if err := json.Unmarshal([]byte(m.Data.(string)), &v); err != nil {
		t.Fatalf("message %s: %v", m.ID, err)
	}
	return v
}

// TestHistoryParams: ably-js's path, from_serial (untilAttach), start/end,
// envelope=json and the Link headers' shape.
func TestHistoryParams(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{})
	var serials []string
	for i := range 5 {
		resp := r.post(t, "/channels/c/messages", fmt.Sprintf(`{"name":"n%d"}`, i), keyName, keySecret)
		var rep ablyproto.PublishReply
		_ = json.NewDecoder(resp.Body).Decode(&rep)
		resp.Body.Close()
		serials = append(serials, rep.Serials[0])
	}
	names := func(path string) ([]string, http.Header) {
		resp := r.get(t, path, keyName, keySecret)
		defer resp.Body.Close()
		testutil.Check(t, path+": status", http.StatusOK, resp.StatusCode)
		var ms []ablyproto.Message
		if err := json.NewDecoder(resp.Body).Decode(&ms); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range ms {
			out = append(out, m.Name)
		}
		return out, resp.Header
	}
	got, h := names("/channels/c/messages?limit=2&from_serial=" + serials[3])
	testutil.Equal(t, "from_serial", []string{"n3", "n2"}, got)
	next := `<./messages?cursor=` + serials[1] + `&from_serial=` + serials[3] + `&limit=2>; rel="next"`
	testutil.Equal(t, "Link", []string{`<./messages?from_serial=` + serials[3] + `&limit=2>; rel="first"`, next}, h.Values("Link"))
	got, _ = names("/channels/c/history?fromSerial=" + serials[3] + "&limit=2&cursor=" + serials[1])
	testutil.Equal(t, "next page", []string{"n1", "n0"}, got)
	got, _ = names("/channels/c/messages?direction=forwards&end=1")
	testutil.Equal(t, "end before every message", []string(nil), got)
	got, _ = names("/channels/c/messages?direction=forwards&start=1")
	testutil.Equal(t, "start before every message", []string{"n0", "n1", "n2", "n3", "n4"}, got)

	resp := r.get(t, "/channels/c/messages?limit=4&envelope=json", keyName, keySecret)
	var env struct {
		StatusCode int
		Response   []ablyproto.Message
		Headers    map[string]string
	}
	_ = json.NewDecoder(resp.Body).Decode(&env)
	resp.Body.Close()
	testutil.Check(t, "envelope status", 200, env.StatusCode)
	testutil.Check(t, "envelope messages", 4, len(env.Response))
	if !strings.Contains(env.Headers["Link"], `rel="next"`) {
		t.Errorf("envelope Link %q has no next", env.Headers["Link"])
	}
	resp = r.get(t, "/channels/c/messages?envelope=json", "", "")
	_ = json.NewDecoder(resp.Body).Decode(&env)
	resp.Body.Close()
	testutil.Check(t, "envelope of an error: HTTP status", 200, resp.StatusCode)
	testutil.Check(t, "envelope of an error: status", 401, env.StatusCode)

	for _, q := range []string{"limit=0", "limit=1001", "direction=up", "from_serial=nope", "start=x"} {
		resp := r.get(t, "/channels/c/messages?"+q, keyName, keySecret)
		testutil.Check(t, q+": status", http.StatusBadRequest, resp.StatusCode)
		testutil.Check(t, q+": code", ablyproto.CodeBadRequest, errorCode(t, resp))
	}
	resp = r.get(t, "/channels/c/messages", readerKey, readerSecret)
	testutil.Check(t, "reader key: status", http.StatusOK, resp.StatusCode)
	resp.Body.Close()
	resp = r.get(t, "/channels/bench:1/history", benchKey, benchSecret)
	testutil.Check(t, "publish-only key: status", http.StatusUnauthorized, resp.StatusCode)
	testutil.Check(t, "publish-only key: code", ablyproto.CodeCapability, errorCode(t, resp))
}

func TestAblyGoPresenceEmpty(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{})
	ch := r.ably(t, keyName+":"+keySecret).Channels.Get("session:p")
	ctx := context.Background()
	for what, req := range map[string]ably.PresenceRequest{"get": ch.Presence.Get(), "history": ch.Presence.History()} {
		pages, err := req.Pages(ctx)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if pages.Next(ctx) && len(pages.Items()) != 0 {
			t.Errorf("%s: %d members", what, len(pages.Items()))
		}
	}
}

// TestAblyGoToken: a key client in token mode gets tokens from
// requestToken; a token restricted at request time is held to it.
func TestAblyGoToken(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{})
	ctx := context.Background()
	keyed := r.ablyWith(t, ably.WithKey(keyName+":"+keySecret), ably.WithUseTokenAuth(true))
	if err := keyed.Channels.Get("session:t").Publish(ctx, "note", "x"); err != nil {
		t.Fatalf("publish with a token: %v", err)
	}
	if _, err := keyed.Channels.Get("session:t").History().Items(ctx); err != nil {
		t.Fatalf("history with a token: %v", err)
	}

	td, err := keyed.Auth.RequestToken(ctx, &ably.TokenParams{Capability: `{"session:*":["publish"]}`, TTL: 60_000})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "capability", `{"session:*":["publish"]}`, td.Capability)
	testutil.Equal(t, "key name", keyName, td.KeyName)
	testutil.Equal(t, "ttl", int64(60_000), td.Expires-td.Issued)
	narrow := r.ablyWith(t, ably.WithTokenDetails(td))
	if err := narrow.Channels.Get("session:t").Publish(ctx, "note", "y"); err != nil {
		t.Fatalf("publish with a narrow token: %v", err)
	}
	_, err = narrow.Channels.Get("session:t").History().Items(ctx)
	code, status := ablyErr(t, err)
	testutil.Check(t, "history with a publish-only token: code", ably.ErrorCode(ablyproto.CodeCapability), code)
	testutil.Check(t, "history with a publish-only token: status", http.StatusUnauthorized, status)
	code, _ = ablyErr(t, narrow.Channels.Get("other").Publish(ctx, "note", "y"))
	testutil.Check(t, "publish outside the token's channels: code", ably.ErrorCode(ablyproto.CodeCapability), code)
	testutil.Check(t, "events on session:t", 2, r.historyLen(t, "session:t"))

	// The bench key holds publish on bench:* only: a token cannot widen it.
	bench := r.ablyWith(t, ably.WithKey(benchKey+":"+benchSecret), ably.WithUseTokenAuth(true))
	td, err = bench.Auth.RequestToken(ctx, &ably.TokenParams{Capability: `{"*":["*"]}`})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "bench token capability", `{"bench:*":["publish"]}`, td.Capability)
	_, err = bench.Auth.RequestToken(ctx, &ably.TokenParams{Capability: `{"session:*":["history"]}`})
	code, _ = ablyErr(t, err)
	testutil.Check(t, "a token outside the key: code", ably.ErrorCode(ablyproto.CodeCapability), code)
}

// TestAblyGoTokenRenewal: the server's clock passes the token's expiry
// before ably-go's does; the refused request (401, 40140) makes ably-go
// request a new token and retry.
func TestAblyGoTokenRenewal(t *testing.T) {
	t.Parallel()
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	r := newRig(t, Config{Now: clock})
	ctx := context.Background()
	issuer := r.ablyWith(t, ably.WithKey(keyName+":"+keySecret))
	var issued []string
	c := r.ablyWith(t, ably.WithAuthCallback(func(ctx context.Context, p ably.TokenParams) (ably.Tokener, error) {
		p.TTL = 60_000
		td, err := issuer.Auth.RequestToken(ctx, &p)
		if err == nil {
			issued = append(issued, td.Token)
		}
		return td, err
	}))
	ch := c.Channels.Get("session:r")
	if err := ch.Publish(ctx, "note", "1"); err != nil {
		t.Fatal(err)
	}
	testutil.Check(t, "tokens issued", 1, len(issued))
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()

	resp := r.getBearer(t, "/channels/session:r/history", issued[0])
	testutil.Check(t, "expired token: status", http.StatusUnauthorized, resp.StatusCode)
	testutil.Check(t, "expired token: code", ablyproto.CodeTokenError, errorCode(t, resp))

	if err := ch.Publish(ctx, "note", "2"); err != nil {
		t.Fatalf("publish after the token expired: %v", err)
	}
	testutil.Check(t, "tokens issued after the expiry", 2, len(issued))
	testutil.Check(t, "events", 2, r.historyLen(t, "session:r"))
}

func TestRequestTokenRefusals(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{})
	req := func(body, user, pass string) *http.Response {
		return r.post(t, "/keys/"+keyName+"/requestToken", body, user, pass)
	}
	ts := time.Now().UnixMilli()
	cases := []struct {
		name, body, user, pass string
		status, code           int
	}{
		{"bad MAC", fmt.Sprintf(`{"keyName":%q,"timestamp":%d,"nonce":"n0n0n0n0n0n0n0n0n0","mac":"AAAA"}`, keyName, ts), "", "", 401, ablyproto.CodeInvalidCredentials},
		{"no MAC, no credentials", fmt.Sprintf(`{"keyName":%q,"timestamp":%d}`, keyName, ts), "", "", 401, ablyproto.CodeUnauthorized},
		{"no MAC, another key", `{}`, benchKey, benchSecret, 401, ablyproto.CodeInvalidCredentials},
		{"another key in the body", `{"keyName":"bench"}`, keyName, keySecret, 400, ablyproto.CodeBadRequest},
		{"ttl too long", `{"ttl":86400001}`, keyName, keySecret, 400, ablyproto.CodeBadRequest},
		{"ttl that overflows a Duration", `{"ttl":9223372036855}`, keyName, keySecret, 400, ablyproto.CodeBadRequest},
		{"not JSON", `{`, keyName, keySecret, 400, ablyproto.CodeBadRequest},
	}
	for _, tc := range cases {
		resp := req(tc.body, tc.user, tc.pass)
		testutil.Check(t, tc.name+": status", tc.status, resp.StatusCode)
		testutil.Check(t, tc.name+": code", tc.code, errorCode(t, resp))
	}
	stale := time.Now().Add(-11 * time.Minute).UnixMilli()
	mac := hmac.New(sha256.New, []byte(keySecret))
	fmt.Fprintf(mac, "%s\n\n\n\n%d\nn0n0n0n0n0n0n0n0n0\n", keyName, stale)
	body := fmt.Sprintf(`{"keyName":%q,"timestamp":%d,"nonce":"n0n0n0n0n0n0n0n0n0","mac":%q}`, keyName, stale,
		base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	resp := req(body, "", "")
	testutil.Check(t, "stale TokenRequest: status", http.StatusUnauthorized, resp.StatusCode)
	testutil.Check(t, "stale TokenRequest: code", ablyproto.CodeTimestampNotCurrent, errorCode(t, resp))

	resp = req(`{"ttl":1000}`, keyName, keySecret)
	testutil.Check(t, "basic auth: status", http.StatusOK, resp.StatusCode)
	var td ablyproto.TokenDetails
	_ = json.NewDecoder(resp.Body).Decode(&td)
	resp.Body.Close()
	forged := td.Token[:len(td.Token)-2] + "AA"
	resp = r.getBearer(t, "/channels/x/history", forged)
	testutil.Check(t, "forged token: status", http.StatusUnauthorized, resp.StatusCode)
	testutil.Check(t, "forged token: code", ablyproto.CodeTokenError, errorCode(t, resp))
	resp = r.getBearer(t, "/channels/x/history", td.Token)
	testutil.Check(t, "its token: status", http.StatusOK, resp.StatusCode)
	resp.Body.Close()

	// A token must not mint its own successor: its expiry would never bite.
	mint, err := http.NewRequest(http.MethodPost, r.url+"/keys/"+keyName+"/requestToken", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	mint.Header.Set("Content-Type", "application/json")
	mint.Header.Set("Authorization", "Bearer "+base64Std(td.Token))
	resp, err = http.DefaultClient.Do(mint)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Check(t, "token asks for a token: status", http.StatusUnauthorized, resp.StatusCode)
	testutil.Check(t, "token asks for a token: code", ablyproto.CodeUnauthorized, errorCode(t, resp))

	// Another method is Ably's 404 40400 (TestHTTPPaginatedResponse).
	resp = r.get(t, "/keys/"+keyName+"/requestToken", keyName, keySecret)
	testutil.Check(t, "GET requestToken: status", http.StatusNotFound, resp.StatusCode)
	testutil.Check(t, "GET requestToken: code", ablyproto.CodeNotFound, errorCode(t, resp))
}

func (r *rig) get(t *testing.T, path, user, pass string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func (r *rig) getBearer(t *testing.T, path, token string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+base64Std(token))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func base64Std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
