package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/testutil"
)

// Origins (who published an event, under which id) are stored with the
// event and come back identically from Publish, live, on replay and from
// History, on every backend.

// originPubs are publications whose origins must survive byte for byte:
// none, fields alone and together, the longest allowed, and text made of
// the Redis encoding's own punctuation.
func originPubs() []Publication {
	long := strings.Repeat("x", MaxOriginIDLen)
	return []Publication{
		{Type: "hub.event", Data: json.RawMessage(`{"n":0}`)},
		{Type: "ably.rest", Data: json.RawMessage(`"x"`), Origin: Origin{MsgID: "Zm9vYmFyYmF6:0", ClientID: "desk-42"}},
		{Type: "ably.realtime", Data: json.RawMessage(`{"n":2}`),
			Origin: Origin{MsgID: "hK3x9aQ2Lm:5:0", ClientID: "Dr. Müller, 診療所 +1,2,3 x", ConnectionID: "hK3x9aQ2Lm"}},
		{Type: "only.connection", Origin: Origin{ConnectionID: "c0nn-_!"}},
		{Type: "longest", Data: json.RawMessage(`[1]`),
			Origin: Origin{MsgID: long, ClientID: strings.Repeat("é", MaxOriginIDLen/2), ConnectionID: long}},
		{Type: "+1,1,1 a type", Data: json.RawMessage(`"+0,0,0 "`), Origin: Origin{MsgID: "+3,0,0", ClientID: " "}},
		{Type: "with.headers", Data: json.RawMessage(`"h"`),
			Origin: Origin{MsgID: "h:0", ClientID: "d", Headers: `{"name":"value one","number":1234,"bool":true}`}},
		{Type: "only.headers", Origin: Origin{Headers: `{"k":"+1,2,3,4 x"}`}},
		{Type: "hub.event.again"},
	}
}

// storedEvent is what must be equal wherever an event is read.
type storedEvent struct {
	ID, Type, Data string
	TS             time.Time
	Origin         Origin
}

func storedEvents(evs []Event) []storedEvent {
	out := make([]storedEvent, len(evs))
	for i, ev := range evs {
		out[i] = storedEvent{ev.ID, ev.Type, string(ev.Data), ev.TS, ev.Origin}
	}
	return out
}

