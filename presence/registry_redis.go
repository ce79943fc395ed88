package presence

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisConfig configures the registry shared by every node on one Redis.
type RedisConfig struct {
	// Client reaches Redis (standalone, Sentinel or Cluster). Required;
	// Stop does not close it.
	Client redis.UniversalClient
	// Prefix starts every key and PubSub channel, as for the hub. Zero
	// means "handoff". It may not contain '{', '}' or glob characters.
	Prefix string
	// NodeID names this node in member records and its lease. Zero means
	// a random one; it must differ between the nodes of a deployment.
	NodeID string
	// Grace is how long a detached connection's members stay. Zero means
	// DefaultGrace.
	Grace time.Duration
	// NodeTimeout is how long a node's lease lasts without renewal: a node
	// silent that long is dead and its members are removed. Zero means
	// DefaultNodeTimeout.
	NodeTimeout time.Duration
	// SweepInterval is how often the lease is renewed and the sweeper runs.
	// Zero means DefaultSweepInterval. Keep it well under NodeTimeout.
	SweepInterval time.Duration
	// HistorySize and HistoryTTL bound each channel's presence history.
	// Zero means DefaultHistorySize, DefaultHistoryTTL.
	HistorySize int
	HistoryTTL  time.Duration
	// MaxDataBytes bounds a member's data. Zero means MaxDataBytes.
	MaxDataBytes int
	// LostTTL is how long a connection removed for being gone too long is
	// remembered for Claim. Zero means DefaultLostTTL.
	LostTTL time.Duration
	// Now is the clock of Grace deadlines and event timestamps, for tests.
	// Nil means time.Now. Leases are timed by Redis's clock.
	Now func() time.Time
}

