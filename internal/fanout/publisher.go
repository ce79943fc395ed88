package fanout

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Publisher limits.
const (
	// publishTimeout bounds one publish request.
	publishTimeout = 10 * time.Second
	// jobQueue bounds the requests scheduled but not yet started. When it
	// is full the scheduler waits, but every request keeps its scheduled
	// time, so a server that falls behind shows as latency.
	jobQueue = 1 << 14
	// lateGiveUp is how long after the schedule ends requests still
	// waiting are dropped (counted as unsent errors).
	lateGiveUp = 10 * time.Second
	// maxReconnects bounds how often one publisher reconnects.
	maxReconnects = 100
)

// job is one publish request due at sched: batch messages to channel, or
// with spread one message to each of channel, channel+1, … (mod the
// channels).
type job struct {
	channel int
	sched   int64 // UnixNano
}

// pubStats is what the publishers report.
type pubStats struct {
	requests     atomic.Uint64 // requests answered 201
	messages     atomic.Uint64 // messages in them
	measuredMsgs atomic.Uint64 // of which measured (scheduled after warmup)
	lastMeasured atomic.Int64  // UnixNano of the last measured 201
	expected     atomic.Uint64 // deliveries the 201s oblige the server to make
	unsent       atomic.Uint64 // requests dropped because the run was over
	// rtt is the HTTP round trip; lag is request start minus schedule
	// (how far the generator itself was behind).
	rtt *Histogram
	lag *Histogram

	mu     sync.Mutex
	errors map[string]int // by kind: "status 503", "network", "unsent"
}

func newPubStats() *pubStats {
	return &pubStats{rtt: NewHistogram(), lag: NewHistogram(), errors: make(map[string]int)}
}

func (p *pubStats) fail(kind string, n int) {
	p.mu.Lock()
	p.errors[kind] += n
	p.mu.Unlock()
}

func (p *pubStats) errorCounts() (total int, byKind map[string]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	byKind = make(map[string]int, len(p.errors))
	for k, n := range p.errors {
		total += n
		byKind[k] = n
	}
	return total, byKind
}

// publisher is one keep-alive HTTP/1.1 connection that sends publish
// requests one at a time. It writes the request bytes itself rather than
// going through net/http's client: the generator shares the machine with
// the server, and the transport's per-request goroutine handoffs would
// take CPU the server should have. Responses are read with
// http.ReadResponse, so any valid HTTP/1.1 reply is understood.
type publisher struct {
	host  string // Host header and dial address
	auth  string // the credentials' header line, without CRLF
	paths []string
	batch int
	// spread sends each of a request's messages to its own channel
	// (FanoutConfig.BatchSpread); paths then all name the batch endpoint.
	spread bool
	pad    string
	subs   []int // subscribers per channel
	st     *pubStats
	rc     *receiver
	// centrifugo publishes through Centrifugo's HTTP API; chanJSON holds
	// each channel's name as a JSON string, for the request body (both
	// servers' when spread).
	centrifugo bool
	chanJSON   [][]byte
	reply      []byte

	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	body []byte
	head []byte
	seq  uint64
	id   int
}

func newPublisher(id int, c FanoutConfig, channels []string, subs []int, st *pubStats, rc *receiver) (*publisher, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("publishing needs a plain http:// target, not %s", u.Scheme)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	p := &publisher{
		host: host, paths: make([]string, len(channels)), batch: c.Batch, spread: c.BatchSpread,
		pad: strings.Repeat("x", max(c.Payload-60, 0)), subs: subs, st: st, rc: rc, id: id,
		chanJSON: make([][]byte, len(channels)),
	}
	for i, ch := range channels {
		p.chanJSON[i], _ = json.Marshal(ch)
	}
	if c.Server == ServerCentrifugo {
		p.centrifugo = true
		p.auth = "X-API-Key: " + c.APIKey
		path := u.EscapedPath() + centrifugoPublishPath
		if c.Batch > 1 || c.BatchSpread {
			path = u.EscapedPath() + centrifugoBatchPath
		}
		for i := range channels {
			p.paths[i] = path
		}
	} else {
		p.auth = "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(c.APIKey))
		for i, ch := range channels {
			p.paths[i] = u.EscapedPath() + "/channels/" + url.PathEscape(ch) + "/messages"
			if c.BatchSpread {
				p.paths[i] = u.EscapedPath() + handoffBatchPath
			}
		}
	}
	return p, p.connect()
}