// TestBackendKeepsOrigin publishes the same publications on several
// channels at once (on Redis their events share publish.lua calls) and
// reads each back from Publish, live delivery, and History from the start
// and from a cursor.
func TestBackendKeepsOrigin(t *testing.T) {
	t.Parallel()
	for _, bf := range backends() {
		t.Run(bf.name, func(t *testing.T) {
			t.Parallel()
			b := bf.open(t, backendOpts{})
			rec := &recorder{}
			run(t, b, rec)
			ctx := context.Background()
			chans := []string{"origin-a", "origin-b", "origin-c", "origin-d"}
			for _, ch := range chans {
				noErr(t, "Subscribe", b.Subscribe(ctx, ch))
			}
			pubs := originPubs()
			returned := make([][]Event, len(chans))
			var wg sync.WaitGroup
			for i, ch := range chans {
				wg.Go(func() {
					for _, p := range pubs {
						ev, err := b.Publish(ctx, ch, p)
						if err != nil {
							t.Errorf("Publish to %s: %v", ch, err)
							return
						}
						returned[i] = append(returned[i], ev)
					}
				})
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			for i, ch := range chans {
				got := returned[i]
				for j, ev := range got {
					testutil.Equal(t, fmt.Sprintf("%s event %d: origin returned by Publish", ch, j), pubs[j].Origin, ev.Origin)
				}
				hist, _, err := b.History(ctx, ch, Cursor{})
				noErr(t, "History", err)
				testutil.Equal(t, ch+": History from the start", storedEvents(got), storedEvents(hist))
				hist, _, err = b.History(ctx, ch, got[1].Cursor)
				noErr(t, "History", err)
				testutil.Equal(t, ch+": History from the second event", storedEvents(got[2:]), storedEvents(hist))
				testutil.Eventually(t, "every event of "+ch+" is delivered live", func() bool { return len(rec.of(ch)) >= len(pubs) })
				testutil.Equal(t, ch+": live events", storedEvents(got), storedEvents(rec.of(ch)))
			}
		})
	}
}

// TestHubDeliversOrigin: a subscriber gets the origin on replay (from
// History) and live, through the hub.
func TestHubDeliversOrigin(t *testing.T) {
	t.Parallel()
	for _, bf := range hubBackends() {
		t.Run(bf.name, func(t *testing.T) {
			t.Parallel()
			h, _ := openHub(t, bf, backendOpts{})
			ctx := context.Background()
			pubs := originPubs()
			var published []Event
			for _, p := range pubs[:3] {
				ev, err := h.Publish(ctx, "c", p)
				noErr(t, "Publish", err)
				published = append(published, ev)
			}
			c := &collector{}
			subscribe(t, h, "c", &Cursor{}, c)
			for _, p := range pubs[3:] {
				ev, err := h.Publish(ctx, "c", p)
				noErr(t, "Publish", err)
				published = append(published, ev)
			}
			testutil.Eventually(t, "every event arrives", func() bool { return len(c.events()) == len(pubs) })
			testutil.Equal(t, "events replayed then delivered live", storedEvents(published), storedEvents(c.events()))
		})
	}
}

// TestHubRefusesBadOrigin: an origin out of bounds is refused by Publish
// and Announce with ErrBadOrigin, and nothing is stored; the bounds
// themselves are accepted.
func TestHubRefusesBadOrigin(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", MaxOriginIDLen+1)
	bad := map[string]Origin{
		"msgId too long":              {MsgID: long},
		"clientId too long":           {ClientID: long},
		"connectionId too long":       {ConnectionID: long},
		"msgId with a space":          {MsgID: "a b"},
		"msgId with a newline":        {MsgID: "a\nb"},
		"msgId not ASCII":             {MsgID: "é"},
		"connectionId with a DEL":     {ConnectionID: "a\x7f"},
		"clientId with a newline":     {ClientID: "desk\n42"},
		"clientId with a NUL":         {ClientID: "desk\x0042"},
		"clientId with a C1 control":  {ClientID: "desk\u008542"},
		"clientId not UTF-8":          {ClientID: "desk\xff"},
		"valid fields, one bad field": {MsgID: "m:0", ClientID: "ok", ConnectionID: "a b"},
		"headers not an object":       {Headers: `[1]`},
		"headers not JSON":            {Headers: `{"a":`},
		"headers not compact":         {Headers: `{"a": 1}`},
		"headers with an object":      {Headers: `{"a":{"b":1}}`},
		"headers with null":           {Headers: `{"a":null}`},
		"headers too large":           {Headers: `{"a":"` + strings.Repeat("x", MaxHeadersBytes) + `"}`},
	}
	h := New(NewMemory(MemoryConfig{}))
	runHub(t, h)
	ctx := context.Background()
	for name, o := range bad {
		p := Publication{Type: "t", Data: json.RawMessage(`{}`), Origin: o}
		if _, err := h.Publish(ctx, "bad", p); !errors.Is(err, ErrBadOrigin) {
			t.Errorf("Publish with %s: %v, want ErrBadOrigin", name, err)
		}
		if _, err := h.Announce(ctx, "bad", p); !errors.Is(err, ErrBadOrigin) {
			t.Errorf("Announce with %s: %v, want ErrBadOrigin", name, err)
		}
	}
	top, err := h.Top(ctx, "bad")
	noErr(t, "Top", err)
	testutil.Equal(t, "top of the channel after refused publishes", Cursor{}, top)
	testutil.Equal(t, "events kept for republishing", 0, h.Pending())
	for _, p := range originPubs() {
		if _, err := h.Publish(ctx, "good", p); err != nil {
			t.Errorf("Publish with origin %+v: %v", p.Origin, err)
		}
	}
}

// TestAnnounceMatchesOrigin: a kept event counts as already stored only if
// history holds one with its origin too; an event alike but for the origin
// is someone else's message, and the kept one is still published.
func TestAnnounceMatchesOrigin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		stored    bool // the failed attempt stored the event anyway
		lookAlike bool // another origin published the same type and data
		want      []Origin
	}{
		{"stored by the failed attempt", true, false, []Origin{{MsgID: "m:0", ClientID: "a"}}},
		{"look-alike from another origin", false, true, []Origin{{MsgID: "m:9", ClientID: "b"}, {MsgID: "m:0", ClientID: "a"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := &failingBackend{Backend: NewMemory(MemoryConfig{}), stored: tc.stored}
			h := New(b)
			runHub(t, h)
			ctx := context.Background()
			p := Publication{Type: "t", Data: json.RawMessage(`{"same":true}`), Origin: Origin{MsgID: "m:0", ClientID: "a"}}
			if tc.lookAlike {
				other := p
				other.Origin = Origin{MsgID: "m:9", ClientID: "b"}
				_, err := h.Publish(ctx, "c", other)
				noErr(t, "Publish the look-alike", err)
			}
			b.mu.Lock()
			b.fails = 1
			b.mu.Unlock()
			if _, err := h.Announce(ctx, "c", p); !errors.Is(err, ErrQueued) {
				t.Fatalf("Announce: %v, want ErrQueued", err)
			}
			testutil.Eventually(t, "the kept event is done", func() bool { return h.Pending() == 0 })
			evs, _, err := h.History(ctx, "c", Cursor{})
			noErr(t, "History", err)
			var got []Origin
			for _, ev := range evs {
				got = append(got, ev.Origin)
			}
			testutil.Equal(t, "origins in history", tc.want, got)
		})
	}
}
