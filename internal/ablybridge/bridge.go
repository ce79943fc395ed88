// Package ablybridge mirrors handoff's hub events to Ably, for practices
// that already run Ably as their production realtime transport, and issues
// the scoped Ably tokens their desktop widgets subscribe with.
//
// Delivery is at least once, in order per channel, and loss is never
// silent: the hub's history is the queue (the bridge holds no copy of an
// event), a channel is durably marked pending before each publish, and a
// channel's cursor advances only after Ably acknowledged the event. Each
// Ably message id is derived from the event's cursor, so Ably discards the
// duplicates a retry or a restart produces.
package ablybridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/ably/ably-go/ably"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/backoff"
)

// Config configures a Bridge. Zero values take the defaults in defaults.go.
type Config struct {
	// Key is the Ably API key, "appId.keyId:secret" (HANDOFF_ABLY_KEY).
	// Required. It is never logged.
	Key string
	// ChannelTemplate names the Ably channel of a capture session; the
	// placeholders {sessionId} and {encounterId} are replaced. Empty means
	// DefaultChannelTemplate ("session:{sessionId}").
	ChannelTemplate string
	// EventNames maps hub event types to Ably message names, e.g.
	// "image.added" → "image-uploaded". Nil or a missing type keeps the
	// hub's name. See ParseEventNames.
	EventNames map[string]string
	// BackoffMin and BackoffMax bound the jittered exponential delay
	// between retries. Zero means DefaultBackoffMin / DefaultBackoffMax.
	BackoffMin, BackoffMax time.Duration
	// PublishTimeout bounds one publish attempt. Zero means
	// DefaultPublishTimeout.
	PublishTimeout time.Duration
	// Concurrency is how many channels are mirrored at once. Zero means
	// DefaultConcurrency.
	Concurrency int
	// SettleGrace is how old a pending mark must be before a drained
	// channel leaves the pending set; it must exceed the longest hub
	// publish. Zero means DefaultSettleGrace.
	SettleGrace time.Duration
	// RescanInterval is how often the whole pending set is re-read. Zero
	// means DefaultRescanInterval.
	RescanInterval time.Duration
	// RESTOptions are appended to the bridge's ably-go options, after its
	// own (key, idempotent publishing, timeouts, silent ably-go logging),
	// so they win. Tests point the client at a local stub with them.
	RESTOptions []ably.ClientOption
}

// Bridge mirrors the hub's session channels to Ably. Only channels named
// "session:{id}" are bridged; other channels (integrator channels published
// through the REST endpoint) are ignored, because their Ably channel name
// cannot be derived from a session.
type Bridge struct {
	hub      *hub.Hub
	cfg      Config
	names    namer
	rest     *ably.REST
	progress Progress
	log      zerolog.Logger
	m        *metrics
	// owner names this bridge in channel locks.
	owner string
	// sem bounds the channels mirrored at once.
	sem     chan struct{}
	failLog *rate.Sometimes
	okLog   *rate.Sometimes

	mu      sync.Mutex
	ctx     context.Context // Run's context; nil until Run
	stopped bool            // Run is over; no worker may start
	workers map[string]*worker
	timers  map[string]recheck
	// contention counts, per channel, the lock attempts in a row that
	// another node won.
	contention map[string]int
	lagTotal   uint64
	lagging    int
	wg         sync.WaitGroup
}

// worker is the bridge's state of one channel being mirrored. At most one
// goroutine per channel runs at a time, which keeps the channel's order on
// this node; the channel lock does the same across nodes.
type worker struct {
	running bool // a goroutine owns the channel
	dirty   bool // something may have changed since it last looked
	known   bool // cursor and top below have been read
	cursor  hub.Cursor
	top     hub.Cursor
	lag     uint64
}

// recheck is a scheduled kick of one channel.
type recheck struct {
	t   *time.Timer
	due time.Time
}

