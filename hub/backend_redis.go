package hub

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"hash/maphash"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisConfig configures the Redis backend.
type RedisConfig struct {
	// Client reaches Redis: redis.NewClient (standalone),
	// redis.NewFailoverClient (Sentinel) or redis.NewClusterClient. It is
	// required, and it stays its owner's: Close does not close it.
	Client redis.UniversalClient
	// Prefix starts every key and PubSub channel, so several deployments
	// can share one Redis. Zero means "handoff". It may not contain '{' or
	// '}': the channel name must stay the keys' Cluster hash tag.
	Prefix string
	// HistorySize is the number of events kept per channel. Zero means
	// DefaultHistorySize.
	HistorySize int
	// HistoryTTL is how long a channel's history lives after its last
	// publish. Zero means DefaultHistoryTTL.
	HistoryTTL time.Duration
	// Shards is the number of delivery goroutines; a channel always maps to
	// the same one, which keeps its events in order while a slow channel
	// (a subscriber replaying under its lock) does not stall the others.
	// Zero means 4.
	Shards int
	// PingInterval is how long the PubSub connection may stay silent before
	// it is probed with a PING. A probe unanswered for another interval
	// means the connection is dead (e.g. a half-open TCP connection after a
	// failover), and it is replaced. Zero means 5s.
	PingInterval time.Duration
}

// Limits of the Redis backend's PubSub link.
const (
	// redisSubscribeTimeout bounds how long Subscribe waits for Redis to
	// confirm, so a subscriber is refused instead of hanging when Run is
	// not running or the link is stuck.
	redisSubscribeTimeout = 5 * time.Second
	// redisMinBackoff and redisMaxBackoff pace reconnection attempts while
	// Redis is down: fast enough to resume within a second, slow enough not
	// to spin.
	redisMinBackoff = 50 * time.Millisecond
	redisMaxBackoff = time.Second
)

var (
	//go:embed publish.lua
	publishLua    string
	publishScript = redis.NewScript(publishLua)
	//go:embed history.lua
	historyLua    string
	historyScript = redis.NewScript(historyLua)

	// errLinkLost fails Subscribe calls whose confirmation was in flight
	// when the PubSub connection broke.
	errLinkLost = errors.New("redis pubsub connection lost")
	errStopped  = errors.New("redis backend stopped")
	// errMalformedEvent: a stream entry or message not written by publish.lua.
	errMalformedEvent = errors.New("malformed event")
)

// Redis is the multi-node backend. Per channel it keeps a Stream of
// events and a meta hash (epoch, top) under keys sharing the channel as
// hash tag, e.g. "handoff:{session:abc}:stream", so Cluster serves each
// channel from one slot and the publish script may touch both keys.
//
// Live events travel over plain PUBLISH/SUBSCRIBE on "<prefix>:{<channel>}:pub",
// read through ONE PubSub connection per node that is subscribed only to
// channels with local subscribers. Plain PubSub rather than sharded
// SPUBLISH/SSUBSCRIBE: it works unchanged on standalone, Sentinel and
// Cluster (where Redis broadcasts it over the cluster bus) and from Redis
// 5, while sharded PubSub would need one connection per shard and slot
// migration handling. At clinic scale the broadcast costs little.
type Redis struct {
	cfg    RedisConfig
	client redis.UniversalClient
	head   string // "<prefix>:{", how every key starts
	ttl    int64  // HistoryTTL in milliseconds
	seed   maphash.Seed

	mu sync.Mutex
	// ps is the node's PubSub connection; nil once stopped.
	ps *redis.PubSub
	// keys are the PubSub channels subscribed, to rebuild ps.
	keys map[string]struct{}
	// waiters are Subscribe calls waiting for the PONG of their token.
	waiters map[string]chan error
	seq     atomic.Uint64 // makes PING tokens unique

	shards []*eventQueue
	resync chan struct{}
	closed chan struct{}
	once   sync.Once
}

var _ Backend = (*Redis)(nil)

