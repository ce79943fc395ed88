// Package fanout is the realtime performance harness behind `handoff bench`:
// it measures a running server from outside, as its clients see it.
//
// Fanout opens thousands of WebSocket subscribers on /realtime, publishes
// through the Ably-shaped REST endpoint at a paced, open-loop rate, and
// reports publish-to-delivery latency percentiles and any loss. Idle opens
// quiet subscribed sockets and reports the server's RSS per socket.
//
// Latency is measured from each message's scheduled send time, which the
// message carries, so a server that falls behind cannot hide it by slowing
// the generator down (coordinated omission); the time from the request's
// actual start is reported beside it.
package fanout

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// FanoutResult is what a fanout run measured.
type FanoutResult struct {
	Scenario string `json:"scenario"` // "fanout"
	Server   string `json:"server"`   // handoff, ably-json, ably-msgpack or centrifugo
	Target   string `json:"target"`
	Sockets  int    `json:"sockets"`
	Channels int    `json:"channels"`
	Rate     int    `json:"rate_msgs_per_s"`
	Batch    int    `json:"batch"`
	// BatchSpread: each request's messages went to distinct channels.
	BatchSpread bool    `json:"batch_spread"`
	Publishers  int     `json:"publishers"`
	Warmup      float64 `json:"warmup_s"`
	Duration    float64 `json:"duration_s"`

	Publishes  PublishCounts  `json:"publishes"`
	Deliveries DeliveryCounts `json:"deliveries"`

	// Latency runs from the scheduled send time to arrival on the socket;
	// FromRequest from the start of the HTTP request instead.
	Latency      Summary `json:"latency"`
	FromRequest  Summary `json:"latency_from_request_start"`
	PublishRTT   Summary `json:"publish_http_round_trip"`
	SchedulerLag Summary `json:"generator_lag"`

	Integrity Integrity `json:"integrity"`
	CPU       CPUUsage  `json:"cpu"`
	// BackgroundCores is other processes' CPU use in the second before
	// publishing, with every socket open and quiet: other work on the
	// machine, which is noise in the numbers.
	BackgroundCores float64 `json:"background_cores"`
	ServerRSS       int64   `json:"server_rss_bytes"` // -1 without --pid

	OK bool `json:"ok"`
}

// PublishCounts are the publish side of a run.
type PublishCounts struct {
	Requests   uint64         `json:"requests_ok"`
	Messages   uint64         `json:"messages_ok"`
	PerSecond  float64        `json:"messages_per_s"` // measured window
	Errors     int            `json:"errors"`
	ErrorKinds map[string]int `json:"error_kinds,omitempty"`
}

// DeliveryCounts compare what the accepted publishes obliged the server
// to deliver with what arrived.
type DeliveryCounts struct {
	Expected  uint64  `json:"expected"`
	Received  uint64  `json:"received"`
	Lost      uint64  `json:"lost"`
	Extra     uint64  `json:"extra"` // e.g. a publish that failed late but was stored
	PerSecond float64 `json:"per_s"` // measured window
}

// Integrity is everything that must be zero in a clean run.
type Integrity struct {
	Gaps        uint64 `json:"gaps"`
	Duplicates  uint64 `json:"duplicates"`
	Resyncs     uint64 `json:"resyncs"`
	ErrorFrames uint64 `json:"error_frames"`
	Malformed   uint64 `json:"malformed_frames"`
	// Unordered counts deliveries that carried no offset (Centrifugo
	// without history): counted for loss, but their order is unchecked.
	Unordered uint64         `json:"unordered_deliveries"`
	Dropped   int            `json:"sockets_dropped"`
	DropCodes map[string]int `json:"drop_close_codes,omitempty"`
}

