package fanout

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/testutil"
)

// spreadPublisher is a publisher of case C′ over channels, built without
// a connection (newPublisher dials).
func spreadPublisher(server string, batch int, channels []string, subs []int) *publisher {
	p := &publisher{batch: batch, spread: true, id: 7, subs: subs, centrifugo: server == ServerCentrifugo}
	for _, ch := range channels {
		b, _ := json.Marshal(ch)
		p.chanJSON = append(p.chanJSON, b)
	}
	return p
}

type benchData struct {
	T int64  `json:"t"`
	R int64  `json:"r"`
	S string `json:"s"`
}

// TestSpreadBodies: a spread request carries one message to each of
// --batch consecutive channels (wrapping around), each message with its
// own data (scheduled time, request start, unique id): handoff as an
// array of Ably batch specs, Centrifugo as /api/batch publish commands.
func TestSpreadBodies(t *testing.T) {
	t.Parallel()
	channels := []string{"bench:0", "bench:1", `bench:"2"`, "bench:3"}
	j := job{channel: 2, sched: 111}
	wantChannels := []string{`bench:"2"`, "bench:3", "bench:0"}
	wantData := []benchData{{111, 222, "7.1"}, {111, 222, "7.2"}, {111, 222, "7.3"}}

	p := spreadPublisher(ServerHandoff, 3, channels, nil)
	p.buildBody(j, 222)
	var specs []struct {
		Channels string `json:"channels"`
		Messages struct {
			Name string    `json:"name"`
			Data benchData `json:"data"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(p.body, &specs); err != nil {
		t.Fatalf("handoff body %s: %v", p.body, err)
	}
	var gotChannels []string
	var gotData []benchData
	for _, s := range specs {
		gotChannels = append(gotChannels, s.Channels)
		gotData = append(gotData, s.Messages.Data)
		testutil.Equal(t, "handoff message name", "bench", s.Messages.Name)
	}
	testutil.Equal(t, "handoff spec channels", wantChannels, gotChannels)
	testutil.Equal(t, "handoff message data", wantData, gotData)

	p = spreadPublisher(ServerCentrifugo, 3, channels, nil)
	p.buildBody(j, 222)
	var batch struct {
		Commands []struct {
			Publish struct {
				Channel string    `json:"channel"`
				Data    benchData `json:"data"`
			} `json:"publish"`
		} `json:"commands"`
	}
	if err := json.Unmarshal(p.body, &batch); err != nil {
		t.Fatalf("centrifugo body %s: %v", p.body, err)
	}
	gotChannels, gotData = nil, nil
	for _, c := range batch.Commands {
		gotChannels = append(gotChannels, c.Publish.Channel)
		gotData = append(gotData, c.Publish.Data)
	}
	testutil.Equal(t, "centrifugo command channels", wantChannels, gotChannels)
	testutil.Equal(t, "centrifugo command data", wantData, gotData)

	// One message spread is still a batch request: one spec, one command.
	p = spreadPublisher(ServerHandoff, 1, channels, nil)
	p.buildBody(job{channel: 1, sched: 5}, 6)
	testutil.Equal(t, "handoff, one spec", `[{"channels":"bench:1","messages":{"name":"bench","data":{"t":5,"r":6,"s":"7.1"}}}]`, string(p.body))
}

// TestSpreadDeliveries: a spread request obliges one delivery per
// subscriber of each channel it covers.
func TestSpreadDeliveries(t *testing.T) {
	t.Parallel()
	p := spreadPublisher(ServerHandoff, 3, []string{"a", "b", "c", "d"}, []int{1, 2, 3, 4})
	testutil.Equal(t, "channels 3, 0, 1", 4+1+2, p.deliveries(job{channel: 3}))
	p.spread = false
	testutil.Equal(t, "three messages to channel 3", 3*4, p.deliveries(job{channel: 3}))
}

func TestBatchReplyError(t *testing.T) {
	t.Parallel()
	ok := `[{"successCount":1,"failureCount":0,"results":[{"channel":"a","messageId":"x","serials":["x"]}]},` +
		`{"successCount":1,"failureCount":0,"results":[{"channel":"b","messageId":"y","serials":["y"]}]}]`
	testutil.Equal(t, "all published", nil, batchReplyError([]byte(ok), 2))
	refused := strings.Replace(ok, `"successCount":1,"failureCount":0`, `"successCount":0,"failureCount":1`, 1)
	testutil.Equal(t, "one refused", error(batchFailures(1)), batchReplyError([]byte(refused), 2))
	testutil.Equal(t, "fewer results than specs", error(batchFailures(1)), batchReplyError([]byte(ok), 3))
	testutil.Equal(t, "not a batch reply", error(batchFailures(2)), batchReplyError([]byte(`{"error":{}}`), 2))
}

// TestRunSpreadAgainstANode: case C′ against a real node: every message of
// every spread request reaches every subscriber of its own channel, in
// order, and is measured.
func TestRunSpreadAgainstANode(t *testing.T) {
	url := startNode(t)
	c := FanoutConfig{
		Target:  Target{Server: ServerHandoff, Format: "json", URL: url, APIKey: runAPIKey, JWTSecret: testSecret, SourceIPs: 1, DialConcurrency: 8},
		Sockets: 10, Channels: 5, Rate: 100, Batch: 3, BatchSpread: true, Publishers: 2,
		Warmup: 100 * time.Millisecond, Duration: 500 * time.Millisecond, Drain: 10 * time.Second,
	}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	res, err := RunFanout(context.Background(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := res.Deliveries
	if !res.OK || d.Received != d.Expected || res.Latency.Count == 0 || res.Integrity.Unordered != 0 {
		t.Fatalf("want every delivery received, in order, and measured: %+v %+v %+v", d, res.Integrity, res.Publishes)
	}
	testutil.Equal(t, "2 subscribers per channel", 2*res.Publishes.Messages, d.Expected)
	testutil.Equal(t, "3 messages per request", 3*res.Publishes.Requests, res.Publishes.Messages)
	if !res.BatchSpread {
		t.Fatal("the result does not say the batch was spread")
	}
}

// TestRunSpreadAgainstACentrifugo: the same through /api/batch.
func TestRunSpreadAgainstACentrifugo(t *testing.T) {
	tiny, srv := newTinyCentrifugo(t)
	c, err := ParseFanout([]string{"--server", "centrifugo", "--target", srv.URL, "--jwt-secret", testSecret,
		"--api-key", tiny.apiKey, "--sockets", "8", "--channels", "4", "--rate", "200", "--batch", "4", "--batch-spread",
		"--publishers", "2", "--warmup", "100ms", "--duration", "400ms", "--source-ips", "1"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	res, err := RunFanout(context.Background(), c, &progress)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if !res.OK || res.Publishes.Messages == 0 {
		t.Fatalf("run not clean: %+v", res)
	}
	testutil.Equal(t, "every message reached its 2 subscribers", res.Publishes.Messages*2, res.Deliveries.Received)
	testutil.Equal(t, "4 messages per request", 4*res.Publishes.Requests, res.Publishes.Messages)
}