func (c *RedisConfig) defaults() error {
	if c.Client == nil {
		return errors.New("presence: RedisConfig.Client is required")
	}
	if c.Prefix == "" {
		c.Prefix = "handoff"
	}
	if strings.ContainsAny(c.Prefix, "{}*?[]\\") {
		return fmt.Errorf("presence: Redis prefix %q may not contain braces or glob characters", c.Prefix)
	}
	if c.NodeID == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		c.NodeID = hex.EncodeToString(b)
	}
	if strings.Contains(c.NodeID, "|") {
		return fmt.Errorf("presence: node id %q may not contain '|'", c.NodeID)
	}
	c.Grace = cmpOr(c.Grace, DefaultGrace)
	c.NodeTimeout = cmpOr(c.NodeTimeout, DefaultNodeTimeout)
	c.SweepInterval = cmpOr(c.SweepInterval, DefaultSweepInterval)
	c.HistorySize = cmpOr(c.HistorySize, DefaultHistorySize)
	c.HistoryTTL = cmpOr(c.HistoryTTL, DefaultHistoryTTL)
	c.MaxDataBytes = cmpOr(c.MaxDataBytes, MaxDataBytes)
	c.LostTTL = cmpOr(c.LostTTL, DefaultLostTTL)
	if c.SweepInterval >= c.NodeTimeout {
		// The lease is renewed every SweepInterval: it would lapse between
		// renewals, and live nodes would be swept as dead.
		return fmt.Errorf("presence: SweepInterval %v must be shorter than NodeTimeout %v", c.SweepInterval, c.NodeTimeout)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

var (
	//go:embed redis_apply.lua
	applyLua    string
	applyScript = redis.NewScript(applyLua)
	//go:embed redis_remove.lua
	removeLua    string
	removeScript = redis.NewScript(removeLua)
	//go:embed redis_conn.lua
	connLua    string
	connScript = redis.NewScript(connLua)
	//go:embed redis_nodes.lua
	nodesLua    string
	nodesScript = redis.NewScript(nodesLua)
	//go:embed redis_forget.lua
	forgetLua    string
	forgetScript = redis.NewScript(forgetLua)
)

// Redis is the registry of a deployment whose nodes share one Redis.
// Per channel it keeps, under the channel as Cluster hash tag:
//
//	<prefix>:presence:{<channel>}:members  hash "<connId>\0<clientId>" → member JSON
//	<prefix>:presence:{<channel>}:meta     hash, same fields → "<owner node>|<detached until ms, 0 live>"
//	<prefix>:presence:{<channel>}:history  list of "<serial> <event JSON>", newest first (HistorySize, HistoryTTL)
//	<prefix>:presence:{<channel>}:lost     hash connId → ms until which Claim reports it lost
//	<prefix>:presence:{<channel>}:serial   the channel's event counter
//
// and events are PUBLISHed, as in history, on
// "<prefix>:presence:{<channel>}:pub". Every change of a channel is one Lua
// script, so it is atomic and announced in the order applied, with the
// next serial. Beside them:
//
//	<prefix>:presence:conn:{<connId>}  set of the connection's channels (Close, Detach, Claim)
//	<prefix>:presence:channels         sorted set of channels that may have members (the sweeper's walk)
//	<prefix>:presence:nodes            hash node → lease end (ms, Redis clock)
//
// Every node renews its lease every SweepInterval and sweeps every
// SweepInterval: it removes members whose Grace ended and members of nodes
// whose lease ended, each with one synthesized LEAVE however many nodes
// sweep at once (redis_remove.lua). A dead node's members are so gone
// within NodeTimeout + SweepInterval.
//
// Each node reads every channel's events over one PubSub connection
// (PSUBSCRIBE "<prefix>:presence:{*}:pub"): presence changes are rare next
// to messages, and one pattern needs no per-channel subscribe round trip.
// PubSub loses what is published while a node reconnects: the node sees
// the gap in a channel's serials (or reconnected) and reads the missed
// events from history before it delivers newer ones (redis_gaps.go).
//
// While Redis is unreachable Apply, Members, History, CloseConnection,
// DetachConnection and Claim return errors (the transport NACKs or
// retries). After Redis returns, presence is whatever Redis kept: a
// Redis that restarted empty has no members, and clients only re-enter
// when their transport tells them (a connection that resumes calls Claim,
// which then says lost=false as Redis remembers nothing).
type Redis struct {
	cfg    RedisConfig
	client redis.UniversalClient
	fan    *fanout
	synth  atomic.Uint64

	ps    *redis.PubSub
	ready chan struct{} // closed once the pattern subscription is confirmed
	pos   serials       // per channel, the last event delivered

	life context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
	once sync.Once
}

var _ Registry = (*Redis)(nil)

// Limits of the Redis registry.
const (
	// subscribeWait bounds how long Subscribe waits for the node's pattern
	// subscription to be confirmed when the node just started.
	subscribeWait = 5 * time.Second
	// leaveRetries bounds the compare-and-delete of a LEAVE whose member
	// keeps changing under it (each retry means another change succeeded).
	leaveRetries = 16
	// forgetAfter is how long a channel stays in the sweeper's walk after
	// its last ENTER/UPDATE although it has no members; see redis_forget.lua.
	forgetAfter = time.Minute
	// forgetNodesAfter is how long an ended lease is remembered, so the
	// members of a dead node are recognised as such.
	forgetNodesAfter = time.Hour
	// connKeyMargin keeps a detached connection's channel set a little
	// longer than the Grace and lost windows it serves.
	connKeyMargin = time.Minute
)

// NewRedis returns a registry on cfg.Client and starts its lease, sweeper
// and PubSub reader; Stop ends them. It does not wait for Redis.
func NewRedis(cfg RedisConfig) (*Redis, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	r := &Redis{cfg: cfg, client: cfg.Client, fan: newFanout(), ready: make(chan struct{}), pos: serials{m: map[string]position{}}}
	r.life, r.stop = context.WithCancel(context.Background())
	r.ps = r.client.PSubscribe(r.life) // no pattern yet: connects later, in receive
	r.wg.Go(r.receive)
	r.wg.Go(r.renewLease)
	r.wg.Go(r.runSweeper)
	return r, nil
}

// NodeID returns the node's id.
func (r *Redis) NodeID() string { return r.cfg.NodeID }

func (r *Redis) key(channel, kind string) string {
	return r.cfg.Prefix + ":presence:{" + channel + "}:" + kind
}
func (r *Redis) pubKey(channel string) string { return r.key(channel, "pub") }
func (r *Redis) connKey(connID string) string {
	return r.cfg.Prefix + ":presence:conn:{" + connID + "}"
}
func (r *Redis) channelsKey() string { return r.cfg.Prefix + ":presence:channels" }
func (r *Redis) nodesKey() string    { return r.cfg.Prefix + ":presence:nodes" }

// channelKeys are the keys of redis_remove.lua, in its order.
func (r *Redis) channelKeys(channel string) []string {
	return []string{r.key(channel, "members"), r.key(channel, "meta"), r.key(channel, "history"), r.key(channel, "lost"), r.key(channel, "serial")}
}

func field(connID, clientID string) string { return connID + "\x00" + clientID }

func ms(t time.Time) int64 { return t.UnixMilli() }

// Apply implements Registry.
func (r *Redis) Apply(ctx context.Context, c Change) (Event, bool, error) {
	if err := c.validate(r.cfg.MaxDataBytes); err != nil {
		return Event{}, false, err
	}
	mem := Member{
		Channel: c.Channel, ClientID: c.ClientID, ConnectionID: c.ConnectionID,
		ID: c.ID, Data: c.Data, Encoding: c.Encoding, Timestamp: r.cfg.Now(),
	}
	if c.Action == Leave {
		return r.leave(ctx, mem)
	}
	ev := Event{Action: c.Action, Member: mem}
	memJSON, evJSON, err := marshal2(mem, ev)
	if err != nil {
		return Event{}, false, err
	}
	// Index first: a failure after this leaves an entry that finds nothing,
	// never a member that Close and the sweeper cannot find.
	_, err = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, r.channelsKey(), redis.Z{Score: float64(ms(mem.Timestamp)), Member: c.Channel})
		p.SAdd(ctx, r.connKey(c.ConnectionID), c.Channel)
		return nil
	})
	if err == nil {
		_, err = r.runApply(ctx, mem, "set", memJSON, r.cfg.NodeID+"|0", evJSON)
	}
	if err != nil {
		return Event{}, false, fmt.Errorf("presence: apply on redis: %w", err)
	}
	return ev, true, nil
}

