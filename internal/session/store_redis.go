package session

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lua scripts, kept as files so they read as Lua and diff cleanly.
var (
	//go:embed lua/session.lua
	sessionLua    string
	sessionScript = redis.NewScript(sessionLua)
	//go:embed lua/lease.lua
	leaseLua    string
	leaseScript = redis.NewScript(leaseLua)
	//go:embed lua/swap.lua
	swapLua    string
	swapScript = redis.NewScript(swapLua)
	//go:embed lua/admit.lua
	admitLua    string
	admitScript = redis.NewScript(admitLua)
)

// RedisStoreConfig configures the Redis session store.
type RedisStoreConfig struct {
	// Prefix is the deployment's key prefix, shared with the other Redis
	// users of handoff; the store adds "capture:" after it, so its keys never
	// meet theirs. (The infix predates this package's name and stays: a new
	// one would orphan every live session of a running deployment.) Zero means "handoff:". It must not contain "{" or "}",
	// which Redis Cluster reads as a hash tag.
	Prefix string
	// Retain is how long a session's records outlive its expiry, so the
	// sweeper still finds them; Redis deletes them after that even if no
	// sweeper runs. Zero means one hour.
	Retain time.Duration
}

// RedisStore keeps sessions in Redis, for deployments of several nodes.
//
// Layout (P = prefix + "capture:"): P{id}:s (hash: fixed fields as JSON, status, expiry,
// QR and mobile token hashes), P{id}:i (hash imageId -> image JSON) and
// P{id}:p (hash imageId -> pending upload) share the session id as hash tag,
// so every atomic step is one Lua script on one Cluster slot. Token and
// encounter indexes (P qr:<hash>, P mob:<hash>, P enc:<hash>) are single
// keys pointing at a session id; the session hash is the authority (a
// mobile index entry is trusted only if the session still names that hash),
// so an index that is stale or lags never grants access. P expiry is a
// sorted set of session ids by expiry, read by the sweeper. P uploads is a
// sorted set of pending uploads ("<id> <imageId> <expiry ms>") by URL
// expiry, read by the sweeper of stale uploads. P fac:<hash> is a facility's
// open sessions (id by deadline), which caps them (admit.lua). P prov:<hash>
// is the session a facility's provider opened last (ProviderSession).
type RedisStore struct {
	c      redis.UniversalClient
	prefix string
	retain time.Duration
}

var _ Store = (*RedisStore)(nil)

// casAttempts bounds optimistic retries of UpdateImage and RemoveImage; only
// writers racing on one image conflict, so a few are plenty.
const casAttempts = 16

// openAttempts bounds Open's retries when another node creates a session for
// the same encounter at the same moment.
const openAttempts = 4

// NewRedisStore returns a store on client.
func NewRedisStore(client redis.UniversalClient, cfg RedisStoreConfig) (*RedisStore, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "handoff:"
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, errors.New("session: Redis key prefix must not contain { or }")
	}
	cfg.Prefix += "capture:"
	if cfg.Retain <= 0 {
		cfg.Retain = time.Hour
	}
	return &RedisStore{c: client, prefix: cfg.Prefix, retain: cfg.Retain}, nil
}

func (r *RedisStore) sessionKeys(id string) []string {
	base := r.prefix + "{" + id + "}:"
	return []string{base + "s", base + "i", base + "p"}
}

func (r *RedisStore) qrKey(hash string) string  { return r.prefix + "qr:" + hash }
func (r *RedisStore) mobKey(hash string) string { return r.prefix + "mob:" + hash }
func (r *RedisStore) encKey(ek string) string   { return r.prefix + "enc:" + ek }
func (r *RedisStore) expiryKey() string         { return r.prefix + "expiry" }
func (r *RedisStore) uploadsKey() string        { return r.prefix + "uploads" }
func (r *RedisStore) facKey(fk string) string   { return r.prefix + "fac:" + fk }
func (r *RedisStore) provKey(pk string) string  { return r.prefix + "prov:" + pk }

// facilitySuffix names a facility's open-session set without putting its id
// in a key name.
func facilitySuffix(facility string) string {
	sum := sha256.Sum256([]byte("facility\x00" + facility))
	return hex.EncodeToString(sum[:16])
}