// NewRedis returns a Redis backend. It does not contact Redis; Ping does.
func NewRedis(cfg RedisConfig) (*Redis, error) {
	if cfg.Client == nil {
		return nil, errors.New("hub: RedisConfig.Client is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "handoff"
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("hub: RedisConfig.Prefix %q may not contain '{' or '}'", cfg.Prefix)
	}
	if cfg.HistorySize <= 0 {
		cfg.HistorySize = DefaultHistorySize
	}
	if cfg.HistoryTTL <= 0 {
		cfg.HistoryTTL = DefaultHistoryTTL
	}
	if cfg.Shards <= 0 {
		cfg.Shards = 4
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 5 * time.Second
	}
	r := &Redis{
		cfg:     cfg,
		client:  cfg.Client,
		head:    cfg.Prefix + ":{",
		ttl:     max(cfg.HistoryTTL.Milliseconds(), 1),
		seed:    maphash.MakeSeed(),
		ps:      cfg.Client.Subscribe(context.Background()), // connects lazily
		keys:    make(map[string]struct{}),
		waiters: make(map[string]chan error),
		resync:  make(chan struct{}, 1),
		closed:  make(chan struct{}),
	}
	for i := 0; i < cfg.Shards; i++ {
		r.shards = append(r.shards, newEventQueue())
	}
	return r, nil
}

// key names one of channel's keys; the braces make channel the hash tag.
func (r *Redis) key(channel, kind string) string { return r.head + channel + "}:" + kind }

// channelOf extracts the hub channel from a PubSub channel name.
func (r *Redis) channelOf(pubsub string) (string, bool) {
	s, ok1 := strings.CutPrefix(pubsub, r.head)
	s, ok2 := strings.CutSuffix(s, "}:pub")
	return s, ok1 && ok2
}

// Publish runs publish.lua: next offset, XADD with MAXLEN, TTL and
// PUBLISH in one step. An error wraps ErrUnavailable. A timeout or a
// connection lost after the script was sent leaves it unknown whether the
// event was stored; it is then in history or nowhere, never half-written.
func (r *Redis) Publish(ctx context.Context, channel string, p Publication) (Event, error) {
	var res string
	err := errStopped
	if !r.isClosed() {
		keys := []string{r.key(channel, "meta"), r.key(channel, "stream")}
		res, err = publishScript.Run(ctx, r.client, keys, NewEpoch(), r.cfg.HistorySize, r.ttl,
			r.key(channel, "pub"), p.Type, []byte(p.Data)).Text()
	}
	var ev Event
	if err == nil {
		ev, _, err = parseEvent(channel, res)
	}
	if err != nil {
		return Event{}, fmt.Errorf("redis publish to %q: %w: %w", channel, ErrUnavailable, err)
	}
	ev.Data = p.Data // the caller's bytes rather than a copy of the echo, as Memory
	return ev, nil
}

// History runs history.lua, which applies Memory.History's rules.
func (r *Redis) History(ctx context.Context, channel string, since Cursor) ([]Event, Cursor, error) {
	keys := []string{r.key(channel, "meta"), r.key(channel, "stream")}
	res, err := historyScript.Run(ctx, r.client, keys, since.Epoch, since.Offset,
		"0-"+strconv.FormatUint(since.Offset+1, 10)).Slice()
	if err != nil {
		return nil, Cursor{}, fmt.Errorf("redis history of %q: %w: %w", channel, ErrUnavailable, err)
	}
	if len(res) == 0 {
		if since.IsZero() {
			return nil, Cursor{}, nil
		}
		return nil, Cursor{}, ErrUnrecoverable
	}
	if len(res) < 3 {
		return nil, Cursor{}, fmt.Errorf("redis history of %q: malformed reply", channel)
	}
	top, err := parseTop(res[0], res[1])
	if err != nil {
		return nil, Cursor{}, fmt.Errorf("redis history of %q: %w", channel, err)
	}
	if ok, _ := res[2].(int64); ok != 1 {
		return nil, top, ErrUnrecoverable
	}
	evs := make([]Event, 0, len(res)-3)
	for _, v := range res[3:] {
		s, _ := v.(string)
		ev, err := decodeEvent(channel, s)
		if err != nil {
			return nil, Cursor{}, fmt.Errorf("redis history of %q: %w", channel, err)
		}
		evs = append(evs, ev)
	}
	return evs, top, nil
}

// Top implements Backend with one HMGET, atomic by itself.
func (r *Redis) Top(ctx context.Context, channel string) (Cursor, error) {
	vals, err := r.client.HMGet(ctx, r.key(channel, "meta"), "epoch", "top").Result()
	if err != nil {
		return Cursor{}, fmt.Errorf("redis top of %q: %w: %w", channel, ErrUnavailable, err)
	}
	if vals[0] == nil {
		return Cursor{}, nil
	}
	top, err := parseTop(vals[0], vals[1])
	if err != nil {
		return Cursor{}, fmt.Errorf("redis top of %q: %w", channel, err)
	}
	return top, nil
}

// parseTop reads the meta hash's epoch and top as returned by Redis.
func parseTop(epoch, top any) (Cursor, error) {
	e, _ := epoch.(string)
	t, _ := top.(string)
	off, err := strconv.ParseUint(t, 10, 64)
	if e == "" || err != nil {
		return Cursor{}, errors.New("malformed channel meta")
	}
	return Cursor{Epoch: e, Offset: off}, nil
}

// decodeEvent parses an event as publish.lua encodes it. ID, Type and
// Channel share the input's memory; only Data is copied, because
// receivers may hold on to it as a byte slice.
func decodeEvent(channel, s string) (Event, error) {
	ev, data, err := parseEvent(channel, s)
	if err == nil && data != "" {
		ev.Data = []byte(data)
	}
	return ev, err
}

// parseEvent splits "<cursor> <unix µs> <len(type)> <type><data>" without
// allocating, returning the event without Data, and the data text.
func parseEvent(channel, s string) (Event, string, error) {
	id, rest, ok1 := strings.Cut(s, " ")
	ts, rest, ok2 := strings.Cut(rest, " ")
	n, rest, ok3 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || !ok3 {
		return Event{}, "", errMalformedEvent
	}
	cur, err := ParseCursor(id)
	us, err2 := strconv.ParseInt(ts, 10, 64)
	tlen, err3 := strconv.Atoi(n)
	if err != nil || cur.Epoch == "" || err2 != nil || err3 != nil || tlen < 0 || tlen > len(rest) {
		return Event{}, "", errMalformedEvent
	}
	ev := Event{ID: id, Channel: channel, Type: rest[:tlen], TS: time.UnixMicro(us).UTC(), Cursor: cur}
	return ev, rest[tlen:], nil
}

// Subscribe sends SUBSCRIBE and then a PING with a unique token on the
// node's PubSub connection, and returns once the PONG is read: Redis
// answers in order, so the subscription is then in effect, and every
// later PUBLISH reaches this node.
func (r *Redis) Subscribe(ctx context.Context, channel string) error {
	key := r.key(channel, "pub")
	done := make(chan error, 1)
	token := r.token("sub-")
	r.mu.Lock()
	err := errStopped
	if r.ps != nil {
		// Recorded before SUBSCRIBE so a connection rebuilt meanwhile
		// subscribes it too.
		r.keys[key] = struct{}{}
		r.waiters[token] = done
		if err = r.ps.Subscribe(ctx, key); err == nil {
			err = r.ps.Ping(ctx, token)
		}
	}
	r.mu.Unlock()
	if err == nil {
		err = r.await(ctx, done)
	}
	if err != nil {
		r.mu.Lock()
		delete(r.waiters, token)
		r.mu.Unlock()
		_ = r.Unsubscribe(context.WithoutCancel(ctx), channel)
		return fmt.Errorf("redis subscribe to %q: %w: %w", channel, ErrUnavailable, err)
	}
	return nil
}

// await waits for a Subscribe's confirmation.
func (r *Redis) await(ctx context.Context, done <-chan error) error {
	t := time.NewTimer(redisSubscribeTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errors.New("no confirmation from redis (is Run running?)")
	case <-r.closed:
		return errStopped
	}
}

// Unsubscribe sends UNSUBSCRIBE without waiting: events still in flight
// are ignored by the hub, which has no subscriber for them.
func (r *Redis) Unsubscribe(ctx context.Context, channel string) error {
	key := r.key(channel, "pub")
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.keys, key)
	if r.ps == nil {
		return nil
	}
	if err := r.ps.Unsubscribe(ctx, key); err != nil {
		return fmt.Errorf("redis unsubscribe from %q: %w: %w", channel, ErrUnavailable, err)
	}
	return nil
}

