//go:build integration

package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/handoff-health/handoff/client"
	"github.com/handoff-health/handoff/internal/testutil"
)

// Probe settings, each bounded so a scenario stays short on a 2-core CI
// machine.
const (
	probeChannels = 4                     // one subscriber each; round-robin puts them on both nodes
	probeInterval = 25 * time.Millisecond // between one channel's publishes
	probeTimeout  = 5 * time.Second       // one publish request
	probeEvent    = "probe.seq"
	probeMarker   = "probe.end"
	// settleBound bounds the wait for the subscribers to catch up after
	// the publishers stop; a failure bound, never a speed claim.
	settleBound = 30 * time.Second
)

// probe publishes numbered events on a few session channels through the
// balancer's publish API (so through either node) and receives them on
// one Go-client subscriber per channel, also through the balancer.
type probe struct {
	d     *deployment
	http  *http.Client
	chans []*probeChannel

	faultAt time.Time // when the scenario's fault began, for the loss detail

	// held pauses the publishers (hold/release); inflight counts publishes
	// under way, so hold can wait until none is.
	held     atomic.Bool
	inflight atomic.Int32

	cancel context.CancelFunc
	wg     sync.WaitGroup
	pubs   sync.WaitGroup
	stopP  chan struct{}
}

// probeChannel is one channel's record: every publish and its outcome, and
// every thing its subscriber was told.
type probeChannel struct {
	name   string
	client *client.Client

	mu         sync.Mutex
	published  []*publishResult // index seq-1
	deliveries []delivery
	signals    []time.Time // resyncs and refusals: "you may have missed something"
	refusals   []string    // error codes the channel was refused with
	subscribed bool
	marker     int // highest end marker delivered
}

type publishResult struct {
	seq     int
	sent    time.Time
	replied time.Time
	cursor  string // set when accepted (201)
	failed  string // why not accepted: a status or a transport error
}

type delivery struct {
	seq    int
	cursor string
	at     time.Time
}

func newProbe(t *testing.T, d *deployment) *probe {
	t.Helper()
	p := &probe{d: d, stopP: make(chan struct{}),
		// A new connection per request, so the balancer alternates nodes.
		http: &http.Client{Timeout: probeTimeout, Transport: &http.Transport{DisableKeepAlives: true}}}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	t.Cleanup(p.close)
	// Sessions first, then one socket at a time: with nothing else in
	// between, round-robin alternates the sockets between the nodes.
	for i := range probeChannels {
		p.chans = append(p.chans, &probeChannel{name: "session:" + d.createSession(fmt.Sprintf("enc-chaos-%d", i))})
	}
	for _, ch := range p.chans {
		c, err := client.New(client.Config{URL: "ws://" + d.bal.addr() + "/realtime",
			Token:      func(context.Context) (string, error) { return d.jwt, nil },
			MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second, EventBuffer: 4096})
		if err != nil {
			t.Fatal(err)
		}
		ch.client = c
		if err := c.Subscribe(ch.name, ""); err != nil {
			t.Fatal(err)
		}
		p.wg.Add(2)
		go func() { defer p.wg.Done(); _ = c.Run(ctx) }()
		go func() { defer p.wg.Done(); ch.receive(c.Events()) }()
		testutil.EventuallyWithin(t, ch.name+"'s subscriber is subscribed", settleBound, func() bool {
			ch.mu.Lock()
			defer ch.mu.Unlock()
			return ch.subscribed
		})
	}
	// The sockets are the only connections open now (the sessions were
	// created on connections closed after each request), and round-robin
	// must have put them on both nodes, or nothing here is cross-node.
	for _, n := range d.nodes {
		if d.bal.open(n.addr) == 0 {
			t.Fatalf("no probe subscriber is connected through %s", n.name)
		}
	}
	return p
}

// receive records what the subscriber is told until the client stops.
func (ch *probeChannel) receive(events <-chan client.Event) {
	for ev := range events {
		ch.mu.Lock()
		switch ev.Kind {
		case client.KindSubscribed:
			ch.subscribed = true
		case client.KindResync:
			ch.subscribed = true
			ch.signals = append(ch.signals, time.Now())
		case client.KindError:
			ch.signals = append(ch.signals, time.Now())
			var se *client.ServerError
			code := fmt.Sprint(ev.Err)
			if errors.As(ev.Err, &se) {
				code = se.Code
			}
			ch.refusals = append(ch.refusals, code)
		case client.KindEvent:
			var data struct {
				Seq int `json:"seq"`
			}
			_ = json.Unmarshal(ev.Data, &data)
			switch ev.Type {
			case probeEvent:
				ch.deliveries = append(ch.deliveries, delivery{seq: data.Seq, cursor: ev.ID, at: time.Now()})
			case probeMarker:
				ch.marker = max(ch.marker, data.Seq)
			}
		}
		ch.mu.Unlock()
	}
}