// RunFanout runs one fanout measurement against a running server.
// Progress lines go to progress (nil: none).
func RunFanout(ctx context.Context, c FanoutConfig, progress io.Writer) (FanoutResult, error) {
	say := func(format string, args ...any) {
		if progress != nil {
			fmt.Fprintf(progress, format+"\n", args...)
		}
	}
	res := FanoutResult{Scenario: "fanout", Server: c.Target.label(), Target: c.URL, Sockets: c.Sockets, Channels: c.Channels, Rate: c.Rate,
		Batch: c.Batch, BatchSpread: c.BatchSpread, Publishers: c.Publishers, Warmup: c.Warmup.Seconds(), Duration: c.Duration.Seconds(), ServerRSS: -1}
	if err := raiseFileLimit(c.Sockets + c.Publishers + fdHeadroom); err != nil {
		return res, err
	}
	tok, err := token(ctx, c.Target)
	if err != nil {
		return res, err
	}
	if c.Server != ServerCentrifugo {
		say("creating %d capture sessions (one channel each)", c.Channels)
	}
	channels, err := createChannels(ctx, c.Target, tok, c.Channels)
	if err != nil {
		return res, err
	}
	subs := make([]int, len(channels))
	for i := range c.Sockets {
		subs[i%len(channels)]++
	}

	say("opening %d sockets", c.Sockets)
	rc := newReceiver()
	// Nothing is measured until the schedule says so.
	rc.measureFrom.Store(1<<63 - 1)
	opened := time.Now()
	socks, err := openSockets(ctx, c.Target, tok, channels, c.Sockets, rc, progress)
	if err != nil {
		return res, err
	}
	defer func() {
		rc.closing.Store(true)
		closeSockets(socks)
	}()
	say("  %d sockets subscribed in %.1fs", c.Sockets, time.Since(opened).Seconds())

	st := newPubStats()
	pubs := make([]*publisher, c.Publishers)
	for i := range pubs {
		if pubs[i], err = newPublisher(i, c, channels, subs, st, rc); err != nil {
			for _, p := range pubs[:i] {
				p.close()
			}
			return res, err
		}
	}

	// A quiet second shows what else is using the machine.
	before := sampleCPU(c.PID, c.AuxPID)
	if !sleep(ctx, time.Second) {
		return res, ctx.Err()
	}
	res.BackgroundCores = cpuUsage(before, sampleCPU(c.PID, c.AuxPID), runtime.NumCPU()).Others

	start := time.Now().Add(50 * time.Millisecond)
	measureFrom := start.Add(c.Warmup)
	end := measureFrom.Add(c.Duration)
	rc.measureFrom.Store(measureFrom.UnixNano())
	var giveUp atomic.Int64
	giveUp.Store(end.Add(lateGiveUp).UnixNano())
	say("publishing %d msg/s for %v warmup + %v measured", c.Rate, c.Warmup, c.Duration)

	jobs := make(chan job, jobQueue)
	var wg sync.WaitGroup
	for _, p := range pubs {
		wg.Go(func() { p.run(jobs, &giveUp) })
	}
	cpuDone := make(chan CPUUsage, 1)
	go func() { cpuDone <- measureCPU(ctx, c.PID, c.AuxPID, measureFrom, end) }()
	stride := 1
	if c.BatchSpread {
		stride = c.Batch // a request covers channels channel..channel+Batch-1
	}
	schedule(jobs, start, end, float64(c.Rate)/float64(c.Batch), len(channels), stride, ctx.Done())
	wg.Wait()
	res.CPU = <-cpuDone

	// Wait for the deliveries still in flight.
	deadline := time.Now().Add(c.Drain)
	for rc.received.Load() < st.expected.Load() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if c.PID > 0 {
		if rss, err := rssBytes(c.PID); err == nil {
			res.ServerRSS = rss
		}
	}
	fill(&res, c, st, rc, measureFrom)
	return res, ctx.Err()
}

// measureCPU samples the CPU counters at from and to.
func measureCPU(ctx context.Context, pid, aux int, from, to time.Time) CPUUsage {
	if !sleep(ctx, time.Until(from)) {
		return CPUUsage{Server: -1, Aux: -1}
	}
	a := sampleCPU(pid, aux)
	if !sleep(ctx, time.Until(to)) {
		return CPUUsage{Server: -1, Aux: -1}
	}
	return cpuUsage(a, sampleCPU(pid, aux), runtime.NumCPU())
}

// sleep waits d or until ctx ends, reporting false for the latter.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// fill computes the result from the counters.
func fill(res *FanoutResult, c FanoutConfig, st *pubStats, rc *receiver, measureFrom time.Time) {
	from := measureFrom.UnixNano()
	res.Publishes.Requests = st.requests.Load()
	res.Publishes.Messages = st.messages.Load()
	if last := st.lastMeasured.Load(); last > from {
		// At least the scheduled window: finishing early is not faster.
		window := max(float64(last-from)/1e9, c.Duration.Seconds())
		res.Publishes.PerSecond = round2(float64(st.measuredMsgs.Load()) / window)
	}
	res.Publishes.Errors, res.Publishes.ErrorKinds = st.errorCounts()

	d := &res.Deliveries
	d.Expected, d.Received = st.expected.Load(), rc.received.Load()
	if d.Expected > d.Received {
		d.Lost = d.Expected - d.Received
	} else {
		d.Extra = d.Received - d.Expected
	}
	if last := rc.lastMeasured.Load(); last > from {
		window := max(float64(last-from)/1e9, c.Duration.Seconds())
		d.PerSecond = round2(float64(rc.measured.Load()) / window)
	}

	res.Latency = rc.latency.Snapshot().Summary()
	res.FromRequest = rc.fromRequest.Snapshot().Summary()
	res.PublishRTT = st.rtt.Snapshot().Summary()
	res.SchedulerLag = st.lag.Snapshot().Summary()

	in := &res.Integrity
	in.Gaps, in.Duplicates, in.Resyncs = rc.gaps.Load(), rc.dups.Load(), rc.resyncs.Load()
	in.ErrorFrames, in.Malformed = rc.errorFrames.Load(), rc.malformed.Load()
	in.Unordered = rc.unordered.Load()
	in.Dropped, in.DropCodes = rc.dropped()
	res.OK = d.Lost == 0 && res.Publishes.Errors == 0 && in.Gaps == 0 && in.Duplicates == 0 &&
		in.Resyncs == 0 && in.ErrorFrames == 0 && in.Malformed == 0 && in.Dropped == 0
}

