package publish

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ably/ably-go/ably"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/testutil"
)

// batchReply posts body to /messages as key and decodes the 201 reply into
// out.
func (r *rig) batch(t *testing.T, body, user, pass string, out any) {
	t.Helper()
	resp := r.post(t, "/messages", body, user, pass)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("batch publish: status %d, code %d", resp.StatusCode, errorCode(t, resp))
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

// historyOf returns the events of channel as stored values.
func (r *rig) historyOf(t *testing.T, channel string) []stored {
	t.Helper()
	evs, _, err := r.backend.History(context.Background(), channel, hub.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]stored, len(evs))
	for i, ev := range evs {
		out[i] = storedOf(ev)
	}
	return out
}

// TestBatchPublish runs with the workers of a Redis node and with the one
// worker of a memory node (Config.BatchWorkers): the results are the same.
func TestBatchPublish(t *testing.T) {
	t.Parallel()
	for _, workers := range []int{0, 1} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			t.Parallel()
			testBatchPublish(t, newRig(t, Config{BatchWorkers: workers}))
		})
	}
}

func testBatchPublish(t *testing.T, r *rig) {

	// One spec: the same two messages to two channels.
	var one batchResult
	r.batch(t, `{"channels":["session:a","session:b"],"messages":[{"name":"n1","data":{"k":1}},{"name":"n2","data":"two"}]}`,
		keyName, keySecret, &one)
	testutil.Equal(t, "counts", [2]int{2, 0}, [2]int{one.SuccessCount, one.FailureCount})
	for i, ch := range []string{"session:a", "session:b"} {
		res := one.Results[i]
		testutil.Equal(t, "result channel", ch, res.Channel)
		evs, _, err := r.backend.History(context.Background(), ch, hub.Cursor{})
		noErr(t, err)
		testutil.Equal(t, "serials of "+ch+" (its events' cursors)", []string{evs[0].ID, evs[1].ID}, res.Serials)
		testutil.Equal(t, "messageId of "+ch, evs[0].ID, res.MessageID)
		testutil.Equal(t, "events of "+ch, []stored{{ch, "n1", `{"k":1}`}, {ch, "n2", `"two"`}}, r.historyOf(t, ch))
	}

	// An array of specs, with a lone channel name and a lone message: an
	// array of results, one per spec in order. A channel named twice gets
	// its messages in request order.
	var many []batchResult
	r.batch(t, `[{"channels":"session:c","messages":{"name":"x"}},
		{"channels":["session:d","session:c"],"messages":[{"name":"y","encoding":"json","data":"{\"j\":true}"}]}]`,
		keyName, keySecret, &many)
	testutil.Equal(t, "results per spec", 2, len(many))
	testutil.Equal(t, "spec 1 channels", []string{"session:d", "session:c"}, []string{many[1].Results[0].Channel, many[1].Results[1].Channel})
	testutil.Equal(t, "events of session:c", []stored{{"session:c", "x", "undecodable: "}, {"session:c", "y", `{"j":true}`}}, r.historyOf(t, "session:c"))
	testutil.Equal(t, "events of session:d", []stored{{"session:d", "y", `{"j":true}`}}, r.historyOf(t, "session:d"))

	// Capability is per channel: the bench key may publish on bench:* only.
	var partial batchResult
	r.batch(t, `{"channels":["bench:1","session:e"],"messages":{"name":"z"}}`, benchKey, benchSecret, &partial)
	testutil.Equal(t, "counts with one channel refused", [2]int{1, 1}, [2]int{partial.SuccessCount, partial.FailureCount})
	testutil.Equal(t, "refused channel's error", ablyproto.ErrorInfo{Message: "these credentials may not publish on this channel",
		Code: ablyproto.CodeCapability, StatusCode: http.StatusUnauthorized, HRef: "https://help.ably.io/error/40160"}, *partial.Results[1].Error)
	testutil.Equal(t, "events on the refused channel", 0, r.historyLen(t, "session:e"))
	testutil.Equal(t, "events on the allowed channel", 1, r.historyLen(t, "bench:1"))

	// A retry with the same message ids publishes nothing new and gets the
	// first serials.
	body := `{"channels":["session:f","session:g"],"messages":[{"id":"m:0","name":"a"},{"id":"m:1","name":"b"}]}`
	var first, retry batchResult
	r.batch(t, body, keyName, keySecret, &first)
	r.batch(t, body, keyName, keySecret, &retry)
	testutil.Equal(t, "the retry's results", first, retry)
	testutil.Equal(t, "events after a retry", [2]int{2, 2}, [2]int{r.historyLen(t, "session:f"), r.historyLen(t, "session:g")})
}