// New builds a bridge over h and installs h's publish hooks; h must not be
// publishing yet, and nothing else may use its hooks. progress keeps the
// bridge's state (memory with the memory hub, Redis with the Redis hub).
// resolve may be nil unless cfg.ChannelTemplate uses {encounterId}. reg
// may be nil to skip metric registration.
func New(h *hub.Hub, cfg Config, progress Progress, resolve Resolver, reg prometheus.Registerer, log zerolog.Logger) (*Bridge, error) {
	if h == nil || progress == nil {
		return nil, errors.New("ably: New needs a hub and a Progress")
	}
	if err := checkKey(cfg.Key); err != nil {
		return nil, err
	}
	cfg = withDefaults(cfg)
	names, err := newNamer(cfg.ChannelTemplate, resolve)
	if err != nil {
		return nil, err
	}
	opts := append([]ably.ClientOption{
		ably.WithKey(cfg.Key),
		ably.WithIdempotentRESTPublishing(true),
		ably.WithHTTPRequestTimeout(cfg.PublishTimeout),
		// ably-go would log every failed attempt; the bridge logs
		// failures itself, rate-limited and without message data.
		ably.WithLogLevel(ably.LogNone),
	}, cfg.RESTOptions...)
	rest, err := ably.NewREST(opts...)
	if err != nil {
		return nil, fmt.Errorf("ably: invalid client options: %w", err)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("ably: register metrics: %w", err)
	}
	b := &Bridge{
		hub: h, cfg: cfg, names: names, rest: rest, progress: progress,
		log:     log.With().Str("component", "ably_bridge").Logger(),
		m:       m,
		owner:   randomOwner(),
		sem:     make(chan struct{}, cfg.Concurrency),
		failLog: &rate.Sometimes{First: 1, Interval: failLogInterval},
		okLog:   &rate.Sometimes{First: 1, Interval: failLogInterval},
		workers: make(map[string]*worker),
		timers:  make(map[string]recheck),

		contention: make(map[string]int),
	}
	h.SetPublishHooks(hub.PublishHooks{Before: b.before, After: b.after})
	return b, nil
}

// checkKey validates the key's shape without ever echoing it.
func checkKey(key string) error {
	name, secret, ok := strings.Cut(key, ":")
	if !ok || secret == "" || !strings.Contains(name, ".") {
		return errors.New("ably: HANDOFF_ABLY_KEY must be an Ably API key of the form appId.keyId:secret")
	}
	return nil
}

func withDefaults(cfg Config) Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.BackoffMin, DefaultBackoffMin)
	def(&cfg.BackoffMax, DefaultBackoffMax)
	def(&cfg.PublishTimeout, DefaultPublishTimeout)
	def(&cfg.SettleGrace, DefaultSettleGrace)
	def(&cfg.RescanInterval, DefaultRescanInterval)
	if cfg.BackoffMax < cfg.BackoffMin {
		cfg.BackoffMax = cfg.BackoffMin
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	// Workers read the map concurrently; the caller keeps its own.
	cfg.EventNames = maps.Clone(cfg.EventNames)
	return cfg
}

func randomOwner() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("ably: crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// AblyChannel returns the Ably channel a capture session's events are
// mirrored to. The token endpoint's authorize function uses it, so tokens
// name exactly the channel the bridge publishes to.
func (b *Bridge) AblyChannel(ctx context.Context, sessionID string) (string, error) {
	return b.names.name(ctx, sessionID)
}

// before is the hub's Before hook: the channel is durably pending before
// its event exists, so a crash between the two cannot lose the event.
func (b *Bridge) before(ctx context.Context, channel string) error {
	if _, ok := sessionOf(channel); !ok {
		return nil
	}
	return b.progress.MarkPending(ctx, channel)
}

// after is the hub's After hook: it wakes the channel's worker. It never
// blocks.
func (b *Bridge) after(ev hub.Event) {
	if _, ok := sessionOf(ev.Channel); !ok {
		return
	}
	b.noteTop(ev.Channel, ev.Cursor)
	b.kick(ev.Channel)
}

// Run mirrors until ctx ends: it first resumes every channel left pending
// (by this node before a restart, or by a node that died), then follows
// the publish hooks and rescans the pending set periodically. It returns
// nil once ctx has ended and every worker has stopped; events not yet
// acknowledged stay pending for the next run.
func (b *Bridge) Run(ctx context.Context) error {
	b.mu.Lock()
	if b.ctx != nil {
		b.mu.Unlock()
		return errors.New("ably: Bridge.Run called twice")
	}
	b.ctx = ctx
	for ch, w := range b.workers {
		if w.dirty && !w.running {
			b.startLocked(ch, w)
		}
	}
	b.mu.Unlock()

	b.rescan(ctx, true)
	t := time.NewTicker(b.cfg.RescanInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			b.stop()
			return nil
		case <-t.C:
			b.rescan(ctx, false)
		}
	}
}

