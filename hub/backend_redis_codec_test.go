package hub

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/testutil"
)

// TestRedisEventCodecOrigin: an event without origin is the text older
// versions wrote; one with an origin decodes to the same event plus the
// origin, whatever punctuation its fields hold.
func TestRedisEventCodecOrigin(t *testing.T) {
	t.Parallel()
	const plain = "abc-7 1700000000000001 3 a b{}"
	want := Event{ID: "abc-7", Channel: "c", Type: "a b", Data: []byte("{}"),
		TS: time.UnixMicro(1700000000000001).UTC(), Cursor: Cursor{"abc", 7}}
	testutil.Equal(t, "encoded zero origin", "", encodeOrigin(Origin{}))
	for _, p := range originPubs() {
		enc := encodeOrigin(p.Origin) + plain
		got, err := decodeEvent("c", enc)
		if err != nil {
			t.Fatalf("decodeEvent(%q): %v", enc, err)
		}
		w := want
		w.Origin = p.Origin
		testutil.Equal(t, "decoded "+enc, w, got)
	}
	testutil.Equal(t, "an origin's text", "+5,1,2 m:0:0dc0", encodeOrigin(Origin{MsgID: "m:0:0", ClientID: "d", ConnectionID: "c0"}))
	testutil.Equal(t, "an origin with headers", `+5,1,2,10 m:0:0dc0{"a":true}`,
		encodeOrigin(Origin{MsgID: "m:0:0", ClientID: "d", ConnectionID: "c0", Headers: `{"a":true}`}))
	for _, s := range []string{
		"+", "+ " + plain, "+1,1 ab" + plain, "+1,1,1" + plain, "+a,0,0 x" + plain, "+-1,0,0 " + plain,
		"+0,0,-1 " + plain, "+0,0,99 " + plain, "+1,0,0 x", "+9223372036854775807,9223372036854775807,2 " + plain,
		"+0,0,0 +0,0,0 " + plain, "+0,0,0,-1 " + plain, "+0,0,0,x " + plain, "+0,0,0,99 " + plain, "+0,0,0,1,1 ab" + plain, "+1,0,0 x" + strings.ToUpper(plain),
	} {
		if ev, err := decodeEvent("c", s); err == nil {
			t.Errorf("decodeEvent(%q) = %+v, want an error", s, ev)
		}
	}
}

// FuzzRedisEventCodec: every origin survives encoding (the fields are
// length-prefixed, so even text validation would refuse does), and no
// input makes the decoder panic.
func FuzzRedisEventCodec(f *testing.F) {
	for _, p := range originPubs() {
		f.Add(p.MsgID, p.ClientID, p.ConnectionID, p.Type, string(p.Data))
	}
	f.Fuzz(func(t *testing.T, msgID, clientID, connID, typ, data string) {
		o := Origin{MsgID: msgID, ClientID: clientID, ConnectionID: connID}
		enc := encodeOrigin(o) + "abc-1 1 " + strconv.Itoa(len(typ)) + " " + typ + data
		ev, err := decodeEvent("c", enc)
		if err != nil {
			t.Fatalf("decodeEvent(%q): %v", enc, err)
		}
		if ev.Origin != o || ev.Type != typ || string(ev.Data) != data {
			t.Fatalf("decodeEvent(%q) = %+v", enc, ev)
		}
		// Arbitrary text: an error or an event, never a panic.
		_, _ = decodeEvent("c", msgID+clientID+connID+typ+data)
	})
}
