package fanout

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/internal/testutil"
)

// messageFrame is a MESSAGE as handoff's Ably socket sends it for an event
// whose data is the bench's object: the same ablyproto mapping and codec.
func messageFrame(t *testing.T, f ablyproto.Format, serial string, data string) []byte {
	t.Helper()
	return messageFrames(t, f, serial, data)[0]
}

// messageFrames is one event's MESSAGE frame as each of handoff's
// encoders writes it: ablyproto.EncodeEventFrame (what ablyrt sends for
// such an event) and ablyproto.Encode (its fallback).
func messageFrames(t *testing.T, f ablyproto.Format, serial string, data string) [][]byte {
	t.Helper()
	ts := time.UnixMilli(1753000000123)
	fast, ok := ablyproto.EncodeEventFrame(f, "session:c1", serial, serial, "bench", json.RawMessage(data), ts, ablyproto.Origin{})
	if !ok {
		t.Fatalf("EncodeEventFrame declined %s", data)
	}
	m := ablyproto.EventMessage(serial, "bench", json.RawMessage(data), ts, ablyproto.Origin{}).Realtime()
	b, err := ablyproto.Encode(f, &ablyproto.ProtocolMessage{Action: ablyproto.ActionMessage, Channel: "session:c1",
		ChannelSerial: serial, Messages: []ablyproto.RealtimeMessage{m}})
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{fast, b}
}

