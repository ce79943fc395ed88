//go:build integration

package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/internal/testutil"
)

// TestRedisOriginStreamFields: an event without origin is stored as the
// single field "e" older versions wrote, one with an origin adds field
// "o" and leaves "e" in the old form; and an event written the old way
// (here by hand, as a node of an older version would) reads back, live
// and from History, as an event without origin beside the new ones.
func TestRedisOriginStreamFields(t *testing.T) {
	t.Parallel()
	c := newRedisClient(t, testutil.StartRedis(t).Addr)
	b := openRedis(t, c, backendOpts{})
	r := b.Backend.(*Redis)
	rec := &recorder{}
	run(t, b, rec)
	ctx := context.Background()
	noErr(t, "Subscribe", b.Subscribe(ctx, "c"))

	origin := Origin{MsgID: "hK3x9aQ2Lm:5:0", ClientID: "desk 42", ConnectionID: "hK3x9aQ2Lm"}
	plain, err := b.Publish(ctx, "c", Publication{Type: "t", Data: json.RawMessage(`{"n":1}`)})
	noErr(t, "Publish without origin", err)
	withOrigin, err := b.Publish(ctx, "c", Publication{Type: "t", Data: json.RawMessage(`{"n":2}`), Origin: origin})
	noErr(t, "Publish with origin", err)

	oldText := func(ev Event) string {
		return fmt.Sprintf("%s %d %d %s%s", ev.ID, ev.TS.UnixMicro(), len(ev.Type), ev.Type, ev.Data)
	}
	entries, err := c.XRange(ctx, r.key("c", "stream"), "-", "+").Result()
	noErr(t, "XRANGE", err)
	testutil.Equal(t, "stream entries", []redis.XMessage{
		{ID: "0-1", Values: map[string]any{"e": oldText(plain)}},
		{ID: "0-2", Values: map[string]any{"e": oldText(withOrigin), "o": encodeOrigin(origin)}},
	}, entries)

	old := Event{ID: Cursor{Epoch: plain.Cursor.Epoch, Offset: 3}.String(), Channel: "c", Type: "old.node",
		Data: json.RawMessage(`{"n":3}`), TS: withOrigin.TS, Cursor: Cursor{Epoch: plain.Cursor.Epoch, Offset: 3}}
	noErr(t, "XADD as an old node", c.XAdd(ctx, &redis.XAddArgs{Stream: r.key("c", "stream"), ID: "0-3", Values: []string{"e", oldText(old)}}).Err())
	noErr(t, "HINCRBY as an old node", c.HIncrBy(ctx, r.key("c", "meta"), "top", 1).Err())
	noErr(t, "PUBLISH as an old node", c.Publish(ctx, r.key("c", "pub"), oldText(old)).Err())

	want := storedEvents([]Event{plain, withOrigin, old})
	hist, _, err := b.History(ctx, "c", Cursor{})
	noErr(t, "History", err)
	testutil.Equal(t, "History of new and old entries", want, storedEvents(hist))
	testutil.Eventually(t, "every event is delivered live", func() bool { return len(rec.of("c")) == 3 })
	testutil.Equal(t, "live events, new and old", want, storedEvents(rec.of("c")))
}