// encounterSuffix names the facility + encounter index without putting ids
// in key names, and without two pairs ever colliding on a separator.
func encounterSuffix(facility, encounter string) string {
	sum := sha256.Sum256([]byte(facility + "\x00" + encounter))
	return hex.EncodeToString(sum[:16])
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func fromMS(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

// run executes one op of session.lua and returns its reply as strings.
func (r *RedisStore) run(ctx context.Context, id, op string, now, expires time.Time, args ...any) ([]string, error) {
	argv := append([]any{op, ms(now), ms(expires), ms(expires.Add(r.retain))}, args...)
	res, err := sessionScript.Run(ctx, r.c, r.sessionKeys(id), argv...).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("session: redis %s: %w", op, err)
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("session: redis %s: empty reply", op)
	}
	return res, nil
}

// afterTouch extends the index keys of a session that was just written to,
// from a {"ok", ek, mobs} reply (mobs: every phone's hash, space-separated). The indexes live in other slots, so this is
// a separate step; it is best effort because a lagging index TTL costs at
// worst a rescan, never access, and the write itself has succeeded.
func (r *RedisStore) afterTouch(ctx context.Context, reply []string, expires time.Time) {
	if len(reply) < 3 {
		return
	}
	at := expires.Add(r.retain)
	_, _ = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		if reply[1] != "" {
			p.PExpireAt(ctx, r.encKey(reply[1]), at)
		}
		for _, h := range strings.Fields(reply[2]) {
			p.PExpireAt(ctx, r.mobKey(h), at)
		}
		return nil
	})
}

// Open implements Store.
func (r *RedisStore) Open(ctx context.Context, s Session, qr QRToken, maxOpen int) (Session, bool, error) {
	ek := encounterSuffix(s.Facility, s.EncounterID)
	s.ExpiresAt = clampExpiry(s.ExpiresAt, s.Deadline)
	for range openAttempts {
		cur, err := r.c.Get(ctx, r.encKey(ek)).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return Session{}, false, fmt.Errorf("session: redis get encounter: %w", err)
		}
		if cur != "" {
			got, err := r.reopen(ctx, cur, s, qr)
			if err == nil || !errors.Is(err, ErrNotFound) {
				return got, false, err
			}
		}
		if err := r.admit(ctx, s, maxOpen); err != nil {
			return Session{}, false, err
		}
		if err := r.create(ctx, s, qr, ek); err != nil {
			r.unadmit(ctx, s)
			return Session{}, false, err
		}
		won, err := swapScript.Run(ctx, r.c, []string{r.encKey(ek)}, cur, s.ID, ms(s.ExpiresAt.Add(r.retain))).Int()
		if err != nil {
			_ = r.Remove(ctx, s.ID)
			return Session{}, false, fmt.Errorf("session: redis set encounter: %w", err)
		}
		if won == 1 {
			r.markProvider(ctx, s)
			got, err := r.Get(ctx, s.ID, s.CreatedAt)
			return got, true, err
		}
		// Another node indexed its own session first: drop ours and reuse it.
		if err := r.Remove(ctx, s.ID); err != nil {
			return Session{}, false, err
		}
	}
	return Session{}, false, errors.New("session: redis: encounter index kept changing; try again")
}

// admit takes one of the facility's open-session slots for s, atomically
// with counting them (admit.lua); ErrTooManySessions if none is free. A
// slot is held until SetStatus closes the session, Remove deletes it, or
// its deadline (its expiry when it has none) passes.
func (r *RedisStore) admit(ctx context.Context, s Session, maxOpen int) error {
	until := s.Deadline
	if until.IsZero() {
		until = s.ExpiresAt
	}
	ok, err := admitScript.Run(ctx, r.c, []string{r.facKey(facilitySuffix(s.Facility))},
		ms(s.CreatedAt), max(maxOpen, 0), s.ID, ms(until), r.retain.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("session: redis admit session: %w", err)
	}
	if ok != 1 {
		return ErrTooManySessions
	}
	return nil
}

// unadmit frees the slot admit took for a session that was not created.
func (r *RedisStore) unadmit(ctx context.Context, s Session) {
	_ = r.c.ZRem(ctx, r.facKey(facilitySuffix(s.Facility)), s.ID).Err()
}

