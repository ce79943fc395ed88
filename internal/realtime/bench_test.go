package realtime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/handoff-health/handoff/hub"
)

// fanout is a benchmark rig: one node on a memory hub and subs raw
// WebSocket subscribers spread over channels (subscriber s on channel
// s%channels), all in this process, so the clients' CPU counts against
// the server's and the numbers are conservative.
type fanout struct {
	h        *hub.Hub
	subs     int
	channels int
	pubTime  []atomic.Int64 // publish time of event n, UnixNano
	left     []atomic.Int32 // subscribers still to receive event n
	done     []chan struct{}
	lat      [][]time.Duration // per subscriber
}

func newFanout(b *testing.B, subs, channels, events int) *fanout {
	v := newVerifier(b)
	h := memoryHub(b)
	n := startNode(b, h, v, Config{})
	tok := issue(b, v, "f", "p", time.Hour)
	f := &fanout{h: h, subs: subs, channels: channels, pubTime: make([]atomic.Int64, events),
		left: make([]atomic.Int32, events), done: make([]chan struct{}, events), lat: make([][]time.Duration, subs)}
	for i := range events {
		f.left[i].Store(int32(subs / channels))
		f.done[i] = make(chan struct{})
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for s := range subs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r := connect(b, n.url, tok)
			r.send(map[string]any{"type": "subscribe", "channel": f.channel(s)})
			r.next()
			f.lat[s] = make([]time.Duration, 0, events/channels+1)
			go f.receive(r.ws, s)
		}()
	}
	wg.Wait()
	return f
}

func (f *fanout) channel(i int) string { return "session:bench-" + strconv.Itoa(i%f.channels) }

// receive records each event's latency from publish to this subscriber.
func (f *fanout) receive(ws *websocket.Conn, s int) {
	var buf bytes.Buffer
	marker := []byte(`"n":`)
	for {
		_, rd, err := ws.Reader(context.Background())
		if err != nil {
			return
		}
		buf.Reset()
		if _, err := buf.ReadFrom(rd); err != nil {
			return
		}
		now := time.Now().UnixNano()
		b := buf.Bytes()
		i := bytes.Index(b, marker) + len(marker)
		j := i + bytes.IndexByte(b[i:], '}')
		n, err := strconv.Atoi(string(b[i:j]))
		if err != nil {
			panic(fmt.Sprintf("bench frame %q", b))
		}
		f.lat[s] = append(f.lat[s], time.Duration(now-f.pubTime[n].Load()))
		if f.left[n].Add(-1) == 0 {
			close(f.done[n])
		}
	}
}

func (f *fanout) publish(b *testing.B, n int) {
	f.pubTime[n].Store(time.Now().UnixNano())
	if _, err := f.h.Publish(context.Background(), f.channel(n), hub.Publication{
		Type: "image.added", Data: json.RawMessage(`{"n":` + strconv.Itoa(n) + `}`),
	}); err != nil {
		b.Fatal(err)
	}
}

// report waits for every delivery and adds deliveries/s and latency
// percentiles over all of them.
func (f *fanout) report(b *testing.B, start time.Time, events int) {
	for i := range events {
		<-f.done[i]
	}
	elapsed := time.Since(start)
	b.StopTimer()
	var all []time.Duration
	for _, l := range f.lat {
		all = append(all, l...)
	}
	if want := events * (f.subs / f.channels); len(all) != want {
		b.Fatalf("%d deliveries, want %d", len(all), want)
	}
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) }
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(pct(0.999), "p99.9-µs")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkFanout1000 publishes b.N events on one channel to 1,000
// subscribers as fast as they absorb them, with at most 8 events in
// flight (so no queue overflows): the throughput ceiling, and latency
// under that saturating load. Run it with -benchtime=2000x; the default
// picks a small N dominated by warm-up.
func BenchmarkFanout1000(b *testing.B) {
	const window = 8
	f := newFanout(b, 1000, 1, b.N)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if i >= window {
			<-f.done[i-window]
		}
		f.publish(b, i)
	}
	f.report(b, start, b.N)
}

// BenchmarkFanout1000Paced publishes on one channel with 1,000
// subscribers at 20 events/s, i.e. the 20,000 deliveries/s goal, and
// reports what a subscriber sees at that rate. Each op is 50 ms: run it
// with -benchtime=200x.
func BenchmarkFanout1000Paced(b *testing.B) {
	f := newFanout(b, 1000, 1, b.N)
	paced(b, f, 20)
}

// BenchmarkFanoutSessionsPaced is the clinic's shape: 1,000 sockets on 500
// session channels (a desktop and a second tab each), 10,000 events/s
// round-robin over the channels: 20,000 deliveries/s. Run it with
// -benchtime=20000x (2 s).
func BenchmarkFanoutSessionsPaced(b *testing.B) {
	f := newFanout(b, 1000, 500, b.N)
	paced(b, f, 10_000)
}

// paced publishes at rate events per second. It catches up after a late
// wakeup rather than dropping ticks, so the offered load is the rate.
func paced(b *testing.B, f *fanout, rate int) {
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; {
		due := min(b.N, int(time.Since(start).Seconds()*float64(rate))+1)
		for ; i < due; i++ {
			f.publish(b, i)
		}
		time.Sleep(time.Millisecond)
	}
	f.report(b, start, b.N)
}
