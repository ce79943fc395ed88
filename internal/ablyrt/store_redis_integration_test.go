//go:build integration

package ablyrt

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/internal/testutil"
)

// newRedisStore is a RedisStore on a redis-server of the test's own, and
// the client under it.
func newRedisStore(t *testing.T, prefix string) (*RedisStore, *redis.Client) {
	t.Helper()
	r := testutil.StartRedis(t)
	rc := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { _ = rc.Close() })
	return NewRedisStore(rc, prefix), rc
}

// TestRedisStoreHolder: the holder contract on Redis (hold.lua), and a
// value an older node wrote ("1") reads as resumable with no holder.
func TestRedisStoreHolder(t *testing.T) {
	t.Parallel()
	s, rc := newRedisStore(t, "holder")
	testStoreHolder(t, s)
	ctx := context.Background()
	alive, _, _ := s.keys("old")
	rc.Set(ctx, alive, "1", time.Minute)
	h, ok, err := s.Holder(ctx, "old")
	if err != nil || !ok || h != "" {
		t.Fatalf("an older node's value: holder %q, alive %v, err %v; want no holder, alive", h, ok, err)
	}
	if held, err := s.Refresh(ctx, "old", "n1", time.Minute); err != nil || !held {
		t.Fatalf("refresh over an older node's value: %v, %v", held, err)
	}
	if ttl := rc.PTTL(ctx, alive).Val(); ttl <= 0 {
		t.Fatalf("alive TTL %v after a refresh, want one", ttl)
	}
}

// TestRedisStoreBounded: whatever order a connection's msgSerials come
// in, its outcome hash holds at most maxOutcomes entries, the highest
// serials, which are still answered; the index beside it stays the same
// size; and Forget removes every key.
func TestRedisStoreBounded(t *testing.T) {
	t.Parallel()
	s, rc := newRedisStore(t, "bounded")
	ctx := context.Background()
	const conn = "c1"
	record := func(serial int64) {
		t.Helper()
		if err := s.Record(ctx, conn, serial, Outcome{Serials: []string{"e-" + strconv.FormatInt(serial, 10)}}, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	// A jump far ahead, then serials below it, then a second pass over
	// the same ones: with a drop of "serial-maxOutcomes" per record none
	// of these would ever be dropped.
	record(100_000)
	for i := range int64(2 * maxOutcomes) {
		record(i * 7 % (2 * maxOutcomes))
	}
	for i := range int64(maxOutcomes / 2) {
		record(100_000 + 10*i)
	}
	_, out, index := s.keys(conn)
	testutil.Equal(t, "outcomes kept", int64(maxOutcomes), rc.HLen(ctx, out).Val())
	testutil.Equal(t, "index size", int64(maxOutcomes), rc.ZCard(ctx, index).Val())
	for _, serial := range []int64{100_000 + 10*(maxOutcomes/2-1), 2*maxOutcomes - 1, 1500} {
		o, ok, err := s.Outcome(ctx, conn, serial)
		if err != nil || !ok {
			t.Fatalf("serial %d: kept %v, err %v", serial, ok, err)
		}
		testutil.Equal(t, "outcome of "+strconv.FormatInt(serial, 10), "e-"+strconv.FormatInt(serial, 10), o.Serials[0])
	}
	if _, ok, _ := s.Outcome(ctx, conn, 1499); ok {
		t.Fatal("serial 1499 is below the highest 1000 and should be gone")
	}
	if ttl := rc.PTTL(ctx, index).Val(); ttl <= 0 {
		t.Fatalf("index TTL %v, want one", ttl)
	}
	if err := s.Forget(ctx, conn); err != nil {
		t.Fatal(err)
	}
	alive, _, _ := s.keys(conn)
	testutil.Equal(t, "keys left after Forget", int64(0), rc.Exists(ctx, alive, out, index).Val())
}