// reopen gives an existing open session a new QR token; ErrNotFound means
// the index pointed at a session that is gone or closed.
func (r *RedisStore) reopen(ctx context.Context, id string, s Session, qr QRToken) (Session, error) {
	if err := r.c.Set(ctx, r.qrKey(qr.Hash), id, 0).Err(); err != nil {
		return Session{}, fmt.Errorf("session: redis index QR token: %w", err)
	}
	// The QR index gets its TTL now; until the script has run it points at a
	// session whose qr field names another hash, so it grants nothing.
	_ = r.c.PExpireAt(ctx, r.qrKey(qr.Hash), s.ExpiresAt.Add(r.retain)).Err()
	res, err := r.run(ctx, id, "reopen", s.CreatedAt, s.ExpiresAt, s.PatientID, qr.Hash, ms(qr.ExpiresAt))
	if err != nil {
		return Session{}, err
	}
	switch res[0] {
	case "ok":
		r.afterTouch(ctx, res, s.ExpiresAt)
		mark := s
		mark.ID = id
		r.markProvider(ctx, mark)
		return r.Get(ctx, id, s.CreatedAt)
	case "mismatch":
		_ = r.c.Del(ctx, r.qrKey(qr.Hash)).Err()
		return Session{}, ErrPatientMismatch
	default:
		_ = r.c.Del(ctx, r.qrKey(qr.Hash)).Err()
		return Session{}, ErrNotFound
	}
}

// create writes a new session's records and schedules its expiry; the
// caller then indexes it by encounter.
func (r *RedisStore) create(ctx context.Context, s Session, qr QRToken, ek string) error {
	fixed := s
	fixed.Images, fixed.Pending = nil, nil
	data, err := json.Marshal(fixed)
	if err != nil {
		return fmt.Errorf("session: encode session: %w", err)
	}
	keep := s.ExpiresAt.Add(r.retain)
	_, err = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, r.qrKey(qr.Hash), s.ID, 0)
		p.PExpireAt(ctx, r.qrKey(qr.Hash), keep)
		p.ZAdd(ctx, r.expiryKey(), redis.Z{Score: float64(s.ExpiresAt.UnixMilli()), Member: s.ID})
		return nil
	})
	if err != nil {
		return fmt.Errorf("session: redis index new session: %w", err)
	}
	dl := ""
	if !s.Deadline.IsZero() {
		dl = ms(s.Deadline)
	}
	res, err := r.run(ctx, s.ID, "create", s.CreatedAt, s.ExpiresAt,
		string(data), s.PatientID, s.MaxImages, qr.Hash, ms(qr.ExpiresAt), ek,
		max(s.MaxBytes, 0), dl, facilitySuffix(s.Facility))
	if err != nil {
		return err
	}
	if res[0] != "ok" {
		return fmt.Errorf("session: redis create: session id already in use")
	}
	return nil
}

// Get implements Store.
func (r *RedisStore) Get(ctx context.Context, id string, now time.Time) (Session, error) {
	s, _, err := r.load(ctx, id, now)
	return s, err
}

// load reads a live session and also returns its raw hash fields.
func (r *RedisStore) load(ctx context.Context, id string, now time.Time) (Session, map[string]string, error) {
	return r.loadAt(ctx, id, now, true)
}

// loadAt reads a session, only a live one if live (else one past its
// expiry reads as StatusExpired), and also returns its raw hash fields.
// The three reads run in MULTI so they see one state.
func (r *RedisStore) loadAt(ctx context.Context, id string, now time.Time, live bool) (Session, map[string]string, error) {
	keys := r.sessionKeys(id)
	var hs, hi, hp *redis.MapStringStringCmd
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		hs, hi, hp = p.HGetAll(ctx, keys[0]), p.HGetAll(ctx, keys[1]), p.HGetAll(ctx, keys[2])
		return nil
	})
	if err != nil {
		return Session{}, nil, fmt.Errorf("session: redis load session: %w", err)
	}
	f := hs.Val()
	expired := !now.Before(fromMS(f["exp"]))
	if f["data"] == "" || live && expired {
		return Session{}, nil, ErrNotFound
	}
	s, err := decodeSession(f, hi.Val(), hp.Val())
	if expired {
		s.Status = StatusExpired
	}
	return s, f, err
}

