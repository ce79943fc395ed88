package realtime

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/protocol"
)

// FuzzDecodeFrame checks that no input makes the decoder panic and that
// whatever it accepts satisfies what the op handlers rely on. The seeds
// run as part of the normal suite; `go test -fuzz=FuzzDecodeFrame
// ./internal/realtime/` explores further.
func FuzzDecodeFrame(f *testing.F) {
	for _, seed := range []string{
		`{"type":"auth","token":"a.b.c"}`,
		`{"type":"subscribe","id":1,"channel":"session:abc","since":"abcdefghijklm-42"}`,
		`{"type":"subscribe","channel":"session:abc","since":"0"}`,
		`{"type":"unsubscribe","id":"x","channel":"session:abc"}`,
		`{"type":"ping","id":-1.5e3}`,
		`{"type":"ping","id":null}`,
		`{}`, `[]`, `null`, `"ping"`, `{`, ``, `{"type":"ping"}{}`,
		`{"type":"subscribe","channel":"` + strings.Repeat("a", 201) + `"}`,
		`{"type":"subscribe","channel":"a","since":"-1"}`,
		`{"type":"subscribe","channel":"a","since":"abc-18446744073709551616"}`,
		`{"type":"ping","id":{"nested":[1,2]}}`,
		`{"type":"ping","type":"auth"}`,
		"{\"type\":\"ping\",\"id\":\"\xff\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := decodeFrame(b)
		if err != nil {
			if err.Code == "" {
				t.Fatalf("error without a code: %+v", err)
			}
			if err.Message == "" {
				t.Fatalf("error without a message: %+v", err)
			}
			if fr.Type != "" {
				t.Fatalf("frame returned with an error: %+v", fr)
			}
			if len(err.Ref) > 0 && !validRef(err.Ref) {
				t.Fatalf("invalid ref echoed: %q", err.Ref)
			}
			return
		}
		if !validRef(fr.ID) || (len(fr.ID) > 0 && !json.Valid(fr.ID)) {
			t.Fatalf("accepted bad id %q", fr.ID)
		}
		switch fr.Type {
		case protocol.OpAuth:
			if fr.Token == "" {
				t.Fatal("accepted auth without token")
			}
		case protocol.OpSubscribe, protocol.OpUnsubscribe:
			if !hub.ValidChannel(fr.Channel) {
				t.Fatalf("accepted bad channel %q", fr.Channel)
			}
			if fr.Since != "" && fr.Type == protocol.OpSubscribe {
				// The text need not be canonical ("0-00"), but the parsed
				// cursor must round-trip through its canonical form.
				if fr.since == nil {
					t.Fatalf("since %q accepted but not parsed", fr.Since)
				}
				if again, err := hub.ParseCursor(fr.since.String()); err != nil || again != *fr.since {
					t.Fatalf("since %q parsed as %v, which does not round-trip", fr.Since, fr.since)
				}
			}
		case protocol.OpPing:
		default:
			t.Fatalf("accepted unknown type %q", fr.Type)
		}
		// Every reply echoes the id: it must re-encode as valid JSON.
		out := encodeFrame(protocol.ServerFrame{Type: protocol.FramePong, Ref: fr.ID})
		if !json.Valid(out) {
			t.Fatalf("reply %q is not JSON", out)
		}
	})
}
