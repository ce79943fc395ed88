package hub

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/internal/testutil"
)

// Redis backend tests that need no server. The ones against a real
// redis-server are in backend_redis_integration_test.go.

func TestNewRedisConfig(t *testing.T) {
	t.Parallel()
	if _, err := NewRedis(RedisConfig{}); err == nil {
		t.Error("NewRedis without a Client succeeded")
	}
	// Nothing listens on port 1; one dial attempt is enough to learn that.
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialerRetries: 1, MaxRetries: -1})
	defer c.Close()
	if _, err := NewRedis(RedisConfig{Client: c, Prefix: "a{b}"}); err == nil {
		t.Error("NewRedis accepted a prefix with a hash tag")
	}
	r, err := NewRedis(RedisConfig{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	type defaults struct {
		Prefix       string
		HistorySize  int
		HistoryTTL   time.Duration
		PingInterval time.Duration
	}
	testutil.Check(t, "zero config's defaults",
		defaults{"handoff", DefaultHistorySize, DefaultHistoryTTL, 5 * time.Second},
		defaults{r.cfg.Prefix, r.cfg.HistorySize, r.cfg.HistoryTTL, r.cfg.PingInterval})
	testutil.Check(t, "stream key", "handoff:{session:abc}:stream", r.key("session:abc", "stream"))
	for in, want := range map[string]string{
		"handoff:{session:abc}:pub": "session:abc",
		"handoff:{}:pub":            "",
		"other:{session:abc}:pub":   "-",
		"handoff:{session:abc}:x":   "-",
		"handoff:{":                 "-",
	} {
		got, ok := r.channelOf(in)
		if !ok {
			got = "-"
		}
		if got != want {
			t.Errorf("channelOf(%q) = %q, want %q", in, got, want)
		}
	}
	// Unreachable Redis: every call fails loudly, wrapping ErrUnavailable.
	ctx := context.Background()
	if _, err := r.Publish(ctx, "c", Publication{Type: "t"}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Publish to an unreachable Redis: %v", err)
	}
	if err := r.Ping(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Ping of an unreachable Redis: %v", err)
	}
}

func TestDecodeEventRejectsForeignText(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "x", "abc-1 2", "abc-1 2 3", "abc-1 x 1 t", "0 1 1 t", "abc-1 1 9 t", "abc-1 1 -1 t", "ABC-1 1 1 t"} {
		if ev, err := decodeEvent("c", s); err == nil {
			t.Errorf("decodeEvent(%q) = %+v, want an error", s, ev)
		}
	}
	ev, err := decodeEvent("c", "abc-7 1700000000000001 3 a b{}")
	if err != nil {
		t.Fatalf("decodeEvent: %v", err)
	}
	want := Event{ID: "abc-7", Channel: "c", Type: "a b", Data: []byte("{}"),
		TS: time.UnixMicro(1700000000000001).UTC(), Cursor: Cursor{"abc", 7}}
	testutil.Equal(t, "decoded event", want, ev)
}

// TestKeySlot: the batcher groups a Cluster's events by the slot Redis
// gives their keys (values from the CLUSTER KEYSLOT documentation).
func TestKeySlot(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]int{
		"somekey":                    11058,
		"foo{hash_tag}":              2515,
		"{hash_tag}:other":           2515,
		"foo":                        12182,
		"handoff:{foo}:meta":         12182,
		"handoff:{foo}:stream":       12182,
		"handoff:{session:abc}:meta": keySlot("session:abc"),
	} {
		if got := keySlot(key); got != want {
			t.Errorf("keySlot(%q) = %d, want %d", key, got, want)
		}
	}
	if keySlot("{}foo") == keySlot("") {
		t.Error("an empty hash tag was taken as the tag")
	}
}