func (p *publisher) connect() error {
	if p.conn != nil {
		p.conn.Close()
	}
	conn, err := net.DialTimeout("tcp", p.host, publishTimeout)
	if err != nil {
		return fmt.Errorf("publisher connection: %w", err)
	}
	p.conn = conn
	p.br = bufio.NewReaderSize(conn, 4096)
	p.bw = bufio.NewWriterSize(conn, 4096)
	return nil
}

func (p *publisher) close() {
	if p.conn != nil {
		p.conn.Close()
	}
}

// run publishes jobs until the queue closes; jobs still queued after
// giveUp are counted as unsent.
func (p *publisher) run(jobs <-chan job, giveUp *atomic.Int64) {
	reconnects := 0
	for j := range jobs {
		if time.Now().UnixNano() > giveUp.Load() {
			p.st.unsent.Add(1)
			p.st.fail("unsent (run over)", p.batch)
			continue
		}
		if p.conn == nil {
			if reconnects >= maxReconnects || p.connect() != nil {
				p.st.fail("network", p.batch)
				continue
			}
		}
		if err := p.publish(j); err != nil {
			p.st.fail(err.Error(), p.batch)
			_, refused := err.(centrifugoAPIError)
			_, partly := err.(batchFailures)
			if _, ok := err.(statusError); !ok && !refused && !partly {
				// The connection is in an unknown state: start afresh.
				p.close()
				p.conn = nil
				reconnects++
			}
		}
	}
	p.close()
}

// statusError is a reply other than 201; the connection stays usable.
type statusError int

func (e statusError) Error() string { return "status " + strconv.Itoa(int(e)) }

// publish sends one request and reads its reply.
func (p *publisher) publish(j job) error {
	start := time.Now()
	startNs := start.UnixNano()
	p.st.lag.Record(time.Duration(startNs - j.sched))
	p.buildBody(j, startNs)
	h := p.head[:0]
	h = append(h, "POST "...)
	h = append(h, p.paths[j.channel]...)
	h = append(h, " HTTP/1.1\r\nHost: "...)
	h = append(h, p.host...)
	h = append(h, "\r\n"...)
	h = append(h, p.auth...)
	h = append(h, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	h = strconv.AppendInt(h, int64(len(p.body)), 10)
	h = append(h, "\r\n\r\n"...)
	p.head = h

	_ = p.conn.SetDeadline(start.Add(publishTimeout))
	p.bw.Write(h)
	p.bw.Write(p.body)
	if err := p.bw.Flush(); err != nil {
		return fmt.Errorf("network")
	}
	resp, err := http.ReadResponse(p.br, nil)
	if err != nil {
		return fmt.Errorf("network")
	}
	var apiErr error
	switch {
	case p.centrifugo:
		// Centrifugo answers 200 with an error object when it refuses.
		p.reply, err = readReply(p.reply[:0], resp.Body)
		apiErr = centrifugoReplyError(p.reply)
	case p.spread:
		// A batch publish answers 201 with a result per channel, some of
		// which may be failures.
		p.reply, err = readReply(p.reply[:0], resp.Body)
		if resp.StatusCode == http.StatusCreated {
			apiErr = batchReplyError(p.reply, p.batch)
		}
	default:
		_, err = io.Copy(io.Discard, resp.Body)
	}
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("network")
	}
	now := time.Now()
	p.st.rtt.Record(now.Sub(start))
	if resp.Close {
		p.close()
		p.conn = nil
	}
	want := http.StatusCreated
	if p.centrifugo {
		want = http.StatusOK
	}
	if resp.StatusCode != want {
		return statusError(resp.StatusCode)
	}
	if apiErr != nil {
		return apiErr
	}
	p.st.requests.Add(1)
	p.st.messages.Add(uint64(p.batch))
	p.st.expected.Add(uint64(p.deliveries(j)))
	if j.sched >= p.rc.measureFrom.Load() {
		p.st.measuredMsgs.Add(uint64(p.batch))
		for {
			cur := p.st.lastMeasured.Load()
			if now.UnixNano() <= cur || p.st.lastMeasured.CompareAndSwap(cur, now.UnixNano()) {
				break
			}
		}
	}
	return nil
}

// deliveries is what a 201 to j obliges the server to deliver: each
// message once to every subscriber of its channel.
func (p *publisher) deliveries(j job) int {
	if !p.spread {
		return p.batch * p.subs[j.channel]
	}
	n := 0
	for k := range p.batch {
		n += p.subs[(j.channel+k)%len(p.subs)]
	}
	return n
}

