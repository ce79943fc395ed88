//go:build integration

package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/handoff-health/handoff/client"
	"github.com/handoff-health/handoff/internal/testutil"
)

// ablyJSKey is an Ably-shaped key (appId.keyId:secret); ably-js checks
// that shape and forbids "." in the secret.
const ablyJSKey = "handoff.ablyjs:ablyjs-secret-0123456789"

// runAblyJS runs one of testdata/ablyjs's scenarios (scenario "rest":
// rest-scenarios.mjs, "realtime": realtime-scenarios.mjs) through run.mjs
// with a released ably-js version against port, and decodes its
// {"result":…} line into out. A scenario may ask the test to act
// ({"control":name} lines, answered on its stdin once actions[name] has
// run).
func runAblyJS(t *testing.T, port int, scenario, version, format, channel string, actions map[string]func(), out any) {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("testdata", "ablyjs", "run.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testutil.Node(t), abs)
	cmd.Env = append(os.Environ(), "SCENARIO="+scenario,
		"ABLY_JS="+testutil.AblyJS(t, version), "HANDOFF_PORT="+fmt.Sprint(port), "ABLY_KEY="+ablyJSKey,
		"CHANNEL="+channel, "FORMAT="+format)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &testutil.LogBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var result json.RawMessage
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var line struct {
			Control string          `json:"control"`
			Result  json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Errorf("ably-js printed %q", sc.Text())
			continue
		}
		if line.Result != nil {
			result = line.Result
			continue
		}
		act, ok := actions[line.Control]
		if !ok {
			t.Errorf("ably-js asked for an unknown action %q", line.Control)
		} else {
			act()
		}
		if _, err := io.WriteString(stdin, "done\n"); err != nil {
			t.Errorf("answering %s: %v", line.Control, err)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ably-js %s %s: %v\nstderr:\n%s", version, scenario, err, stderr.String())
	}
	if result == nil {
		t.Fatalf("ably-js %s %s printed no result (stderr %s)", version, scenario, stderr.String())
	}
	if err := json.Unmarshal(result, out); err != nil {
		t.Fatalf("result %s: %v", result, err)
	}
}

type jsErr struct {
	Code       int    `json:"code"`
	StatusCode int    `json:"statusCode"`
	Message    string `json:"message"`
}

type jsMsg struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Data      json.RawMessage `json:"data"`
	Serial    string          `json:"serial"`
	Timestamp int64           `json:"timestamp"`
}

// startAblyJSNode starts a dev node whose publish API takes ablyJSKey,
// and returns it with a desktop token.
func startAblyJSNode(t *testing.T) (*node, string) {
	t.Helper()
	cfg := devConfig(t)
	cfg.APIKeys = ablyJSKey
	n := startNode(t, cfg)
	return n, n.devToken()
}

// TestAblyJSREST: each released ably-js version, unmodified, in Node, uses
// a node's Ably REST API: time, publish (what the desktop receives),
// history both ways with pagination, a token with a narrower capability,
// token renewal through authCallback, and a refused key with Ably's error
// code (not NaN).
func TestAblyJSREST(t *testing.T) {
	t.Parallel()
	n, jwt := startAblyJSNode(t)
	for _, version := range testutil.AblyJSVersions {
		for _, format := range []string{"json", "msgpack"} {
			t.Run(version+"/"+format, func(t *testing.T) {
				s := n.createSession(jwt, "enc-ablyjs-"+version+"-"+format)
				desktop := n.realtime(t, jwt)
				if err := desktop.Subscribe(s.Channel, ""); err != nil {
					t.Fatal(err)
				}
				testutil.Next(t, desktop, client.KindSubscribed)

				var got restResult
				before := time.Now()
				runAblyJS(t, n.port, "rest", version, format, s.Channel, nil, &got)
				checkREST(t, desktop, s.Channel, before, got)
			})
		}
	}
}

func names(ms []jsMsg) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return out
}