func decodeSession(f, images, pending map[string]string) (Session, error) {
	var s Session
	if err := json.Unmarshal([]byte(f["data"]), &s); err != nil {
		return Session{}, fmt.Errorf("session: decode session: %w", err)
	}
	s.Status = Status(f["status"])
	s.ExpiresAt = fromMS(f["exp"])
	s.MobileConnectedAt = fromMS(f["conn"])
	s.Phones = len(strings.Fields(f["mob"]))
	s.Images = make([]Image, 0, len(images))
	for _, v := range images {
		var img Image
		if err := json.Unmarshal([]byte(v), &img); err != nil {
			return Session{}, fmt.Errorf("session: decode image: %w", err)
		}
		s.Images = append(s.Images, img)
	}
	sortImages(s.Images)
	s.Pending = make(map[string]PendingUpload, len(pending))
	for id, v := range pending {
		var p redisPending
		if err := json.Unmarshal([]byte(v), &p); err != nil {
			return Session{}, fmt.Errorf("session: decode pending upload: %w", err)
		}
		s.Pending[id] = p.upload()
	}
	return s, nil
}

// redisPending is a pending upload as session.lua reads it (exp in ms).
type redisPending struct {
	Key         string `json:"key,omitempty"`
	ContentType string `json:"ct"`
	Size        int64  `json:"size"`
	Exp         int64  `json:"exp"`
}

func (p redisPending) upload() PendingUpload {
	return PendingUpload{Key: p.Key, ContentType: p.ContentType, Size: p.Size, ExpiresAt: time.UnixMilli(p.Exp).UTC()}
}

// SetStatus implements Store.
func (r *RedisStore) SetStatus(ctx context.Context, id string, status Status, now time.Time) error {
	res, err := r.run(ctx, id, "status", now, now, string(status))
	if err != nil {
		return err
	}
	if res[0] != "ok" {
		return ErrNotFound
	}
	if status != StatusOpen && len(res) > 1 && res[1] != "" {
		if err := swapScript.Run(ctx, r.c, []string{r.encKey(res[1])}, id, "", "0").Err(); err != nil {
			return fmt.Errorf("session: redis drop encounter index: %w", err)
		}
	}
	if status != StatusOpen && len(res) > 2 && res[2] != "" {
		if err := r.c.ZRem(ctx, r.facKey(res[2]), id).Err(); err != nil {
			return fmt.Errorf("session: redis free open-session slot: %w", err)
		}
	}
	return nil
}

// Expired implements Store: lease.lua takes due sessions off the schedule
// atomically, then each is confirmed against its own expiry, which writes
// may have pushed later without rescheduling (they do not touch the
// schedule, which lives in another slot); those are rescheduled instead.
func (r *RedisStore) Expired(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]string, error) {
	ids, err := leaseScript.Run(ctx, r.c, []string{r.expiryKey()}, ms(now), ms(now.Add(lease)), limit).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("session: redis lease expired sessions: %w", err)
	}
	var due []string
	for _, id := range ids {
		res, err := r.run(ctx, id, "expire", now, now)
		if err != nil {
			return due, err
		}
		if res[0] == "live" && len(res) > 1 {
			exp := fromMS(res[1])
			if err := r.c.ZAdd(ctx, r.expiryKey(), redis.Z{Score: float64(exp.UnixMilli()), Member: id}).Err(); err != nil {
				return due, fmt.Errorf("session: redis reschedule session: %w", err)
			}
			continue
		}
		due = append(due, id)
	}
	return due, nil
}

// Remove implements Store. Superseded QR index keys are left to expire:
// they point at a session that no longer exists, which reads as unknown.
func (r *RedisStore) Remove(ctx context.Context, id string) error {
	keys := r.sessionKeys(id)
	f, err := r.c.HMGet(ctx, keys[0], "qr", "mob", "ek", "fk", "rev").Result()
	if err != nil {
		return fmt.Errorf("session: redis read session: %w", err)
	}
	str := func(v any) string { s, _ := v.(string); return s }
	_, err = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, keys...)
		if h := str(f[0]); h != "" {
			p.Del(ctx, r.qrKey(h))
		}
		for _, h := range strings.Fields(str(f[1]) + " " + str(f[4])) {
			p.Del(ctx, r.mobKey(h))
		}
		if ek := str(f[2]); ek != "" {
			swapScript.Eval(ctx, p, []string{r.encKey(ek)}, id, "", "0")
		}
		if fk := str(f[3]); fk != "" {
			p.ZRem(ctx, r.facKey(fk), id)
		}
		p.ZRem(ctx, r.expiryKey(), id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("session: redis remove session: %w", err)
	}
	return nil
}

// Ping implements Store.
func (r *RedisStore) Ping(ctx context.Context) error {
	if err := r.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("session: redis: %w", err)
	}
	return nil
}
