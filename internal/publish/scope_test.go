package publish

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/ably/ably-go/ably"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/testutil"
)

// errorCode reads the error code of a JSON error reply and closes it.
func errorCode(t *testing.T, resp *http.Response) int {
	t.Helper()
	defer resp.Body.Close()
	var body struct {
		Error struct {
			Code    int
			Message string
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Errorf("undecodable error body: %v", err)
		return 0
	}
	if body.Error.Message == "" {
		t.Errorf("error %d without a message", body.Error.Code)
	}
	return body.Error.Code
}

func (r *rig) historyLen(t *testing.T, channel string) int {
	t.Helper()
	evs, _, err := r.backend.History(context.Background(), channel, hub.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

// TestServerEventNamesRefused is issue 13's reproduction: any key could
// publish image.added, image.committed and session.committed on a
// facility's session channel, and the desktop showed "Filed" for it. Every
// name in the server's namespaces is now refused, for every key, on every
// channel, and nothing of the request is published.
func TestServerEventNamesRefused(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{})
	const channel = "session:7c1e0a4e-0000-4000-8000-000000000001"
	names := []string{
		"image.added", "image.removed", "image.committed", "image.commit_failed",
		"session.committed", "session.expired", "mobile.connected", "image.anything-new",
	}
	for _, name := range names {
		body := `[{"name":"` + name + `","data":{"sessionId":"x","imageId":"i1","alexId":"Media/forged"}}]`
		resp := r.post(t, "/channels/"+channel+"/messages", body, keyName, keySecret)
		testutil.Check(t, name+": status", http.StatusForbidden, resp.StatusCode)
		testutil.Check(t, name+": error code", 40300, errorCode(t, resp))
		// On any channel: the rule is about the name.
		resp = r.post(t, "/channels/bench:1/messages", body, benchKey, benchSecret)
		testutil.Check(t, name+" on bench:1: status", http.StatusForbidden, resp.StatusCode)
		resp.Body.Close()
	}
	// One reserved name spoils its batch.
	resp := r.post(t, "/channels/"+channel+"/messages", `[{"name":"note"},{"name":"session.committed"}]`, keyName, keySecret)
	testutil.Check(t, "batch with a reserved name: status", http.StatusForbidden, resp.StatusCode)
	resp.Body.Close()
	testutil.Check(t, "events published on "+channel, 0, r.historyLen(t, channel))
	testutil.Check(t, "events published on bench:1", 0, r.historyLen(t, "bench:1"))

	// Through the real ably-go client too: a clear error, not a retry loop.
	err := r.ably(t, keyName+":"+keySecret).Channels.Get(channel).Publish(context.Background(), "image.committed", map[string]any{"imageId": "i1"})
	var ae *ably.ErrorInfo
	if !errors.As(err, &ae) {
		t.Fatalf("ably-go: err = %v, want an *ably.ErrorInfo", err)
	}
	testutil.Equal(t, "ably-go ErrorInfo status", http.StatusForbidden, ae.StatusCode)

	// Names outside the namespaces still pass on the session channel.
	resp = r.post(t, "/channels/"+channel+"/messages", `{"name":"images"}`, keyName, keySecret)
	testutil.Check(t, "name images: status", http.StatusCreated, resp.StatusCode)
	resp.Body.Close()
}

// TestKeyCapabilities: a key publishes only where its capability grants
// "publish"; a key with no capability of its own may publish anywhere.
func TestKeyCapabilities(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{})
	cases := []struct {
		name, key, secret, channel string
		status                     int
		code                       int
	}{
		{"unrestricted key, session channel", keyName, keySecret, "session:abc", http.StatusCreated, 0},
		{"unrestricted key, any channel", keyName, keySecret, "anything", http.StatusCreated, 0},
		{"bench key in its namespace", benchKey, benchSecret, "bench:1", http.StatusCreated, 0},
		{"bench key deeper in its namespace", benchKey, benchSecret, "bench:1:2", http.StatusCreated, 0},
		{"bench key on a session", benchKey, benchSecret, "session:abc", http.StatusUnauthorized, 40160},
		{"bench key on the bare namespace", benchKey, benchSecret, "bench", http.StatusUnauthorized, 40160},
		{"bench key on a look-alike", benchKey, benchSecret, "benchmark:1", http.StatusUnauthorized, 40160},
		{"subscribe-only key", readerKey, readerSecret, "bench:1", http.StatusUnauthorized, 40160},
		{"bench key, wrong secret", benchKey, keySecret, "bench:1", http.StatusUnauthorized, 40101},
	}
	published := map[string]int{}
	for _, tc := range cases {
		resp := r.post(t, "/channels/"+tc.channel+"/messages", `{"name":"note","data":"x"}`, tc.key, tc.secret)
		testutil.Check(t, tc.name+": status", tc.status, resp.StatusCode)
		if tc.code == 0 {
			resp.Body.Close()
			published[tc.channel]++
			continue
		}
		testutil.Check(t, tc.name+": error code", tc.code, errorCode(t, resp))
	}
	for _, ch := range []string{"session:abc", "anything", "bench:1", "bench:1:2", "bench", "benchmark:1"} {
		testutil.Check(t, "events on "+ch, published[ch], r.historyLen(t, ch))
	}

	err := r.ably(t, benchKey+":"+benchSecret).Channels.Get("session:abc").Publish(context.Background(), "note", "x")
	var ae *ably.ErrorInfo
	if !errors.As(err, &ae) {
		t.Fatalf("ably-go: err = %v, want an *ably.ErrorInfo", err)
	}
	testutil.Equal(t, "ably-go ErrorInfo status", http.StatusUnauthorized, ae.StatusCode)
}