// start begins publishing on every channel, one request at a time each.
func (p *probe) start() {
	for _, ch := range p.chans {
		p.pubs.Add(1)
		go func() {
			defer p.pubs.Done()
			for seq := 1; ; {
				select {
				case <-p.stopP:
					return
				default:
				}
				p.inflight.Add(1)
				if p.held.Load() {
					p.inflight.Add(-1)
					time.Sleep(probeInterval)
					continue
				}
				r := &publishResult{seq: seq, sent: time.Now()}
				r.cursor, r.failed = p.publish(ch.name, probeEvent, seq)
				r.replied = time.Now()
				ch.mu.Lock()
				ch.published = append(ch.published, r)
				ch.mu.Unlock()
				p.inflight.Add(-1)
				seq++
				time.Sleep(probeInterval)
			}
		}()
	}
}

// hold pauses the publishers and waits until no publish is under way, so
// a fault can hit a Redis that has answered everything it accepted.
func (p *probe) hold(t *testing.T) {
	t.Helper()
	p.held.Store(true)
	testutil.EventuallyWithin(t, "no publish is under way", settleBound, func() bool { return p.inflight.Load() == 0 })
}

// release lets the publishers go on.
func (p *probe) release() { p.held.Store(false) }

// publish sends one message through the balancer's publish API and returns
// the cursor it was given, or why it was not accepted.
func (p *probe) publish(channel, name string, seq int) (cursor, failed string) {
	body, _ := json.Marshal(map[string]any{"name": name, "data": map[string]int{"seq": seq}})
	req, err := http.NewRequest("POST", p.d.url+"/channels/"+channel+"/messages", bytes.NewReader(body))
	if err != nil {
		return "", err.Error()
	}
	keyName, secret, _ := strings.Cut(p.d.apiKey, ":")
	req.SetBasicAuth(keyName, secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.http.Do(req)
	if err != nil {
		return "", "transport error"
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	var reply struct {
		Serials []string `json:"serials"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil || len(reply.Serials) != 1 {
		return "", "unreadable reply"
	}
	return reply.Serials[0], ""
}

// accepted counts each channel's accepted publishes so far (the minimum
// over channels), for scenarios that wait for traffic.
func (p *probe) accepted() int {
	least := -1
	for _, ch := range p.chans {
		ch.mu.Lock()
		n := 0
		for _, r := range ch.published {
			if r.cursor != "" {
				n++
			}
		}
		ch.mu.Unlock()
		if least < 0 || n < least {
			least = n
		}
	}
	return least
}

// publishes counts every channel's publish attempts so far (all channels).
func (p *probe) attempts() int {
	n := 0
	for _, ch := range p.chans {
		ch.mu.Lock()
		n += len(ch.published)
		ch.mu.Unlock()
	}
	return n
}

// waitAccepted waits until every channel has n more accepted publishes.
func (p *probe) waitAccepted(t *testing.T, what string, n int) {
	t.Helper()
	base := p.accepted()
	testutil.EventuallyWithin(t, what, settleBound, func() bool { return p.accepted() >= base+n })
}

// stop ends the publishers, then flushes: on every channel an end marker
// is published (retried until accepted) and the subscriber must receive
// it, or be told it missed something after it was accepted. Anything not
// delivered by then never will be.
func (p *probe) stop(t *testing.T) {
	t.Helper()
	close(p.stopP)
	p.pubs.Wait()
	for _, ch := range p.chans {
		var accepted time.Time
		testutil.EventuallyWithin(t, "the end marker is accepted on "+ch.name, settleBound, func() bool {
			cursor, _ := p.publish(ch.name, probeMarker, 1)
			accepted = time.Now()
			if cursor == "" {
				time.Sleep(100 * time.Millisecond)
			}
			return cursor != ""
		})
		testutil.EventuallyWithin(t, "the end marker reaches "+ch.name, settleBound, func() bool {
			ch.mu.Lock()
			defer ch.mu.Unlock()
			return ch.marker >= 1 || len(ch.signals) > 0 && !ch.signals[len(ch.signals)-1].Before(accepted)
		})
	}
}

func (p *probe) close() {
	p.cancel()
	p.wg.Wait()
}

// createSession creates a capture session through the balancer and
// returns its id; its channel is session:<id>.
func (d *deployment) createSession(encounter string) string {
	d.t.Helper()
	body, _ := json.Marshal(map[string]string{"encounterId": encounter, "patientId": "PAT-CHAOS-1",
		"patientNhi": "ZZZ00AW", "patientDisplay": "Chaos T."})
	req, _ := http.NewRequest("POST", d.url+"/api/medtech/session/tokens", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+d.jwt)
	req.Header.Set("Content-Type", "application/json")
	oneShot := &http.Client{Timeout: probeTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := oneShot.Do(req)
	if err != nil {
		d.t.Fatalf("create session: %v", err)
	}
	defer resp.Body.Close()
	var c struct {
		SessionID string `json:"sessionId"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != http.StatusCreated || c.SessionID == "" {
		d.t.Fatalf("create session: HTTP %d %v", resp.StatusCode, err)
	}
	return c.SessionID
}

// waitAttempts waits until n more publishes were attempted (any outcome).
func (p *probe) waitAttempts(t *testing.T, what string, n int) {
	t.Helper()
	base := p.attempts()
	testutil.EventuallyWithin(t, what, settleBound, func() bool { return p.attempts() >= base+n })
}