// leave removes a member by compare-and-delete: its event carries the
// member's data when the LEAVE has none, which Go reads first.
func (r *Redis) leave(ctx context.Context, mem Member) (Event, bool, error) {
	members := r.key(mem.Channel, "members")
	for range leaveRetries {
		cur, err := r.client.HGet(ctx, members, field(mem.ConnectionID, mem.ClientID)).Result()
		if errors.Is(err, redis.Nil) {
			return Event{}, false, nil
		}
		if err != nil {
			return Event{}, false, fmt.Errorf("presence: leave on redis: %w", err)
		}
		ev := Event{Action: Leave, Member: mem}
		if len(mem.Data) == 0 {
			var old Member
			if err := json.Unmarshal([]byte(cur), &old); err != nil {
				return Event{}, false, fmt.Errorf("presence: member record on redis: %w", err)
			}
			ev.Data, ev.Encoding = old.Data, old.Encoding
		}
		evJSON, err := json.Marshal(ev)
		if err != nil {
			return Event{}, false, err
		}
		res, err := r.runApply(ctx, mem, "del", cur, "", evJSON)
		switch {
		case err != nil:
			return Event{}, false, fmt.Errorf("presence: leave on redis: %w", err)
		case res == 1:
			return ev, true, nil
		case res == 0:
			return Event{}, false, nil
		}
	}
	return Event{}, false, fmt.Errorf("presence: leave on redis: the member kept changing")
}

func (r *Redis) runApply(ctx context.Context, mem Member, op, memJSON, meta string, evJSON []byte) (int64, error) {
	k := r.channelKeys(mem.Channel)
	keys := []string{k[0], k[1], k[2], k[4]}
	return applyScript.Run(ctx, r.client, keys,
		field(mem.ConnectionID, mem.ClientID), op, memJSON, meta, evJSON,
		r.cfg.HistorySize, r.cfg.HistoryTTL.Milliseconds(), r.pubKey(mem.Channel)).Int64()
}

// decodePayload reads an event as published and kept in history.
func decodePayload(s string) (int64, Event, error) {
	num, js, ok := strings.Cut(s, " ")
	serial, err := strconv.ParseInt(num, 10, 64)
	if !ok || err != nil {
		return 0, Event{}, errors.New("no serial")
	}
	var ev Event
	err = json.Unmarshal([]byte(js), &ev)
	return serial, ev, err
}

func marshal2(mem Member, ev Event) (string, []byte, error) {
	memJSON, err := json.Marshal(mem)
	if err != nil {
		return "", nil, err
	}
	evJSON, err := json.Marshal(ev)
	return string(memJSON), evJSON, err
}

// Members implements Registry.
func (r *Redis) Members(ctx context.Context, channel string) ([]Member, error) {
	if err := checkChannel(channel); err != nil {
		return nil, err
	}
	all, err := r.client.HVals(ctx, r.key(channel, "members")).Result()
	if err != nil {
		return nil, fmt.Errorf("presence: members from redis: %w", err)
	}
	out := make([]Member, 0, len(all))
	for _, s := range all {
		var m Member
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			return nil, fmt.Errorf("presence: member record on redis: %w", err)
		}
		out = append(out, m)
	}
	sortMembers(out)
	return out, nil
}

// History implements Registry.
func (r *Redis) History(ctx context.Context, channel string, q HistoryQuery) ([]Event, error) {
	if err := checkChannel(channel); err != nil {
		return nil, err
	}
	q, err := q.normalize()
	if err != nil {
		return nil, err
	}
	all, err := r.client.LRange(ctx, r.key(channel, "history"), 0, int64(r.cfg.HistorySize)-1).Result()
	if err != nil {
		return nil, fmt.Errorf("presence: history from redis: %w", err)
	}
	kept := make([]Event, 0, len(all))
	for _, s := range all {
		_, ev, err := decodePayload(s)
		if err != nil {
			return nil, fmt.Errorf("presence: history record on redis: %w", err)
		}
		kept = append(kept, ev)
	}
	return selectHistory(kept, q, r.cfg.Now(), r.cfg.HistoryTTL), nil
}

// synthID numbers this node's synthesized LEAVEs; the node id keeps two
// nodes' apart.
func (r *Redis) synthID(connID string) string {
	return synthID(connID, r.cfg.NodeID+"."+strconv.FormatUint(r.synth.Add(1), 10))
}

// Stop implements Registry.
func (r *Redis) Stop() {
	r.once.Do(func() {
		r.stop()
		_ = r.ps.Close()
	})
	r.wg.Wait()
}
