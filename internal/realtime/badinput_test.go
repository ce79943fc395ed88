package realtime

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/handoff-health/handoff/internal/auth"
)

// TestBadFramesGetErrorFrames sends each bad frame on a live socket and
// expects an error frame with a stable code; the socket stays usable.
func TestBadFramesGetErrorFrames(t *testing.T) {
	t.Parallel()
	v := newVerifier(t)
	n := startNode(t, memoryHub(t), v, Config{MaxChannels: 2, MaxBadFrames: 1000})
	forged, _ := mustVerifier(t, []byte("another-secret-another-secret-xx")).Issue(auth.Claims{Facility: "f", Provider: "p", Expires: time.Now().Add(time.Hour)})

	cases := []struct {
		name, frame, code string
	}{
		{"not JSON", `{`, "invalid_json"},
		{"JSON array", `[1,2]`, "invalid_json"},
		{"JSON string", `"subscribe"`, "invalid_json"},
		{"trailing data", `{"type":"ping"} {}`, "invalid_json"},
		{"empty object", `{}`, "invalid_frame"},
		{"unknown type", `{"type":"publish","channel":"a"}`, "unknown_type"},
		{"unknown field", `{"type":"ping","extra":1}`, "invalid_frame"},
		{"field of wrong type", `{"type":"subscribe","channel":5}`, "invalid_frame"},
		{"object id", `{"type":"ping","id":{"a":1}}`, "invalid_frame"},
		{"long id", `{"type":"ping","id":"` + strings.Repeat("x", 80) + `"}`, "invalid_frame"},
		{"bad channel", `{"type":"subscribe","channel":"a b"}`, "bad_channel"},
		{"missing channel", `{"type":"unsubscribe"}`, "bad_channel"},
		{"bad cursor", `{"type":"subscribe","channel":"a","since":"not-a-cursor!"}`, "bad_cursor"},
		{"auth without token", `{"type":"auth"}`, "invalid_frame"},
		{"re-auth with forged token", `{"type":"auth","token":"` + forged + `"}`, "unauthorized"},
		{"re-auth with garbage token", `{"type":"auth","token":"x.y.z"}`, "unauthorized"},
		{"re-auth with expired token", `{"type":"auth","token":"` + expiredToken(t, v) + `"}`, "token_expired"},
		{"unsubscribe unknown channel", `{"type":"unsubscribe","channel":"never"}`, "not_subscribed"},
	}
	r := connect(t, n.url, issue(t, v, "f", "p", time.Hour))
	for _, tc := range cases {
		r.sendText(tc.frame)
		f := r.next()
		if f.Type != frameErrorType || f.Code != tc.code || f.Message == "" {
			t.Errorf("%s: got %+v, want error %s", tc.name, f, tc.code)
		}
	}

	// Binary frames are refused the same way.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.ws.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if f := r.next(); f.Code != "invalid_frame" {
		t.Errorf("binary frame: got %+v", f)
	}

	// State errors: a second subscribe to a channel, and one channel too many.
	for _, ch := range []string{"a", "a", "b", "c"} {
		r.send(map[string]any{"type": "subscribe", "channel": ch})
	}
	want := []string{frameSubscribed, "already_subscribed", frameSubscribed, "too_many_channels"}
	for i, w := range want {
		f := r.next()
		got := f.Type
		if got == frameErrorType {
			got = f.Code
		}
		if got != w {
			t.Errorf("subscribe %d: got %+v, want %s", i, f, w)
		}
	}

	// After all that the socket still works.
	r.send(map[string]any{"type": "ping"})
	if f := r.next(); f.Type != framePong {
		t.Fatalf("got %+v, want pong", f)
	}
}

// TestBadSocketsAreClosed covers inputs that end the socket, each with its
// code from the close-code table.
func TestBadSocketsAreClosed(t *testing.T) {
	t.Parallel()
	v := newVerifier(t)
	n := startNode(t, memoryHub(t), v, Config{AuthTimeout: 300 * time.Millisecond, MaxBadFrames: 3})
	good := issue(t, v, "f", "p", time.Hour)
	forged, _ := mustVerifier(t, []byte("another-secret-another-secret-xx")).Issue(auth.Claims{Facility: "f", Provider: "p", Expires: time.Now().Add(time.Hour)})
	noFacility, _ := v.Issue(auth.Claims{Provider: "p", Expires: time.Now().Add(time.Hour)})

	cases := []struct {
		name   string
		header http.Header
		query  string
		frames []string
		want   websocket.StatusCode
	}{
		{name: "no token, no auth frame", want: CloseUnauthorized},
		{name: "first frame not auth", frames: []string{`{"type":"ping"}`}, want: CloseUnauthorized},
		{name: "first frame garbage", frames: []string{`garbage`}, want: CloseUnauthorized},
		{name: "auth frame forged token", frames: []string{`{"type":"auth","token":"` + forged + `"}`}, want: CloseUnauthorized},
		{name: "forged bearer token", header: bearer(forged), want: CloseUnauthorized},
		{name: "malformed bearer token", header: bearer("not-a-jwt"), want: CloseUnauthorized},
		{name: "token without facility", header: bearer(noFacility), want: CloseUnauthorized},
		{name: "garbage query token", query: "?access_token=abc", want: CloseUnauthorized},
		{name: "expired token", header: bearer(expiredToken(t, v)), want: CloseTokenExpired},
		{name: "oversize frame", header: bearer(good), frames: []string{`{"type":"ping","id":"` + strings.Repeat("x", DefaultMaxFrameBytes) + `"}`}, want: CloseTooBig},
		{name: "repeated garbage", header: bearer(good), frames: []string{"x", "x", "x", "x"}, want: CloseBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := dialRaw(t, n.url+tc.query, tc.header)
			for _, f := range tc.frames {
				r.sendText(f)
			}
			r.expectClose(tc.want)
		})
	}
}

func TestPlainHTTPIsRefused(t *testing.T) {
	t.Parallel()
	n := startNode(t, memoryHub(t), newVerifier(t), Config{})
	resp, err := http.Get(n.http.URL + Path + "?access_token=secret")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("status %d, want 426", resp.StatusCode)
	}
}

func mustVerifier(t testing.TB, secret []byte) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// expiredToken is past even the verifier's clock-skew leeway.
func expiredToken(t testing.TB, v *auth.Verifier) string {
	t.Helper()
	tok, err := v.Issue(auth.Claims{Facility: "f", Provider: "p", Expires: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
