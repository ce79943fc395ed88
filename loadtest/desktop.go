package loadtest

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/handoff-health/handoff/client"
	"github.com/handoff-health/handoff/protocol"
)

// Reconnect backoff of the simulated desktops. The client's defaults
// (250 ms .. 30 s) suit a clinic; a load test that drops sockets on
// purpose wants a quick first retry so the latencies show the resume
// itself rather than mostly backoff, and a low ceiling so a burst of
// failed attempts cannot outlast the event timeout.
const (
	desktopMinBackoff = 100 * time.Millisecond
	desktopMaxBackoff = 5 * time.Second
	// desktopHandshake bounds the TCP connect and the wait for the upgrade
	// reply; the socket itself has no deadline, the client's heartbeat
	// watchdog guards it.
	desktopHandshake = 10 * time.Second
)

// desktop is one GP's desktop widget: a realtime socket held for the whole
// run and subscribed to the channel of the GP's current session. Its
// reader goroutine hands events to the round watching their channel and,
// with probability rate per event, drops the socket to force a resume.
type desktop struct {
	c     *client.Client
	conns *connTracker
	rate  float64
	rng   *rand.Rand // used only by the reader goroutine
	rec   *recorder

	mu     sync.Mutex
	rounds map[string]*round

	connects   atomic.Int64
	resyncs    atomic.Int64
	unplanned  atomic.Int64 // disconnects the desktop did not cause
	readerDone chan struct{}
}

func newDesktop(baseURL string, token func(context.Context) (string, error), rate float64, seed uint64, rec *recorder) (*desktop, error) {
	conns := &connTracker{}
	// No http.Client timeout: it would cut the long-lived socket.
	hc := &http.Client{Transport: &http.Transport{DialContext: conns.dial, ResponseHeaderTimeout: desktopHandshake}}
	wsURL := "ws" + strings.TrimPrefix(baseURL, "http") + protocol.Path
	c, err := client.New(client.Config{
		URL: wsURL, Token: token, HTTPClient: hc,
		MinBackoff: desktopMinBackoff, MaxBackoff: desktopMaxBackoff,
	})
	if err != nil {
		return nil, err
	}
	return &desktop{
		c: c, conns: conns, rate: rate, rec: rec,
		rng:        rand.New(rand.NewPCG(seed, seed^0xd1b54a32d192ed03)),
		rounds:     make(map[string]*round),
		readerDone: make(chan struct{}),
	}, nil
}

// run connects and reads until ctx ends; it returns once the client has
// stopped and every event it delivered has been handled.
func (d *desktop) run(ctx context.Context) {
	go d.read()
	if err := d.c.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		d.rec.fail("realtime: client stopped")
	}
	<-d.readerDone
}

// watch subscribes to r's channel from its very beginning ("0"), so no
// event is missed even if the phone is faster than the subscription.
func (d *desktop) watch(r *round) error {
	d.mu.Lock()
	d.rounds[r.channel] = r
	d.mu.Unlock()
	return d.c.Subscribe(r.channel, "0")
}

func (d *desktop) unwatch(r *round) {
	d.c.Unsubscribe(r.channel)
	d.mu.Lock()
	delete(d.rounds, r.channel)
	d.mu.Unlock()
}

func (d *desktop) round(channel string) *round {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rounds[channel]
}

// read handles every delivered event; the client closes Events when Run
// returns, which ends the loop.
func (d *desktop) read() {
	defer close(d.readerDone)
	for ev := range d.c.Events() {
		switch ev.Kind {
		case client.KindConnected:
			d.connects.Add(1)
		case client.KindDisconnected:
			if !d.conns.planned.Swap(false) {
				d.unplanned.Add(1)
			}
		case client.KindSubscribed, client.KindResync:
			if ev.Kind == client.KindResync {
				d.resyncs.Add(1)
			}
			if r := d.round(ev.Channel); r != nil {
				r.markSubscribed()
			}
		case client.KindError:
			code := "refused"
			var se *client.ServerError
			if errors.As(ev.Err, &se) {
				code = se.Code
			}
			d.rec.fail("realtime: " + code)
		case client.KindEvent:
			if r := d.round(ev.Channel); r != nil {
				r.onEvent(ev, time.Now())
			}
			if d.rate > 0 && d.rng.Float64() < d.rate {
				d.conns.drop()
			}
		}
	}
}

// reconnects is how many times the socket came back after the first.
func (d *desktop) reconnects() int64 { return max(0, d.connects.Load()-1) }

// connTracker remembers the desktop's current TCP connection so the test
// can cut it the way a network does: abruptly, without a close frame.
type connTracker struct {
	mu  sync.Mutex
	cur net.Conn
	// planned is set by drop and consumed by the next disconnect, which
	// tells forced disconnects from ones the server or network caused.
	planned atomic.Bool
}

func (t *connTracker) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: desktopHandshake}
	c, err := d.DialContext(ctx, network, addr)
	if err == nil {
		t.mu.Lock()
		t.cur = c
		t.mu.Unlock()
	}
	return c, err
}

func (t *connTracker) drop() {
	t.mu.Lock()
	c := t.cur
	t.cur = nil
	t.mu.Unlock()
	if c != nil {
		t.planned.Store(true)
		_ = c.Close()
	}
}
