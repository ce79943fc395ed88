package ablybridge

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/hub"
)

// RedisProgressConfig configures RedisProgress.
type RedisProgressConfig struct {
	// Client is the Redis client; standalone, Sentinel and Cluster work.
	Client redis.UniversalClient
	// Prefix starts every key; use the hub's prefix so the cursor key
	// shares its channel's hash tag. Empty means "handoff".
	Prefix string
	// CursorTTL is how long a cursor outlives its last update. Zero means
	// DefaultCursorTTL.
	CursorTTL time.Duration
}

// RedisProgress keeps the bridge's state in Redis next to the Redis hub's
// histories, so a restarted node, or any other node, resumes where the
// last one stopped. Keys:
//
//	{prefix}:ably:pending          sorted set: channel → mark (Unix ms)
//	{prefix}:{<channel>}:ably      the channel's cursor, "<epoch>-<offset>"
//	{prefix}:{<channel>}:ably:lock the owner mirroring the channel now
//
// The per-channel keys share the channel's hash tag with its hub keys; the
// pending set is one key, so every script touches one key and Redis
// Cluster works. Marks and their ages use the Redis server's clock, so
// nodes with skewed clocks agree on them.
type RedisProgress struct {
	c         redis.UniversalClient
	prefix    string
	cursorTTL time.Duration
}

var _ Progress = (*RedisProgress)(nil)

var (
	//go:embed mark.lua
	markLua    string
	markScript = redis.NewScript(markLua)
	//go:embed markof.lua
	markOfLua    string
	markOfScript = redis.NewScript(markOfLua)
	//go:embed settle.lua
	settleLua    string
	settleScript = redis.NewScript(settleLua)
	//go:embed setcursor.lua
	setCursorLua    string
	setCursorScript = redis.NewScript(setCursorLua)
	//go:embed lock.lua
	lockLua    string
	lockScript = redis.NewScript(lockLua)
	//go:embed unlock.lua
	unlockLua    string
	unlockScript = redis.NewScript(unlockLua)
)

// NewRedisProgress returns a Progress stored in Redis.
func NewRedisProgress(cfg RedisProgressConfig) (*RedisProgress, error) {
	if cfg.Client == nil {
		return nil, errors.New("ably: RedisProgressConfig.Client is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "handoff"
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		// The channel name must stay the keys' Cluster hash tag.
		return nil, fmt.Errorf("ably: RedisProgressConfig.Prefix %q may not contain '{' or '}'", cfg.Prefix)
	}
	if cfg.CursorTTL <= 0 {
		cfg.CursorTTL = DefaultCursorTTL
	}
	return &RedisProgress{c: cfg.Client, prefix: cfg.Prefix, cursorTTL: cfg.CursorTTL}, nil
}

func (p *RedisProgress) pendingKey() string { return p.prefix + ":ably:pending" }

func (p *RedisProgress) cursorKey(channel string) string {
	return p.prefix + ":{" + channel + "}:ably"
}

func (p *RedisProgress) lockKey(channel string) string { return p.cursorKey(channel) + ":lock" }

// wrap marks Redis failures so callers can tell them from bad input.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("ably: redis %s: %w: %w", op, hub.ErrUnavailable, err)
}

// MarkPending implements Progress.
func (p *RedisProgress) MarkPending(ctx context.Context, channel string) error {
	return wrap("mark pending", markScript.Run(ctx, p.c, []string{p.pendingKey()}, channel).Err())
}

// Pending implements Progress. The set holds only channels with recent or
// unmirrored events, so reading it whole is cheap.
func (p *RedisProgress) Pending(ctx context.Context) ([]string, error) {
	out, err := p.c.ZRange(ctx, p.pendingKey(), 0, -1).Result()
	return out, wrap("read pending", err)
}

// Mark implements Progress.
func (p *RedisProgress) Mark(ctx context.Context, channel string) (Mark, bool, error) {
	v, err := markOfScript.Run(ctx, p.c, []string{p.pendingKey()}, channel).Int64Slice()
	if err != nil {
		return Mark{}, false, wrap("read mark", err)
	}
	if len(v) != 2 {
		return Mark{}, false, nil
	}
	return Mark{At: v[0], Age: time.Duration(v[1]-v[0]) * time.Millisecond}, true, nil
}

// Settle implements Progress.
func (p *RedisProgress) Settle(ctx context.Context, channel string, m Mark) (bool, error) {
	n, err := settleScript.Run(ctx, p.c, []string{p.pendingKey()}, channel, m.At).Int()
	return n == 1, wrap("settle", err)
}

// Cursor implements Progress.
func (p *RedisProgress) Cursor(ctx context.Context, channel string) (hub.Cursor, error) {
	s, err := p.c.Get(ctx, p.cursorKey(channel)).Result()
	if errors.Is(err, redis.Nil) {
		return hub.Cursor{}, nil
	}
	if err != nil {
		return hub.Cursor{}, wrap("read cursor", err)
	}
	c, err := hub.ParseCursor(s)
	if err != nil {
		return hub.Cursor{}, fmt.Errorf("ably: stored cursor of %s: %w", channel, err)
	}
	return c, nil
}

// SetCursor implements Progress.
func (p *RedisProgress) SetCursor(ctx context.Context, channel string, c hub.Cursor) error {
	if c.IsZero() {
		return wrap("reset cursor", p.c.Del(ctx, p.cursorKey(channel)).Err())
	}
	err := setCursorScript.Run(ctx, p.c, []string{p.cursorKey(channel)},
		c.Epoch, strconv.FormatUint(c.Offset, 10), p.cursorTTL.Milliseconds()).Err()
	return wrap("store cursor", err)
}

// Lock implements Progress.
func (p *RedisProgress) Lock(ctx context.Context, channel, owner string, ttl time.Duration) (bool, error) {
	n, err := lockScript.Run(ctx, p.c, []string{p.lockKey(channel)}, owner, ttl.Milliseconds()).Int()
	return n == 1, wrap("lock", err)
}

// Unlock implements Progress.
func (p *RedisProgress) Unlock(ctx context.Context, channel, owner string) error {
	return wrap("unlock", unlockScript.Run(ctx, p.c, []string{p.lockKey(channel)}, owner).Err())
}
