package ablyrt

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore is a ConnStore on Redis, shared by every node of a
// deployment, so a connection resumed on another node keeps its id and
// its msgSerial dedupe. Per connection it keeps two keys with the
// connection id as their Cluster hash tag:
//
//	<prefix>:ablyconn:{connId}         while the connection is resumable (TTL): "h:" and
//	                                   the holding transport's key nonce, "h:" alone when none
//	                                   holds it (older nodes wrote "1": no holder known)
//	<prefix>:ablyconn:{connId}:out     hash msgSerial → JSON Outcome (TTL)
//	<prefix>:ablyconn:{connId}:outidx  sorted set of the hash's msgSerials (TTL)
//
// A connection keeps the outcomes of its highest maxOutcomes serials
// (record.lua): the SDKs resend only the latest, still unacknowledged
// ones, and the bound holds whatever order a client numbers in.
type RedisStore struct {
	client redis.UniversalClient
	prefix string
}

// NewRedisStore returns a store on client; prefix is the deployment's key
// prefix ("handoff" when empty).
func NewRedisStore(client redis.UniversalClient, prefix string) *RedisStore {
	if prefix == "" {
		prefix = "handoff"
	}
	return &RedisStore{client: client, prefix: prefix}
}

func (s *RedisStore) keys(connID string) (alive, out, index string) {
	base := s.prefix + ":ablyconn:{" + connID + "}"
	return base, base + ":out", base + ":outidx"
}

var (
	//go:embed record.lua
	recordLua    string
	recordScript = redis.NewScript(recordLua)
	//go:embed hold.lua
	holdLua    string
	holdScript = redis.NewScript(holdLua)
)

// holderValue is the alive key's value for holder ("" for none).
func holderValue(holder string) string { return "h:" + holder }

// hold runs hold.lua in mode ("hold", "refresh" or "release").
func (s *RedisStore) hold(ctx context.Context, mode, connID, holder string, ttl time.Duration) (bool, error) {
	alive, out, index := s.keys(connID)
	n, err := holdScript.Run(ctx, s.client, []string{alive, out, index}, mode, holderValue(holder), ttl.Milliseconds()).Int()
	return n == 1, err
}

// Hold implements ConnStore.
func (s *RedisStore) Hold(ctx context.Context, connID, holder string, ttl time.Duration) error {
	_, err := s.hold(ctx, "hold", connID, holder, ttl)
	return err
}

// Refresh implements ConnStore.
func (s *RedisStore) Refresh(ctx context.Context, connID, holder string, ttl time.Duration) (bool, error) {
	return s.hold(ctx, "refresh", connID, holder, ttl)
}

// Release implements ConnStore.
func (s *RedisStore) Release(ctx context.Context, connID, holder string, ttl time.Duration) error {
	_, err := s.hold(ctx, "release", connID, holder, ttl)
	return err
}

// Holder implements ConnStore.
func (s *RedisStore) Holder(ctx context.Context, connID string) (string, bool, error) {
	alive, _, _ := s.keys(connID)
	v, err := s.client.Get(ctx, alive).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return "", false, nil
	case err != nil:
		return "", false, err
	}
	holder, ok := strings.CutPrefix(v, "h:")
	if !ok {
		holder = "" // "1", an older node's: no holder known
	}
	return holder, true, nil
}

// Outcome implements ConnStore.
func (s *RedisStore) Outcome(ctx context.Context, connID string, msgSerial int64) (Outcome, bool, error) {
	_, out, _ := s.keys(connID)
	b, err := s.client.HGet(ctx, out, strconv.FormatInt(msgSerial, 10)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return Outcome{}, false, nil
	case err != nil:
		return Outcome{}, false, err
	}
	var o Outcome
	if err := json.Unmarshal(b, &o); err != nil {
		return Outcome{}, false, err
	}
	return o, true, nil
}

// Record implements ConnStore.
func (s *RedisStore) Record(ctx context.Context, connID string, msgSerial int64, o Outcome, ttl time.Duration) error {
	alive, out, index := s.keys(connID)
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	return recordScript.Run(ctx, s.client, []string{out, index, alive},
		strconv.FormatInt(msgSerial, 10), b, ttl.Milliseconds(), maxOutcomes).Err()
}

// Forget implements ConnStore.
func (s *RedisStore) Forget(ctx context.Context, connID string) error {
	alive, out, index := s.keys(connID)
	return s.client.Del(ctx, alive, out, index).Err()
}
