package fanout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/protocol"
)

// Socket limits.
const (
	// readLimit bounds one inbound frame: an event of the largest payload
	// the bench publishes, with its envelope.
	readLimit = 128 << 10
	// openTimeout bounds one socket's dial, connected and subscribed.
	openTimeout = 30 * time.Second
)

// receiver is what every subscriber socket of a run reports into. The
// sockets are raw coder/websocket connections with one goroutine each:
// the Go client package would add a watchdog, a token refresher and an
// event channel per socket, which at thousands of sockets costs the
// generator CPU that the server under test should have.
type receiver struct {
	// measureFrom is the scheduled time (UnixNano) from which messages are
	// measured; earlier ones are warmup. Set before publishing starts.
	measureFrom atomic.Int64

	received     atomic.Uint64 // every event delivered
	measured     atomic.Uint64 // events of measured messages
	lastMeasured atomic.Int64  // UnixNano of the last measured delivery
	gaps         atomic.Uint64 // an event offset skipped on a socket
	dups         atomic.Uint64 // an event offset repeated or going back
	resyncs      atomic.Uint64 // resync frames
	errorFrames  atomic.Uint64
	malformed    atomic.Uint64 // event frames the bench could not read
	unordered    atomic.Uint64 // deliveries without an offset (order unchecked)

	// latency is delivery time minus the scheduled send time; fromRequest
	// is delivery time minus the time the HTTP request actually started.
	latency     *Histogram
	fromRequest *Histogram

	// closing is set when the bench closes its sockets; a socket that ends
	// before is counted as dropped, by close code.
	closing atomic.Bool
	mu      sync.Mutex
	drops   map[int]int
}

func newReceiver() *receiver {
	return &receiver{latency: NewHistogram(), fromRequest: NewHistogram(), drops: make(map[int]int)}
}

func (rc *receiver) dropped() (n int, byCode map[string]int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	byCode = make(map[string]int, len(rc.drops))
	for code, k := range rc.drops {
		n += k
		byCode[fmt.Sprint(code)] = k
	}
	return n, byCode
}

// socket is one subscriber.
type socket struct {
	ws      *websocket.Conn
	rc      *receiver
	channel string
	buf     []byte
	// lastOffset is the offset of the last event, to check that a
	// channel's events arrive dense and in order (0: none yet).
	lastOffset uint64
	// centrifugo: the socket speaks Centrifugo's JSON client protocol.
	centrifugo bool
	// ably: the socket speaks Ably's realtime protocol in format.
	ably   bool
	format ablyproto.Format
}

// openSocket dials, authenticates with a bearer header, subscribes to
// channel (live only) and waits for the subscribed frame.
func openSocket(ctx context.Context, wsURL, tok, channel string, hc *http.Client, rc *receiver) (*socket, error) {
	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{
		HTTPClient: hc,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}},
	})
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	ws.SetReadLimit(readLimit)
	s := &socket{ws: ws, rc: rc, channel: channel}
	if err := s.expect(ctx, protocol.FrameConnected); err != nil {
		ws.CloseNow()
		return nil, err
	}
	sub, _ := json.Marshal(protocol.ClientFrame{Type: protocol.OpSubscribe, ID: json.RawMessage("1"), Channel: channel})
	if err := ws.Write(ctx, websocket.MessageText, sub); err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	if err := s.expect(ctx, protocol.FrameSubscribed); err != nil {
		ws.CloseNow()
		return nil, err
	}
	return s, nil
}

// controlFrame is the part of a non-event server frame the bench reads.
type controlFrame struct {
	Type    protocol.FrameType `json:"type"`
	Code    protocol.ErrorCode `json:"code"`
	Message string             `json:"message"`
}

// expect reads frames until one of type want; an error frame fails.
func (s *socket) expect(ctx context.Context, want protocol.FrameType) error {
	for range 8 { // connected, subscribed: nothing else precedes them
		b, err := s.read(ctx)
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", want, err)
		}
		var f controlFrame
		if err := json.Unmarshal(b, &f); err != nil {
			return fmt.Errorf("waiting for %s: unreadable frame %.80q", want, b)
		}
		switch f.Type {
		case want:
			return nil
		case protocol.FrameError:
			return fmt.Errorf("waiting for %s: server error %s: %s", want, f.Code, f.Message)
		}
	}
	return fmt.Errorf("no %s frame", want)
}