// WriteText prints the result for a person, ending with one RESULT line
// that scripts collect into a table.
func (r FanoutResult) WriteText(w io.Writer) {
	perRequest := "per request"
	if r.BatchSpread {
		perRequest = "per request, each to its own channel"
	}
	fmt.Fprintf(w, "fanout (%s): %d sockets on %d channels, %d msg/s (%d %s, %d publisher connections), %gs warmup + %gs measured\n",
		r.Server, r.Sockets, r.Channels, r.Rate, r.Batch, perRequest, r.Publishers, r.Warmup, r.Duration)
	fmt.Fprintf(w, "  publishes   %d messages in %d requests accepted, %d errors %v; %.1f msg/s in the measured window\n",
		r.Publishes.Messages, r.Publishes.Requests, r.Publishes.Errors, r.Publishes.ErrorKinds, r.Publishes.PerSecond)
	d := r.Deliveries
	fmt.Fprintf(w, "  deliveries  %d of %d received, %d lost, %d extra; %.1f deliveries/s in the measured window\n",
		d.Received, d.Expected, d.Lost, d.Extra, d.PerSecond)
	line := func(name string, s Summary) {
		fmt.Fprintf(w, "  %-34s p50 %7.3f  p90 %7.3f  p99 %7.3f  p99.9 %7.3f  max %8.3f ms  (n=%d)\n",
			name, s.P50, s.P90, s.P99, s.P999, s.Max, s.Count)
	}
	line("latency from scheduled send", r.Latency)
	line("latency from request start", r.FromRequest)
	line("publish HTTP round trip", r.PublishRTT)
	line("generator lag (start - schedule)", r.SchedulerLag)
	in := r.Integrity
	fmt.Fprintf(w, "  integrity   %d sockets dropped %v, %d gaps, %d duplicates, %d resyncs, %d error frames, %d malformed\n",
		in.Dropped, in.DropCodes, in.Gaps, in.Duplicates, in.Resyncs, in.ErrorFrames, in.Malformed)
	if in.Unordered > 0 {
		fmt.Fprintf(w, "  order       not checked for %d deliveries: they carried no offset (no history on the channel)\n", in.Unordered)
	}
	writeCPU(w, r.CPU, r.BackgroundCores)
	if r.ServerRSS >= 0 {
		fmt.Fprintf(w, "  server RSS  %.1f MiB at the end\n", float64(r.ServerRSS)/(1<<20))
	}
	fmt.Fprintf(w, "RESULT fanout server=%s sockets=%d channels=%d rate=%d batch=%d msgs_per_s=%.0f deliveries_per_s=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p99_9_ms=%.3f max_ms=%.3f req_p99_ms=%.3f lost=%d errors=%d server_cores=%.3f aux_cores=%.3f gen_cores=%.3f others_cores=%.3f bg_cores=%.2f rss_mib=%.1f ok=%t\n",
		r.Server, r.Sockets, r.Channels, r.Rate, r.Batch, r.Publishes.PerSecond, d.PerSecond, r.Latency.P50, r.Latency.P90,
		r.Latency.P99, r.Latency.P999, r.Latency.Max, r.FromRequest.P99, d.Lost, r.Publishes.Errors+in.Dropped,
		r.CPU.Server, r.CPU.Aux, r.CPU.Generator, r.CPU.Others, r.BackgroundCores, float64(r.ServerRSS)/(1<<20), r.OK)
}

func writeCPU(w io.Writer, u CPUUsage, background float64) {
	server := "unknown (no --pid)"
	if u.Server >= 0 {
		server = fmt.Sprintf("%.2f", u.Server)
	}
	if u.Aux >= 0 {
		server += fmt.Sprintf(", aux (--aux-pid) %.2f", u.Aux)
	}
	fmt.Fprintf(w, "  CPU (cores of %d, measured window): server %s, generator %.2f, other processes %.2f (%.2f in the quiet second before)\n",
		u.Cores, server, u.Generator, u.Others, background)
}
