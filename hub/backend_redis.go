package hub

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/internal/backoff"
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
	// the same one, which keeps its events in order. Zero means
	// defaultShards (4).
	Shards int
	// Dedupe bounds the message ids each channel remembers (dedupe.go),
	// kept in Redis beside the channel's history, so every node shares
	// them. The zero value means Ably's window and DefaultDedupeIDs.
	Dedupe DedupeConfig
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

	// readyKeyTTL bounds how long a node's readiness key outlives its last
	// check: the key only proves a write works, and must not pile up.
	readyKeyTTL = 30 * time.Second
)

// redisReconnect paces reconnection attempts while Redis is down: fast
// enough to resume within a second, slow enough not to spin.
var redisReconnect = backoff.Policy{Min: 50 * time.Millisecond, Max: time.Second}

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
// events and a meta hash (epoch, top, and the dataset generation the epoch
// belongs to), and for deduplication the recent message ids (a hash and a
// sorted set by time, dedupe.go), under keys sharing the channel as hash tag, e.g.
// "handoff:{session:abc}:stream", so Cluster serves each channel from one
// slot and the publish script may touch both keys. The generation is the
// server's run_id and master_replid: a Redis that restarted (perhaps from
// an old snapshot) or was promoted from a lagging replica has a new one,
// and the channel's next publish starts a new epoch instead of reissuing
// offsets that were handed out before the data was lost.
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
	node   string // random, names this node's readiness key
	// scriptArgs are publish.lua's first arguments (history size and TTL,
	// dedupe window and bound), boxed once rather than per call.
	scriptArgs [4]any

	// mu guards ps, keys and waiters. It is never held across I/O: the
	// receive loop takes it for every PONG, and live delivery of every
	// channel would wait behind a slow write.
	mu sync.Mutex
	// ps is the node's PubSub connection; nil once stopped.
	ps *redis.PubSub
	// keys are the PubSub channels subscribed, to rebuild ps.
	keys map[string]struct{}
	// waiters are Subscribe calls waiting for the PONG of their token.
	waiters map[string]chan error
	seq     atomic.Uint64 // makes PING tokens unique

	// batch queues publishes for publish.lua (backend_redis_batch.go).
	batch batcher
	// life is cancelled by Close; batches are sent with it, as they
	// belong to no one caller.
	life context.Context
	stop context.CancelFunc

	delivery *delivery
	resync   chan struct{}
	closed   chan struct{}
	once     sync.Once
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
	cfg.Dedupe = cfg.Dedupe.withDefaults()
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 5 * time.Second
	}
	life, stop := context.WithCancel(context.Background())
	return &Redis{
		life:   life,
		stop:   stop,
		cfg:    cfg,
		client: cfg.Client,
		head:   cfg.Prefix + ":{",
		node:   NewEpoch(),
		scriptArgs: [4]any{cfg.HistorySize, max(cfg.HistoryTTL.Milliseconds(), 1),
			max(cfg.Dedupe.Window.Milliseconds(), 1), cfg.Dedupe.MaxIDs},
		ps:       cfg.Client.Subscribe(context.Background()), // connects lazily
		keys:     make(map[string]struct{}),
		waiters:  make(map[string]chan error),
		delivery: newDelivery(cfg.Shards),
		resync:   make(chan struct{}, 1),
		closed:   make(chan struct{}),
	}, nil
}

// key names one of channel's keys; the braces make channel the hash tag.
func (r *Redis) key(channel, kind string) string { return r.head + channel + "}:" + kind }

// channelOf extracts the hub channel from a PubSub channel name.
func (r *Redis) channelOf(pubsub string) (string, bool) {
	s, ok1 := strings.CutPrefix(pubsub, r.head)
	s, ok2 := strings.CutSuffix(s, "}:pub")
	return s, ok1 && ok2
}

// Publish stores the event with publish.lua (next offset, XADD with
// MAXLEN, TTL and PUBLISH in one step), batched with concurrent publishes
// (backend_redis_batch.go). An error wraps ErrUnavailable. A timeout or a
// connection lost after the script was sent leaves it unknown whether the
// event was stored; it is then in history or nowhere, never half-written.
func (r *Redis) Publish(ctx context.Context, channel string, p Publication) (Event, error) {
	res, err := r.publish(ctx, channel, r.key(channel, "pub"), p)
	var ev Event
	dup := false
	if err == nil {
		if res, dup = strings.CutPrefix(res, "="); dup {
			ev, err = decodeEvent(channel, res) // the first publish's data
			ev.Duplicate = true
		} else {
			ev, _, err = parseEvent(channel, res)
			ev.Data = p.Data // the caller's bytes rather than a copy of the echo, as Memory
		}
	}
	if err != nil {
		return Event{}, fmt.Errorf("redis publish to %q: %w: %w", channel, ErrUnavailable, err)
	}
	return ev, nil
}

// publish queues one event for the next batch and waits for its encoded
// form. A caller whose ctx ends first returns at once; its event is then
// stored with its batch or, if the batch was not sent yet, not at all.
func (r *Redis) publish(ctx context.Context, channel, pubsub string, p Publication) (string, error) {
	if r.isClosed() {
		return "", errStopped
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	req := pubReqPool.Get().(*pubReq)
	req.ctx, req.channel, req.pubsub, req.p = ctx, channel, pubsub, p
	r.submit(req)
	select {
	case <-req.done:
	case <-ctx.Done():
		// A leader's event was sent already; the select still prefers
		// neither, so look again before calling it given up.
		select {
		case <-req.done:
		default:
			return "", ctx.Err() // req stays with its batch, and is not reused
		}
	}
	res, err := req.res, req.err
	*req = pubReq{done: req.done}
	pubReqPool.Put(req)
	return res, err
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

// Ping implements Backend: Redis can take a publish, not merely answer. A
// PING is not enough: a Cluster master answers it while the cluster is
// down (cluster_state:fail, every publish refused with CLUSTERDOWN), and a
// demoted Sentinel master answers it read-only. So Ping asks every Cluster
// master for its cluster state, then writes this node's readiness key (a
// short TTL, its own hash tag), which only a reachable, writable master
// accepts.
func (r *Redis) Ping(ctx context.Context) error {
	err := r.clusterOK(ctx)
	if err == nil {
		err = r.client.Set(ctx, r.key("ready:"+r.node, "ready"), "1", readyKeyTTL).Err()
	}
	if err != nil {
		return fmt.Errorf("redis readiness: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// clusterOK checks that every master of a Cluster reports cluster_state:ok.
// Other deployments have no cluster state.
func (r *Redis) clusterOK(ctx context.Context) error {
	cc, ok := r.client.(*redis.ClusterClient)
	if !ok {
		return nil
	}
	return cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		info, err := m.ClusterInfo(ctx).Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("%s: cluster state is not ok", m.Options().Addr)
		}
		return nil
	})
}

// Close stops Run and closes the PubSub connection. The Client stays open.
func (r *Redis) Close() error {
	r.once.Do(func() {
		close(r.closed)
		r.stop()
		r.stopPubSub()
	})
	return nil
}
