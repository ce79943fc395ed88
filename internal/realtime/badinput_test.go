package realtime

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/testutil"
	"github.com/handoff-health/handoff/protocol"
)

// TestBadFramesGetErrorFrames sends each bad frame on a live socket and
// expects an error frame with a stable code; the socket stays usable.
func TestBadFramesGetErrorFrames(t *testing.T) {
	t.Parallel()
	v := newVerifier(t)
	n := startNode(t, memoryHub(t), v, Config{MaxChannels: 2, MaxBadFrames: 1000})
	forged, _ := mustVerifier(t, []byte("another-secret-another-secret-xx")).Issue(auth.Claims{Facility: "f", Provider: "p", Expires: time.Now().Add(time.Hour)})

	cases := []struct {
		name, frame string
		code        protocol.ErrorCode
	}{
		{"not JSON", `{`, protocol.CodeInvalidJSON},
		{"JSON array", `[1,2]`, protocol.CodeInvalidJSON},
		{"JSON string", `"subscribe"`, protocol.CodeInvalidJSON},
		{"trailing data", `{"type":"ping"} {}`, protocol.CodeInvalidJSON},
		{"empty object", `{}`, protocol.CodeInvalidFrame},
		{"unknown type", `{"type":"publish","channel":"a"}`, protocol.CodeUnknownType},
		{"unknown field", `{"type":"ping","extra":1}`, protocol.CodeInvalidFrame},
		{"field of wrong type", `{"type":"subscribe","channel":5}`, protocol.CodeInvalidFrame},
		{"object id", `{"type":"ping","id":{"a":1}}`, protocol.CodeInvalidFrame},
		{"long id", `{"type":"ping","id":"` + strings.Repeat("x", 80) + `"}`, protocol.CodeInvalidFrame},
		{"bad channel", `{"type":"subscribe","channel":"a\nb"}`, protocol.CodeBadChannel},
		{"missing channel", `{"type":"unsubscribe"}`, protocol.CodeBadChannel},
		{"bad cursor", `{"type":"subscribe","channel":"a","since":"not-a-cursor!"}`, protocol.CodeBadCursor},
		{"auth without token", `{"type":"auth"}`, protocol.CodeInvalidFrame},
		{"re-auth with forged token", `{"type":"auth","token":"` + forged + `"}`, protocol.CodeUnauthorized},
		{"re-auth with garbage token", `{"type":"auth","token":"x.y.z"}`, protocol.CodeUnauthorized},
		{"re-auth with expired token", `{"type":"auth","token":"` + expiredToken(t, v) + `"}`, protocol.CodeTokenExpired},
		{"unsubscribe unknown channel", `{"type":"unsubscribe","channel":"never"}`, protocol.CodeNotSubscribed},
	}
	r := connect(t, n.url, issue(t, v, "f", "p", time.Hour))
	for _, tc := range cases {
		r.sendText(tc.frame)
		f := r.next()
		testutil.Check(t, tc.name+": frame type", protocol.FrameError, f.Type)
		testutil.Check(t, tc.name+": error code", tc.code, f.Code)
		if f.Message == "" {
			t.Errorf("%s: error frame without a message", tc.name)
		}
	}

	// Binary frames are refused the same way.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.ws.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	testutil.Check(t, "binary frame: error code", protocol.CodeInvalidFrame, r.next().Code)

	// State errors: a second subscribe to a channel, and one channel too many.
	for _, ch := range []string{"a", "a", "b", "c"} {
		r.send(map[string]any{"type": "subscribe", "channel": ch})
	}
	type reply struct {
		Type protocol.FrameType
		Code protocol.ErrorCode
	}
	want := []reply{
		{Type: protocol.FrameSubscribed},
		{Type: protocol.FrameError, Code: protocol.CodeAlreadySubscribed},
		{Type: protocol.FrameSubscribed},
		{Type: protocol.FrameError, Code: protocol.CodeTooManyChannels},
	}
	for i, w := range want {
		f := r.next()
		testutil.Check(t, "reply to subscribe "+itoa(i), w, reply{Type: f.Type, Code: f.Code})
	}

	// After all that the socket still works.
	r.send(map[string]any{"type": "ping"})
	testutil.Equal(t, "reply to ping", protocol.FramePong, r.next().Type)
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
	testutil.Equal(t, "status of a plain GET", http.StatusUpgradeRequired, resp.StatusCode)
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