// Run reads the PubSub connection, hands events to per-channel-ordered
// delivery shards, and calls h.Resync whenever the connection was lost and
// its subscriptions are confirmed again.
func (r *Redis) Run(ctx context.Context, h Handler) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, q := range r.shards {
		wg.Go(func() {
			for {
				batch, ok := q.pop(ctx, r.closed)
				if !ok {
					return
				}
				for _, ev := range batch {
					h.HandleEvent(ev)
				}
			}
		})
	}
	wg.Go(func() { r.resyncLoop(ctx, h) })
	// The receive loop blocks in a read; closing the connection ends it.
	wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-r.closed:
		}
		r.stopPubSub()
	})
	err := r.receive(ctx)
	cancel()
	wg.Wait()
	return err
}

// resyncLoop calls h.Resync when receive asks for it. The hub repairs
// from history through the client's connection pool, which may still be
// failing its dials when the PubSub connection is back first; a repair
// that fails is not retried, so Resync waits until the pool answers.
func (r *Redis) resyncLoop(ctx context.Context, h Handler) {
	for {
		select {
		case <-r.resync:
		case <-ctx.Done():
			return
		}
		for backoff := redisMinBackoff; r.client.Ping(ctx).Err() != nil; backoff = min(2*backoff, redisMaxBackoff) {
			if !r.sleep(ctx, backoff) {
				return
			}
		}
		h.Resync()
	}
}

