package ablyrt_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/handoff-health/handoff/ablyproto"
)

// BenchmarkEncodeMessage: the cost of one delivered MESSAGE frame (an
// image.added-sized event) per subscriber, in each format.
func BenchmarkEncodeMessage(b *testing.B) {
	data := json.RawMessage(`{"imageId":"img_01HZX3","url":"https://files.example/blob/abc?sig=0123456789abcdef0123456789abcdef&exp=1753000000","bodySite":"left-forearm","capturedAt":"2026-12-02T13:00:00Z","size":482113}`)
	for _, f := range wireFormats {
		b.Run(f.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m := ablyproto.EventMessage("k3j5x0a2b9qzm-42", "image.added", data, time.UnixMilli(1753000000123), ablyproto.Origin{}).Realtime()
				if _, err := ablyproto.Encode(f, &ablyproto.ProtocolMessage{Action: ablyproto.ActionMessage, Channel: "session:7c1e",
					ChannelSerial: "k3j5x0a2b9qzm-42", Messages: []ablyproto.RealtimeMessage{m}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