func frame(t *testing.T, f ablyproto.Format, pm *ablyproto.ProtocolMessage) []byte {
	t.Helper()
	b, err := ablyproto.Encode(f, pm)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAblyFrameRecordsDeliveriesInBothFormats(t *testing.T) {
	for _, f := range []ablyproto.Format{ablyproto.FormatJSON, ablyproto.FormatMsgpack} {
		t.Run(f.String(), func(t *testing.T) {
			rc := newReceiver()
			rc.measureFrom.Store(0)
			s := &socket{rc: rc, ably: true, format: f}
			now := int64(5_000_000_000)
			// Two messages in order, one with padding, then a repeat and a gap.
			s.ablyFrame(now, messageFrame(t, f, "ep1-1", `{"t":4000000000,"r":4500000000,"s":"0.1"}`))
			s.ablyFrame(now, messageFrame(t, f, "ep1-2", `{"t":4000000000,"r":4500000000,"s":"0.2","p":"xxxx"}`))
			s.ablyFrame(now, messageFrame(t, f, "ep1-2", `{"t":4000000000,"r":4500000000,"s":"0.2"}`))
			s.ablyFrame(now, messageFrame(t, f, "ep1-4", `{"t":4000000000,"r":4500000000,"s":"0.4"}`))
			testutil.Equal(t, "received", uint64(4), rc.received.Load())
			testutil.Equal(t, "measured", uint64(4), rc.measured.Load())
			testutil.Equal(t, "duplicates", uint64(1), rc.dups.Load())
			testutil.Equal(t, "gaps", uint64(1), rc.gaps.Load())
			testutil.Equal(t, "malformed", uint64(0), rc.malformed.Load())
			snap := rc.latency.Snapshot().Summary()
			if snap.Count != 4 || snap.P50 < 999 || snap.P50 > 1001 {
				t.Fatalf("latency from scheduled send: want 4 samples of 1000 ms, got %+v", snap)
			}
			snap = rc.fromRequest.Snapshot().Summary()
			if snap.P50 < 499 || snap.P50 > 501 {
				t.Fatalf("latency from request start: want 500 ms, got %+v", snap)
			}

			// Heartbeats are ignored; a re-ATTACHED is a resync; errors count.
			s.ablyFrame(now, frame(t, f, &ablyproto.ProtocolMessage{Action: ablyproto.ActionHeartbeat}))
			s.ablyFrame(now, frame(t, f, &ablyproto.ProtocolMessage{Action: ablyproto.ActionAttached, Channel: "session:c1", ChannelSerial: "ep1-9"}))
			s.ablyFrame(now, frame(t, f, &ablyproto.ProtocolMessage{Action: ablyproto.ActionDisconnected,
				Error: &ablyproto.ErrorInfo{Code: ablyproto.CodeDisconnected, StatusCode: 503, Message: "slow consumer"}}))
			s.ablyFrame(now, frame(t, f, &ablyproto.ProtocolMessage{Action: ablyproto.ActionError}))
			testutil.Equal(t, "resyncs", uint64(1), rc.resyncs.Load())
			testutil.Equal(t, "error frames", uint64(2), rc.errorFrames.Load())
			testutil.Equal(t, "received after control frames", uint64(4), rc.received.Load())
		})
	}
}

func TestAblyFrameCountsWhatItCannotRead(t *testing.T) {
	for _, f := range []ablyproto.Format{ablyproto.FormatJSON, ablyproto.FormatMsgpack} {
		t.Run(f.String(), func(t *testing.T) {
			rc := newReceiver()
			s := &socket{rc: rc, ably: true, format: f}
			s.ablyFrame(1, []byte{0xc1, '{'})                                  // neither JSON nor msgpack
			s.ablyFrame(1, messageFrame(t, f, "ep1-1", `{"other":1}`))         // not the bench's data
			s.ablyFrame(1, messageFrame(t, f, "no-serial-x", `{"t":1,"r":2}`)) // serial without an offset
			s.ablyFrame(1, messageFrame(t, f, "ep1-2", `"a plain string"`))    // a string, not the object
			bin := frame(t, f, &ablyproto.ProtocolMessage{Action: ablyproto.ActionMessage, Channel: "c",
				Messages: []ablyproto.RealtimeMessage{{Serial: "ep1-3", Data: &ablyproto.Data{Bin: []byte{1, 2}}, Encoding: "base64"}}})
			s.ablyFrame(1, bin) // binary data
			testutil.Equal(t, "malformed", uint64(5), rc.malformed.Load())
			testutil.Equal(t, "received", uint64(0), rc.received.Load())
		})
	}
}

func TestParseBenchDataOrdersAndFallback(t *testing.T) {
	for _, tc := range []struct {
		in   string
		t, r int64
		ok   bool
	}{
		{`{"t":12,"r":34,"s":"1.1"}`, 12, 34, true},
		{`{"s":"1.1","r":34,"t":12}`, 12, 34, true}, // another order: encoding/json
		{`{"t":0,"r":34}`, 0, 0, false},
		{`{"t":`, 0, 0, false},
		{`[]`, 0, 0, false},
	} {
		gt, gr, ok := parseBenchData([]byte(tc.in))
		if gt != tc.t || gr != tc.r || ok != tc.ok {
			t.Errorf("parseBenchData(%s) = %d, %d, %t; want %d, %d, %t", tc.in, gt, gr, ok, tc.t, tc.r, tc.ok)
		}
	}
}

func TestAblySocketURL(t *testing.T) {
	got := ablySocketURL("http://127.0.0.1:8080", "bench:s3cret/+=", ablyproto.FormatMsgpack)
	testutil.Equal(t, "url", "ws://127.0.0.1:8080/?format=msgpack&heartbeats=true&key=bench%3As3cret%2F%2B%3D&v=5", got)
	got = ablySocketURL("https://h.example/base", "k:s", ablyproto.FormatJSON)
	testutil.Equal(t, "url", "wss://h.example/base/?format=json&heartbeats=true&key=k%3As&v=5", got)
}

func TestRedactQueryHidesTheKey(t *testing.T) {
	u := ablySocketURL("http://127.0.0.1:1", "bench:0123456789abcdef", ablyproto.FormatJSON)
	msg := `failed to WebSocket dial: Get "http` + strings.TrimPrefix(u, "ws") + `": connection refused (key bench:0123456789abcdef)`
	got := redactQuery(msg, u)
	if strings.Contains(got, "0123456789abcdef") {
		t.Fatalf("the secret survived: %s", got)
	}
	if !strings.Contains(got, "connection refused") {
		t.Fatalf("the cause was lost: %s", got)
	}
}

func TestParseAblyFlags(t *testing.T) {
	base := []string{"--server", "ably", "--jwt-secret", testSecret, "--api-key", "bench:0123456789abcdef"}
	c, err := ParseFanout(append(base, "--format", "msgpack"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "server", ServerAbly, c.Server)
	testutil.Equal(t, "format", "msgpack", c.Format)
	c, err = ParseFanout(base, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "default format", "json", c.Format)

	ic, err := ParseIdle([]string{"--server", "ably", "--pid", "1", "--jwt-secret", testSecret, "--api-key", "bench:0123456789abcdef"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "idle api key", "bench:0123456789abcdef", ic.APIKey)

	t.Setenv("HANDOFF_BENCH_API_KEY", "")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad format", append(base, "--format", "cbor"), "--format"},
		{"no key", []string{"--server", "ably", "--jwt-secret", testSecret}, "--api-key"},
		{"key without secret", []string{"--server", "ably", "--jwt-secret", testSecret, "--api-key", "bench"}, "--api-key"},
		{"unknown server", []string{"--server", "pusher", "--jwt-secret", testSecret}, "--server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFanout(tc.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error about %s, got %v", tc.want, err)
			}
		})
	}
	if _, err := ParseIdle([]string{"--server", "ably", "--pid", "1", "--jwt-secret", testSecret}, io.Discard); err == nil || !strings.Contains(err.Error(), "--api-key") {
		t.Fatalf("idle --server ably without a key: want an --api-key error, got %v", err)
	}
}