// receive is Run's read loop. After the connection failed, live events
// may have been lost: it pings until the connection is back (go-redis
// reconnects and resubscribes every channel before the PING), and the
// PONG, read after every resubscription was confirmed, triggers Resync.
func (r *Redis) receive(ctx context.Context) error {
	var (
		broken  bool   // the link failed; a resync is due once it is back
		resync  string // token whose PONG triggers the resync
		probing bool   // an idle probe is outstanding
		backoff = redisMinBackoff
	)
	for {
		ps := r.pubsub()
		if r.isClosed() {
			return nil
		}
		if ps == nil { // stopped because ctx ended
			return ctx.Err()
		}
		if broken {
			token := r.token("resync-")
			if err := ps.Ping(ctx, token); err != nil {
				if !r.sleep(ctx, backoff) {
					return ctx.Err()
				}
				backoff = min(2*backoff, redisMaxBackoff)
				continue
			}
			broken, resync, backoff = false, token, redisMinBackoff
		}
		msg, err := ps.ReceiveTimeout(ctx, r.cfg.PingInterval)
		if err == nil {
			probing = false
			if r.handle(msg) == resync && resync != "" {
				resync = ""
				select {
				case r.resync <- struct{}{}:
				default: // one is pending already; it will see everything
				}
			}
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if isTimeout(err) && !probing {
			probing = true
			if err = ps.Ping(ctx, "probe"); err == nil {
				continue
			}
		} else if isTimeout(err) {
			r.rebuild()
		}
		probing, broken = false, true
		r.failWaiters()
	}
}

// handle dispatches one PubSub reply and returns a PONG's token.
func (r *Redis) handle(msg any) string {
	switch m := msg.(type) {
	case *redis.Message:
		name, ok := r.channelOf(m.Channel)
		if !ok {
			return ""
		}
		ev, err := decodeEvent(name, m.Payload)
		if err != nil {
			return "" // not written by publish.lua: not an event of ours
		}
		r.shards[maphash.String(r.seed, name)%uint64(len(r.shards))].push(ev)
	case *redis.Pong:
		r.mu.Lock()
		w := r.waiters[m.Payload]
		delete(r.waiters, m.Payload)
		r.mu.Unlock()
		if w != nil {
			w <- nil
		}
		return m.Payload
	}
	return ""
}

// rebuild replaces a connection that stopped answering. go-redis only
// reconnects on errors, and a half-open connection never returns one.
func (r *Redis) rebuild() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ps == nil {
		return
	}
	old := r.ps
	r.ps = r.client.Subscribe(context.Background())
	if len(r.keys) > 0 {
		keys := make([]string, 0, len(r.keys))
		for k := range r.keys {
			keys = append(keys, k)
		}
		// On failure go-redis keeps the channels and subscribes them on
		// its next connection.
		_ = r.ps.Subscribe(context.Background(), keys...)
	}
	_ = old.Close()
}

// failWaiters fails the Subscribe calls whose PING may never be answered.
func (r *Redis) failWaiters() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for token, w := range r.waiters {
		w <- errLinkLost
		delete(r.waiters, token)
	}
}

// pubsub returns the PubSub connection, nil once stopped.
func (r *Redis) pubsub() *redis.PubSub {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ps
}

func (r *Redis) token(kind string) string { return kind + strconv.FormatUint(r.seq.Add(1), 10) }

// stopPubSub closes the PubSub connection for good.
func (r *Redis) stopPubSub() {
	r.mu.Lock()
	if r.ps != nil {
		_ = r.ps.Close()
		r.ps = nil
	}
	r.mu.Unlock()
	r.failWaiters()
}

func (r *Redis) isClosed() bool {
	select {
	case <-r.closed:
		return true
	default:
		return false
	}
}

// sleep waits d, or reports false when the backend stops first.
func (r *Redis) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-r.closed:
		return false
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Ping implements Backend.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis ping: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// Close stops Run and closes the PubSub connection. The Client stays open.
func (r *Redis) Close() error {
	r.once.Do(func() {
		close(r.closed)
		r.stopPubSub()
	})
	return nil
}