// restResult is what rest-scenarios.mjs returns.
type restResult struct {
	Time struct {
		MS    int64  `json:"ms"`
		Error *jsErr `json:"error"`
	} `json:"time"`
	Publish struct {
		OK    bool   `json:"ok"`
		Error *jsErr `json:"error"`
	} `json:"publish"`
	HistoryForwards  json.RawMessage `json:"historyForwards"`
	HistoryBackwards json.RawMessage `json:"historyBackwards"`
	Token            struct {
		Refused *jsErr `json:"refused"`
		Error   *jsErr `json:"error"`
	} `json:"token"`
	Renewal struct {
		Calls int    `json:"calls"`
		Error *jsErr `json:"error"`
	} `json:"renewal"`
	BadKey struct {
		Published bool   `json:"published"`
		Refused   *jsErr `json:"refused"`
	} `json:"badKey"`
}

// checkREST asserts on what rest-scenarios.mjs returned and on what the
// desktop subscribed to channel received meanwhile.
func checkREST(t *testing.T, desktop *client.Client, channel string, before time.Time, got restResult) {
	t.Helper()
	if got.Time.Error != nil {
		t.Errorf("time: %+v", *got.Time.Error)
	} else if d := time.Since(time.UnixMilli(got.Time.MS)); d < -time.Minute || d > time.Minute {
		t.Errorf("time: %d ms is %v from now", got.Time.MS, d)
	}
	if got.Publish.Error != nil || !got.Publish.OK {
		t.Fatalf("publish: %+v", got.Publish.Error)
	}

	// What the desktop saw, in order, each once.
	want := []struct{ typ, data string }{
		{"note", `{"n":1,"text":"from ably-js"}`},
		{"ping", `"two"`},
		{"third", `"three"`},
		{"by-token", `{"via":"token"}`},
		{"renew-1", `"first token"`},
		{"renew-2", `"second token"`},
	}
	ids := make([]string, 0, len(want))
	for i, w := range want {
		ev := testutil.NextEvent(t, desktop, channel)
		testutil.Check(t, fmt.Sprintf("event %d type", i), w.typ, ev.Type)
		if !jsonEqual(ev.Data, w.data) {
			t.Errorf("event %d (%s) data %s, want %s", i, ev.Type, ev.Data, w.data)
		}
		ids = append(ids, ev.ID)
	}

	var fwd []jsMsg
	if err := json.Unmarshal(got.HistoryForwards, &fwd); err != nil {
		t.Fatalf("history forwards: %s", got.HistoryForwards)
	}
	testutil.Check(t, "forwards history names (3 pages of limit 2)", []string{"note", "ping", "third"}, names(fwd))
	for i, m := range fwd {
		if i < len(ids) {
			testutil.Check(t, fmt.Sprintf("history %d serial = the desktop's cursor", i), ids[i], m.Serial)
		}
		if m.ID == "" {
			t.Errorf("history %d has no id", i)
		}
		if ts := time.UnixMilli(m.Timestamp); ts.Before(before.Add(-time.Second)) || ts.After(time.Now().Add(time.Second)) {
			t.Errorf("history %d timestamp %v outside the run", i, ts)
		}
	}
	if len(fwd) > 0 && !jsonEqual(fwd[0].Data, `{"n":1,"text":"from ably-js"}`) {
		t.Errorf("history: JSON data came back as %s, want the object", fwd[0].Data)
	}
	var back []jsMsg
	if err := json.Unmarshal(got.HistoryBackwards, &back); err != nil {
		t.Fatalf("history backwards: %s", got.HistoryBackwards)
	}
	// Taken right after "third": newest first, all three pages.
	testutil.Check(t, "backwards history names", []string{"third", "ping", "note"}, names(back))

	if got.Token.Error != nil {
		t.Errorf("token: %+v", *got.Token.Error)
	} else if r := got.Token.Refused; r == nil || r.Code != 40160 || r.StatusCode != 401 {
		t.Errorf("publish outside the token's capability: %+v, want 40160/401", r)
	}
	if got.Renewal.Error != nil {
		t.Errorf("renewal: %+v", *got.Renewal.Error)
	} else if got.Renewal.Calls < 2 {
		t.Errorf("authCallback called %d times, want a renewal after the 1.5 s token expired", got.Renewal.Calls)
	}
	if r := got.BadKey.Refused; got.BadKey.Published || r == nil || r.StatusCode != 401 || r.Code < 40100 || r.Code > 40199 {
		t.Errorf("wrong secret: published %v, error %+v; want an Ably 401 with a 401xx code", got.BadKey.Published, r)
	}
}