// TestAblyMessageFastAgreesWithDecode: the fast path reads exactly what
// a full ablyproto decode reads from the frames handoff sends, and
// declines (leaving it to the decode) every other shape.
func TestAblyMessageFastAgreesWithDecode(t *testing.T) {
	for _, f := range []ablyproto.Format{ablyproto.FormatJSON, ablyproto.FormatMsgpack} {
		t.Run(f.String(), func(t *testing.T) {
			pad := strings.Repeat("x", 300) // a str8/str16 header in msgpack
			for _, data := range []string{
				`{"t":1753000000123456789,"r":1753000000123499999,"s":"3.1234"}`,
				`{"t":4000000000,"r":4500000000,"s":"0.2","p":"` + pad + `"}`,
			} {
				for _, b := range messageFrames(t, f, "k3j5x0a2b9qzm-42", data) {
					off, sched, start, ok := ablyMessageFast(f, b)
					if !ok {
						t.Fatalf("fast path declined %q", b)
					}
					pm, err := ablyproto.Decode(f, b)
					if err != nil {
						t.Fatal(err)
					}
					o2, s2, r2, ok2 := parseAblyMessage(&pm.Messages[0])
					if !ok2 || off != o2 || sched != s2 || start != r2 || off != 42 {
						t.Fatalf("fast %d %d %d, decode %d %d %d %t", off, sched, start, o2, s2, r2, ok2)
					}
				}
			}
			two := frame(t, f, &ablyproto.ProtocolMessage{Action: ablyproto.ActionMessage, Channel: "c", Messages: []ablyproto.RealtimeMessage{
				ablyproto.EventMessage("e-1", "bench", json.RawMessage(`{"t":1,"r":2}`), time.UnixMilli(1), ablyproto.Origin{}).Realtime(),
				ablyproto.EventMessage("e-2", "bench", json.RawMessage(`{"t":3,"r":4}`), time.UnixMilli(1), ablyproto.Origin{}).Realtime(),
			}})
			for name, b := range map[string][]byte{
				"two messages":  two,
				"plain string":  messageFrame(t, f, "e-1", `"{\"t\":1,\"r\":2}"`),
				"heartbeat":     frame(t, f, &ablyproto.ProtocolMessage{Action: ablyproto.ActionHeartbeat}),
				"attached":      frame(t, f, &ablyproto.ProtocolMessage{Action: ablyproto.ActionAttached, Channel: "c", ChannelSerial: "e-1"}),
				"garbage":       []byte{0xc1},
				"not the bench": messageFrame(t, f, "e-1", `{"other":true}`),
			} {
				if _, _, _, ok := ablyMessageFast(f, b); ok {
					t.Errorf("%s: the fast path accepted %q", name, b)
				}
			}
			// Two messages still count twice through the full decode.
			rc := newReceiver()
			(&socket{rc: rc, ably: true, format: f}).ablyFrame(10, two)
			testutil.Equal(t, "deliveries of a two-message frame", uint64(2), rc.received.Load())
		})
	}
}
