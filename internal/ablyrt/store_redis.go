package ablyrt

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore is a ConnStore on Redis, shared by every node of a
// deployment, so a connection resumed on another node keeps its id and
// its msgSerial dedupe. Per connection it keeps two keys with the
// connection id as their Cluster hash tag:
//
//	<prefix>:ablyconn:{connId}      "1" while the connection is resumable (TTL)
//	<prefix>:ablyconn:{connId}:out  hash msgSerial → JSON Outcome (TTL)
//
// The SDKs number msgSerials upwards, so recording serial n drops n-1000:
// a connection keeps at most the last 1000 outcomes.
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

func (s *RedisStore) keys(connID string) (alive, out string) {
	base := s.prefix + ":ablyconn:{" + connID + "}"
	return base, base + ":out"
}

// Keep implements ConnStore.
func (s *RedisStore) Keep(ctx context.Context, connID string, ttl time.Duration) error {
	alive, out := s.keys(connID)
	_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, alive, "1", ttl)
		p.PExpire(ctx, out, ttl)
		return nil
	})
	return err
}

// Alive implements ConnStore.
func (s *RedisStore) Alive(ctx context.Context, connID string) (bool, error) {
	alive, _ := s.keys(connID)
	n, err := s.client.Exists(ctx, alive).Result()
	return n == 1, err
}

// Outcome implements ConnStore.
func (s *RedisStore) Outcome(ctx context.Context, connID string, msgSerial int64) (Outcome, bool, error) {
	_, out := s.keys(connID)
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
	alive, out := s.keys(connID)
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	_, err = s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, out, strconv.FormatInt(msgSerial, 10), b)
		p.HDel(ctx, out, strconv.FormatInt(msgSerial-maxOutcomes, 10))
		p.PExpire(ctx, out, ttl)
		p.PExpire(ctx, alive, ttl)
		return nil
	})
	return err
}

// Forget implements ConnStore.
func (s *RedisStore) Forget(ctx context.Context, connID string) error {
	alive, out := s.keys(connID)
	return s.client.Del(ctx, alive, out).Err()
}
