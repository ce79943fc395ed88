//go:build integration

package hub

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/handoff-health/handoff/internal/testutil"
)

// BenchmarkRedisPublish measures publish.lua alone: one EVALSHA per event.
func BenchmarkRedisPublish(b *testing.B) {
	backend := openRedis(b, newRedisClient(b, testutil.StartRedis(b).Addr), backendOpts{})
	ctx := context.Background()
	p := Publication{Type: "image.added", Data: benchData}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := backend.Publish(ctx, "session:bench", p); err != nil {
				b.Fatal(err)
			}
		}
	})
	// An Ably publish: the same event with an origin, stored as a second
	// stream field, and its message id remembered for dedupe (a new id
	// each time, as a client's msgSerials).
	ids := make([]string, 1<<16)
	for i := range ids {
		ids[i] = "hK3x9aQ2Lm:" + strconv.Itoa(i) + ":0"
	}
	b.Run("serial-origin", func(b *testing.B) {
		p := p
		p.Origin = Origin{ClientID: "desk-42", ConnectionID: "hK3x9aQ2Lm"}
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			p.MsgID = ids[i%len(ids)]
			if _, err := backend.Publish(ctx, "session:bench-origin-"+strconv.Itoa(i/len(ids)), p); err != nil {
				b.Fatal(err)
			}
		}
	})
	// GOMAXPROCS publishers on 16 channels, then 64 publishers (as many
	// concurrent HTTP publishes) on 16 and on 1,000 channels.
	for _, c := range []struct {
		name     string
		par, chs int
	}{{"parallel-16ch", 1, 16}, {"64pub-16ch", 64, 16}, {"64pub-1000ch", 64, 1000}} {
		b.Run(c.name, func(b *testing.B) {
			var next atomic.Int64
			b.ReportAllocs()
			// SetParallelism multiplies GOMAXPROCS; round up to c.par.
			b.SetParallelism(max(1, c.par/runtime.GOMAXPROCS(0)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					ch := "session:bench-" + strconv.Itoa(int(next.Add(1))%c.chs)
					if _, err := backend.Publish(ctx, ch, p); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkRedisPublishDeliver measures publish through Redis to local
// subscribers through the node's PubSub connection.
func BenchmarkRedisPublishDeliver(b *testing.B) {
	addr := testutil.StartRedis(b).Addr
	redis := func(b *testing.B) Backend {
		return openRedis(b, newRedisClient(b, addr), backendOpts{})
	}
	b.Run("1ch-1sub", func(b *testing.B) { deliveryBench(b, redis(b), 1, 1, 0) })
	b.Run("16ch-4sub", func(b *testing.B) { deliveryBench(b, redis(b), 16, 4, 0) })
	// The target load: 20k deliveries/s on one node.
	b.Run("16ch-4sub-20k/s", func(b *testing.B) { deliveryBench(b, redis(b), 16, 4, 20000) })
}

// BenchmarkRedisDecodeEvent measures the per-message decoding on a node's
// receive loop; Data is its only allocation.
func BenchmarkRedisDecodeEvent(b *testing.B) {
	payload := "abcdefghijklm-42 1764121234567890 11 image.added" + string(benchData)
	origin := encodeOrigin(Origin{MsgID: "hK3x9aQ2Lm:5:0", ClientID: "desk-42", ConnectionID: "hK3x9aQ2Lm"})
	for name, payload := range map[string]string{"plain": payload, "origin": origin + payload} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeEvent("session:bench", payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