// read reads one frame into the socket's reused buffer.
func (s *socket) read(ctx context.Context) ([]byte, error) {
	_, r, err := s.ws.Reader(ctx)
	if err != nil {
		return nil, err
	}
	if s.buf == nil {
		s.buf = make([]byte, 0, 512)
	}
	b, err := readInto(s.buf[:0], r)
	if err != nil {
		return nil, err
	}
	s.buf = b
	return b, nil
}

// readInto appends everything r holds to buf, growing it only when full,
// so a reused buffer makes reading allocation-free.
func readInto(buf []byte, r io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// run reads until the socket ends, recording each event.
func (s *socket) run() {
	ctx := context.Background()
	for {
		b, err := s.read(ctx)
		if err != nil {
			if !s.rc.closing.Load() {
				code := int(websocket.CloseStatus(err))
				s.rc.mu.Lock()
				s.rc.drops[code]++
				s.rc.mu.Unlock()
			}
			return
		}
		now := time.Now().UnixNano()
		if s.centrifugo {
			s.centrifugoFrame(now, b)
			continue
		}
		if s.ably {
			s.ablyFrame(now, b)
			continue
		}
		if !bytes.HasPrefix(b, eventPrefix) {
			s.control(b)
			continue
		}
		off, sched, start, ok := parseEvent(b)
		if !ok {
			s.rc.malformed.Add(1)
			continue
		}
		s.event(now, off, sched, start)
	}
}

func (s *socket) control(b []byte) {
	var f controlFrame
	_ = json.Unmarshal(b, &f)
	switch f.Type {
	case protocol.FrameResync:
		s.rc.resyncs.Add(1)
	case protocol.FrameError:
		s.rc.errorFrames.Add(1)
	case protocol.FrameEvent: // not in the expected shape
		s.rc.malformed.Add(1)
	}
}

// event records one delivery of a message scheduled at sched whose HTTP
// request started at start (UnixNano).
func (s *socket) event(now int64, off uint64, sched, start int64) {
	rc := s.rc
	rc.received.Add(1)
	// Offset 0: the server gave none (Centrifugo without history), so
	// this delivery's order cannot be checked.
	if off != 0 {
		switch {
		case s.lastOffset == 0 || off == s.lastOffset+1:
		case off > s.lastOffset:
			rc.gaps.Add(1)
		default:
			rc.dups.Add(1)
		}
		s.lastOffset = max(s.lastOffset, off)
	}
	if sched >= rc.measureFrom.Load() {
		rc.measured.Add(1)
		rc.latency.Record(time.Duration(now - sched))
		rc.fromRequest.Record(time.Duration(now - start))
		for {
			cur := rc.lastMeasured.Load()
			if now <= cur || rc.lastMeasured.CompareAndSwap(cur, now) {
				break
			}
		}
	}
}

// close ends the socket without a handshake: the run is over and the
// server's side of the close is not what is measured.
func (s *socket) close() { s.ws.CloseNow() }

// The wire shape of an event frame (protocol.ServerFrame) as the server
// encodes it; parseEvent reads it without decoding the whole frame, and
// falls back to encoding/json when the fields come in another order.
var (
	eventPrefix = []byte(`{"type":"` + protocol.FrameEvent + `"`)
	idKey       = []byte(`"id":"`)
	dataKey     = []byte(`"data":{"t":`)
	startKey    = []byte(`,"r":`)
)

// parseEvent returns the event's offset and the scheduled (t) and request
// start (r) times the bench put in its data.
func parseEvent(b []byte) (off uint64, sched, start int64, ok bool) {
	if off, sched, start, ok = parseEventFast(b); ok {
		return
	}
	var f struct {
		Event struct {
			ID   string `json:"id"`
			Data struct {
				T int64 `json:"t"`
				R int64 `json:"r"`
			} `json:"data"`
		} `json:"event"`
	}
	if json.Unmarshal(b, &f) != nil || f.Event.Data.T == 0 {
		return 0, 0, 0, false
	}
	i := strings.LastIndexByte(f.Event.ID, '-')
	o, n := parseUint([]byte(f.Event.ID[i+1:]))
	if n == 0 || n != len(f.Event.ID)-i-1 {
		return 0, 0, 0, false
	}
	return o, f.Event.Data.T, f.Event.Data.R, true
}

func parseEventFast(b []byte) (off uint64, sched, start int64, ok bool) {
	i := bytes.Index(b, idKey)
	if i < 0 {
		return
	}
	rest := b[i+len(idKey):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return
	}
	id := rest[:j]
	k := bytes.LastIndexByte(id, '-')
	if k < 0 {
		return
	}
	off, n := parseUint(id[k+1:])
	if n == 0 || n != len(id)-k-1 {
		return
	}
	d := bytes.Index(rest, dataKey)
	if d < 0 {
		return
	}
	if sched, start, ok = parseTimes(rest[d+len(dataKey):]); !ok {
		return
	}
	return off, sched, start, true
}

// parseTimes reads what follows the bench data's `{"t":` in the order the
// publisher writes it, `<t>,"r":<r>`: the scheduled and request start
// times.
func parseTimes(b []byte) (sched, start int64, ok bool) {
	t, n := parseUint(b)
	if n == 0 || !bytes.HasPrefix(b[n:], startKey) {
		return 0, 0, false
	}
	r, m := parseUint(b[n+len(startKey):])
	if m == 0 {
		return 0, 0, false
	}
	return int64(t), int64(r), true
}

// parseUint reads leading decimal digits; n is how many.
func parseUint(b []byte) (v uint64, n int) {
	for n < len(b) && n < 19 && b[n] >= '0' && b[n] <= '9' {
		v = v*10 + uint64(b[n]-'0')
		n++
	}
	return v, n
}

// errNotOpened is returned when some sockets could not be opened.
var errNotOpened = errors.New("sockets failed to open")

// openSockets opens n sockets, socket i subscribed to channels[i%len],
// at most t.DialConcurrency at a time, and starts their readers. If any
// fails, the others are closed and the first error is returned.
func openSockets(ctx context.Context, t Target, tok string, channels []string, n int, rc *receiver, progress io.Writer) ([]*socket, error) {
	path := protocol.Path
	if t.Server == ServerCentrifugo {
		path = centrifugoPath
	}
	wsURL := "ws" + strings.TrimPrefix(t.URL, "http") + path
	format, _ := ablyproto.ParseFormat(t.Format)
	if t.Server == ServerAbly {
		wsURL = ablySocketURL(t.URL, t.APIKey, format)
	}
	clients := dialClients(t.URL, t.SourceIPs)
	socks := make([]*socket, n)
	var failed atomic.Int64
	var firstErr error
	var once sync.Once
	sem := make(chan struct{}, t.DialConcurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		if failed.Load() > 0 || ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var s *socket
			var err error
			switch t.Server {
			case ServerCentrifugo:
				s, err = openCentrifugoSocket(ctx, wsURL, tok, channels[i%len(channels)], clients[i%len(clients)], rc)
			case ServerAbly:
				s, err = openAblySocket(ctx, wsURL, format, channels[i%len(channels)], clients[i%len(clients)], rc)
			default:
				s, err = openSocket(ctx, wsURL, tok, channels[i%len(channels)], clients[i%len(clients)], rc)
			}
			if err != nil {
				failed.Add(1)
				once.Do(func() { firstErr = err })
				return
			}
			socks[i] = s
			go s.run()
		})
		if progress != nil && (i+1)%5000 == 0 {
			fmt.Fprintf(progress, "  %d sockets opening (%.1fs)\n", i+1, time.Since(start).Seconds())
		}
	}
	wg.Wait()
	if err := ctx.Err(); err != nil && firstErr == nil {
		firstErr = err
	}
	if firstErr != nil {
		rc.closing.Store(true)
		closeSockets(socks)
		return nil, fmt.Errorf("%w: %d of %d failed (at least); first: %w", errNotOpened, failed.Load(), n, firstErr)
	}
	return socks, nil
}

// closeSockets closes every opened socket, a few at a time in parallel.
func closeSockets(socks []*socket) {
	var wg sync.WaitGroup
	const workers = 8
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(socks); i += workers {
				if socks[i] != nil {
					socks[i].close()
				}
			}
		})
	}
	wg.Wait()
}
