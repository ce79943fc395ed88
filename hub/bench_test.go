package hub

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchData is a typical capture event payload.
var benchData = json.RawMessage(`{"imageId":"4f1c2b8e-2d7a-4a53-9a43-0d5f0e7c1a11","contentType":"image/jpeg","size":1843200}`)

// latencySink counts deliveries and records how long each event took from
// its publish (the event's TS) to the sink.
type latencySink struct {
	mu        sync.Mutex
	latencies []time.Duration
	delivered *atomic.Int64
}

func (s *latencySink) sink(d Delivery) bool {
	if d.Kind != KindEvent {
		return true
	}
	s.mu.Lock()
	s.latencies = append(s.latencies, time.Since(d.Event.TS))
	s.mu.Unlock()
	s.delivered.Add(1)
	return true
}

// deliveryBench publishes b.N events round-robin over channels, each with
// subs local subscribers, and reports deliveries per second and the
// latency from publish (the event's TS, stamped by the backend) to sink.
// With rate 0 publishers run flat out, so latency includes the backlog of
// a saturated node; with a rate (deliveries/s) they are paced to it.
func deliveryBench(b *testing.B, backend Backend, channels, subs int, rate float64) {
	h := New(backend)
	runHub(b, h)
	var delivered atomic.Int64
	var sinks []*latencySink
	names := make([]string, channels)
	for i := range names {
		names[i] = "session:bench-" + strconv.Itoa(i)
		for j := 0; j < subs; j++ {
			s := &latencySink{delivered: &delivered}
			sinks = append(sinks, s)
			if _, err := h.Subscribe(context.Background(), names[i], nil, s.sink); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	publishAll(b, h, names, rate/float64(subs))
	want := int64(b.N * subs)
	for delivered.Load() < want {
		time.Sleep(100 * time.Microsecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	var all []time.Duration
	for _, s := range sinks {
		s.mu.Lock()
		all = append(all, s.latencies...)
		s.mu.Unlock()
	}
	slices.Sort(all)
	b.ReportMetric(float64(want)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
}

// publishAll publishes b.N events round-robin over names from 8
// goroutines, at rate publishes/s, or flat out when rate is 0.
func publishAll(b *testing.B, h *Hub, names []string, rate float64) {
	var next atomic.Int64
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(time.Second) / rate)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
				p := Publication{Type: "image.added", Data: benchData}
				if _, err := h.Publish(context.Background(), names[int(i)%len(names)], p); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkHubPublishDeliver measures the in-process path: Hub.Publish on
// the memory backend to a subscriber's sink.
func BenchmarkHubPublishDeliver(b *testing.B) {
	memory := func(b *testing.B) Backend {
		m := NewMemory(MemoryConfig{}) // the real clock: TS is the publish time
		b.Cleanup(func() { m.Close() })
		return m
	}
	b.Run("1ch-1sub", func(b *testing.B) { deliveryBench(b, memory(b), 1, 1, 0) })
	b.Run("16ch-4sub", func(b *testing.B) { deliveryBench(b, memory(b), 16, 4, 0) })
	b.Run("16ch-4sub-20k/s", func(b *testing.B) { deliveryBench(b, memory(b), 16, 4, 20000) })
}