// TestBatchPublishRefusals: bad input is refused whole with an Ably error,
// and nothing of the request is published, not even its valid specs.
func TestBatchPublishRefusals(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{MaxMessages: 3})
	valid := `{"channels":["session:ok"],"messages":{"name":"fine"}}`
	tooMany := make([]string, 1001)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf(`"c%d"`, i)
	}
	cases := []struct {
		name, body   string
		status, code int
	}{
		{"not JSON", `{"channels":`, 400, ablyproto.CodeBadRequest},
		{"not a spec", `"hello"`, 400, ablyproto.CodeBadRequest},
		{"no specs", `[]`, 400, ablyproto.CodeBadRequest},
		{"no channels", `[` + valid + `,{"messages":{"name":"a"}}]`, 400, ablyproto.CodeBadRequest},
		{"empty channels", `[` + valid + `,{"channels":[],"messages":{"name":"a"}}]`, 400, ablyproto.CodeBadRequest},
		{"a bad channel name", `[` + valid + `,{"channels":["ok","[bad channel"],"messages":{"name":"a"}}]`, 400, ablyproto.CodeChannelInvalid},
		{"a channel of the wrong type", `[` + valid + `,{"channels":[7],"messages":{"name":"a"}}]`, 400, ablyproto.CodeBadRequest},
		{"no messages", `[` + valid + `,{"channels":["ok"]}]`, 400, ablyproto.CodeBadRequest},
		{"a message with an action", `[` + valid + `,{"channels":["ok"],"messages":[{"name":"a"},{"name":"b","action":2}]}]`, 400, ablyproto.CodeBadRequest},
		{"the same message id twice", `[` + valid + `,{"channels":["ok"],"messages":[{"id":"x","name":"a"},{"id":"x","name":"b"}]}]`, 400, ablyproto.CodeInvalidMessageID},
		{"a name of the wrong type", `[` + valid + `,{"channels":["ok"],"messages":[{"name":5}]}]`, 400, ablyproto.CodeBadRequest},
		{"a server event name", `[` + valid + `,{"channels":["ok"],"messages":{"name":"image.added"}}]`, 403, ablyproto.CodeForbidden},
		{"a message id with a space", `[` + valid + `,{"channels":["ok"],"messages":{"id":"a b:0","name":"a"}}]`, 400, ablyproto.CodeBadRequest},
		{"binary data", `[` + valid + `,{"channels":["ok"],"messages":{"name":"a","encoding":"base64","data":"AA=="}}]`, 400, ablyproto.CodeBadRequest},
		{"too many messages in a spec", `[` + valid + `,{"channels":["ok"],"messages":[{"name":"a"},{"name":"a"},{"name":"a"},{"name":"a"}]}]`, 413, ablyproto.CodeTooLarge},
		{"too many channels", `[` + valid + `,{"channels":[` + strings.Join(tooMany, ",") + `],"messages":{"name":"a"}}]`, 413, ablyproto.CodeTooLarge},
		{"too many publishes in all", `[` + valid + `,{"channels":[` + strings.Join(tooMany[:500], ",") + `],"messages":[{"name":"a"},{"name":"b"}]}]`, 413, ablyproto.CodeTooLarge},
	}
	for _, tc := range cases {
		resp := r.post(t, "/messages", tc.body, keyName, keySecret)
		testutil.Check(t, tc.name+": status", tc.status, resp.StatusCode)
		testutil.Check(t, tc.name+": code", tc.code, errorCode(t, resp))
	}
	resp := r.post(t, "/messages", valid, "", "")
	testutil.Check(t, "no credentials: status", http.StatusUnauthorized, resp.StatusCode)
	testutil.Check(t, "no credentials: code", ablyproto.CodeUnauthorized, errorCode(t, resp))
	resp = r.post(t, "/messages", valid, keyName, "wrong")
	testutil.Check(t, "a wrong secret: code", ablyproto.CodeInvalidCredentials, errorCode(t, resp))

	req, _ := http.NewRequest(http.MethodPost, r.url+"/messages", strings.NewReader("\x81"))
	req.Header.Set("Content-Type", "application/x-msgpack")
	req.SetBasicAuth(keyName, keySecret)
	resp, err := http.DefaultClient.Do(req)
	noErr(t, err)
	testutil.Check(t, "truncated msgpack: status", http.StatusBadRequest, resp.StatusCode)
	resp.Body.Close()

	req, _ = http.NewRequest(http.MethodPost, r.url+"/messages", strings.NewReader(valid))
	req.Header.Set("Content-Type", "text/plain")
	req.SetBasicAuth(keyName, keySecret)
	resp, err = http.DefaultClient.Do(req)
	noErr(t, err)
	testutil.Check(t, "a body neither JSON nor msgpack: status", http.StatusUnsupportedMediaType, resp.StatusCode)
	resp.Body.Close()

	for _, ch := range []string{"session:ok", "ok", "c0"} {
		testutil.Equal(t, "events on "+ch+" after refused requests", 0, r.historyLen(t, ch))
	}
}

// TestAblyGoBatchPublish: the real ably-go client's generic request, the
// way Ably documents batch publishing from Go, publishes and reads the
// results.
func TestAblyGoBatchPublish(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{})
	c := r.ably(t, keyName+":"+keySecret)
	ctx := context.Background()
	spec := []map[string]any{{"channels": []string{"session:x", "session:y"}, "messages": []map[string]any{{"name": "note", "data": "hi"}}}}
	resp, err := c.Request("post", "/messages", ably.RequestWithBody(spec)).Pages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "success", true, resp.Success())
	testutil.Equal(t, "status", http.StatusCreated, resp.StatusCode())
	var results []batchResult
	testutil.Equal(t, "a page of results", true, resp.Next(ctx))
	noErr(t, resp.Items(&results))
	testutil.Equal(t, "results", 1, len(results))
	testutil.Equal(t, "counts", [2]int{2, 0}, [2]int{results[0].SuccessCount, results[0].FailureCount})
	for _, ch := range []string{"session:x", "session:y"} {
		testutil.Equal(t, "events of "+ch, []stored{{ch, "note", `"hi"`}}, r.historyOf(t, ch))
	}

	// ably-go's default binary protocol sends the specs as msgpack.
	bin, err := ably.NewREST(ably.WithKey(keyName+":"+keySecret), ably.WithEndpoint("127.0.0.1"), ably.WithPort(r.port),
		ably.WithTLS(false), ably.WithInsecureAllowBasicAuthWithoutTLS())
	noErr(t, err)
	spec[0]["channels"] = []string{"session:z"}
	resp, err = bin.Request("post", "/messages", ably.RequestWithBody(spec)).Pages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "msgpack batch status", http.StatusCreated, resp.StatusCode())
	testutil.Equal(t, "events of session:z", []stored{{"session:z", "note", `"hi"`}}, r.historyOf(t, "session:z"))
}