// buildBody renders the request's messages. Each carries its scheduled
// time t and the request's start time r, in UnixNano, which the receiving
// sockets subtract from their arrival time; s makes every message unique.
//
// handoff takes {"name","data"} (an array of them for a batch); Centrifugo
// takes {"channel","data"} on /api/publish, and a batch as
// {"commands":[{"publish":{...}},...]} on /api/batch. Spread over
// channels, handoff takes an array of Ably batch specs on /messages,
// [{"channels":"<c>","messages":{"name","data"}},...], and Centrifugo the
// same /api/batch with each command's own channel.
func (p *publisher) buildBody(j job, startNs int64) {
	b := p.body[:0]
	batch := p.batch > 1 || p.spread
	switch {
	case p.centrifugo && batch:
		b = append(b, `{"commands":[`...)
	case batch:
		b = append(b, '[')
	}
	for k := range p.batch {
		if k > 0 {
			b = append(b, ',')
		}
		ch := j.channel
		if p.spread {
			ch = (j.channel + k) % len(p.chanJSON)
		}
		switch {
		case p.centrifugo:
			if batch {
				b = append(b, `{"publish":`...)
			}
			b = append(b, `{"channel":`...)
			b = append(b, p.chanJSON[ch]...)
			b = append(b, `,"data":`...)
		case p.spread:
			b = append(b, `{"channels":`...)
			b = append(b, p.chanJSON[ch]...)
			b = append(b, `,"messages":{"name":"bench","data":`...)
		default:
			b = append(b, `{"name":"bench","data":`...)
		}
		b = p.appendData(b, j.sched, startNs)
		b = append(b, '}')
		if (p.centrifugo && batch) || (!p.centrifugo && p.spread) {
			b = append(b, '}')
		}
	}
	switch {
	case p.centrifugo && batch:
		b = append(b, "]}"...)
	case batch:
		b = append(b, ']')
	}
	p.body = b
}

// appendData appends one message's data object.
func (p *publisher) appendData(b []byte, sched, startNs int64) []byte {
	p.seq++
	b = append(b, `{"t":`...)
	b = strconv.AppendInt(b, sched, 10)
	b = append(b, `,"r":`...)
	b = strconv.AppendInt(b, startNs, 10)
	b = append(b, `,"s":"`...)
	b = strconv.AppendInt(b, int64(p.id), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, p.seq, 10)
	b = append(b, '"')
	if p.pad != "" {
		b = append(b, `,"p":"`...)
		b = append(b, p.pad...)
		b = append(b, '"')
	}
	return append(b, '}')
}

// readReply reads a reply body into buf, up to centrifugoReplyLimit, and
// discards the rest.
func readReply(buf []byte, r io.Reader) ([]byte, error) {
	buf, err := readInto(buf, io.LimitReader(r, centrifugoReplyLimit))
	if err != nil {
		return buf, err
	}
	_, err = io.Copy(io.Discard, r)
	return buf, err
}

// schedule feeds jobs at rate/batch requests per second from start until
// end, round-robin over the channels (stride channels apart: a spread
// request covers stride channels), then closes the queue. It never
// waits for a request: each job carries the time it was due, and when it
// wakes late it emits every job that came due meanwhile.
//
// It sleeps with nanosleep on its own OS thread: Go's timers wake up to a
// millisecond late (the netpoller waits in whole milliseconds), which
// would add most of a millisecond of the generator's own lateness to every
// measured latency; nanosleep is late by tens of microseconds.
func schedule(jobs chan<- job, start time.Time, end time.Time, perSecond float64, channels, stride int, stop <-chan struct{}) int {
	defer close(jobs)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	interval := float64(time.Second) / perSecond
	total := int(end.Sub(start).Seconds() * perSecond)
	base := start.UnixNano()
	for i := 0; i < total; {
		now := time.Now().UnixNano()
		for ; i < total; i++ {
			due := base + int64(float64(i)*interval)
			if due > now {
				break
			}
			select {
			case jobs <- job{channel: (i * stride) % channels, sched: due}:
			case <-stop:
				return i
			}
		}
		select {
		case <-stop:
			return i
		default:
		}
		if i < total {
			next := base + int64(float64(i)*interval)
			// Bounded, so stop is seen within maxNap even at low rates;
			// at least minNap, so high rates wake the thread in batches.
			ts := syscall.NsecToTimespec(min(max(next-time.Now().UnixNano(), int64(minNap)), int64(maxNap)))
			if ts.Nano() > 0 {
				_ = syscall.Nanosleep(&ts, nil)
			}
		}
	}
	return total
}

// maxNap and minNap bound one sleep of the scheduler. minNap trades a
// little lateness (reported as generator lag) for one wakeup per few
// requests at high rates: at 30,000/s, a wakeup per request would be a
// syscall every 33 µs.
const (
	maxNap = 50 * time.Millisecond
	minNap = 200 * time.Microsecond
)