// rescan kicks every pending channel; first is the scan at start.
func (b *Bridge) rescan(ctx context.Context, first bool) {
	chans, err := b.progress.Pending(ctx)
	if err != nil {
		if ctx.Err() == nil {
			b.m.failures.WithLabelValues(failProgress).Inc()
			b.log.Error().Str("error", err.Error()).Msg("ably bridge: cannot read the pending channels; will rescan")
		}
		return
	}
	if len(chans) > 0 {
		// Loud at start (a restart resuming a backlog), quiet afterwards:
		// recently active channels are always pending for a while.
		level := zerolog.DebugLevel
		if first {
			level = zerolog.InfoLevel
		}
		b.log.WithLevel(level).Int("channels", len(chans)).Msg("ably bridge: resuming pending channels")
	}
	for _, ch := range chans {
		if _, ok := sessionOf(ch); ok {
			b.kick(ch)
		}
	}
}

// stop waits for every worker after Run's context ended.
func (b *Bridge) stop() {
	b.mu.Lock()
	b.stopped = true
	for ch, r := range b.timers {
		r.t.Stop()
		delete(b.timers, ch)
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// kick makes sure channel gets looked at: it starts its worker, or tells a
// running one to look again when it is done.
func (b *Bridge) kick(channel string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.workers[channel]
	if w == nil {
		w = &worker{}
		b.workers[channel] = w
	}
	w.dirty = true
	if !w.running && b.ctx != nil && !b.stopped {
		b.startLocked(channel, w)
	}
}

// kickAfter schedules a kick of channel after d, keeping an earlier one.
func (b *Bridge) kickAfter(channel string, d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	due := time.Now().Add(d)
	r, ok := b.timers[channel]
	if b.stopped || ok && !r.due.After(due) {
		return
	}
	if ok {
		r.t.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		b.mu.Lock()
		if r, ok := b.timers[channel]; ok && r.t == t {
			delete(b.timers, channel)
		}
		b.mu.Unlock()
		b.kick(channel)
	})
	b.timers[channel] = recheck{t: t, due: due}
}

// contended records whether channel's lock was refused and returns how
// long to wait before trying again: lockRetry at first, so an event
// published through this node while another finishes the channel waits
// about half a second, doubling up to BackoffMax (jittered like every
// retry), so nodes do not poll a lock held through a long Ably outage.
func (b *Bridge) contended(channel string, refused bool) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !refused {
		delete(b.contention, channel)
		return 0
	}
	n := b.contention[channel]
	b.contention[channel] = n + 1
	return backoff.Policy{Min: lockRetry, Max: b.cfg.BackoffMax}.Delay(n)
}

// startLocked starts channel's worker goroutine. Called with b.mu held.
func (b *Bridge) startLocked(channel string, w *worker) {
	w.running = true
	b.wg.Add(1)
	go b.work(b.ctx, channel, w)
}

// work mirrors channel for as long as kicks keep coming.
func (b *Bridge) work(ctx context.Context, channel string, w *worker) {
	defer b.wg.Done()
	for {
		b.mu.Lock()
		if !w.dirty || ctx.Err() != nil {
			w.running = false
			b.setLagLocked(w, false, 0)
			if b.workers[channel] == w {
				delete(b.workers, channel)
			}
			b.mu.Unlock()
			return
		}
		w.dirty = false
		b.mu.Unlock()

		select {
		case b.sem <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		b.sync(ctx, channel, w)
		<-b.sem
	}
}
