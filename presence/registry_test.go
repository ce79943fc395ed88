package presence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/internal/testutil"
)

// The contract every Registry must keep, from one table. The memory row
// runs everywhere; registry_redis_integration_test.go adds the Redis rows
// under the integration tag.

func TestMain(m *testing.M) {
	// go-redis logs every failed dial; the outage tests cause them on purpose.
	redis.SetLogger(quietLogger{})
	testutil.VerifyNoLeaks(m)
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

const testGrace = 15 * time.Second

// testRegistry is a fresh registry and the test's levers on it.
type testRegistry struct {
	Registry
	clock *testutil.Clock
	// sweep runs one pass of the registry's sweeper now.
	sweep func()
	// peer opens another node of the same deployment sharing the clock,
	// or is nil when the registry has no other nodes (memory).
	peer func() *testRegistry
}

type registryFactory struct {
	name string
	open func(t testing.TB) *testRegistry
}

var registryTable = []registryFactory{{name: "memory", open: openMemory}}

func openMemory(t testing.TB) *testRegistry {
	clock := testutil.NewClock()
	// The sweeper's own ticks would race the test's sweeps; an hour keeps
	// them out of the way.
	m := NewMemory(MemoryConfig{Grace: testGrace, Now: clock.Now, SweepInterval: time.Hour})
	t.Cleanup(m.Stop)
	return &testRegistry{Registry: m, clock: clock, sweep: m.sweep}
}

// forEach runs test against every registry of the table.
func forEach(t *testing.T, test func(t *testing.T, r *testRegistry)) {
	for _, f := range registryTable {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			test(t, f.open(t))
		})
	}
}

// recorder collects a subscription's events.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func subscribe(t testing.TB, r Registry, channel string) *recorder {
	rec := &recorder{}
	cancel := r.Subscribe(channel, func(ev Event) {
		rec.mu.Lock()
		rec.events = append(rec.events, ev)
		rec.mu.Unlock()
	})
	t.Cleanup(cancel)
	return rec
}

func (rec *recorder) got() []Event {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]Event(nil), rec.events...)
}

// wait returns the first n events once they arrived.
func (rec *recorder) wait(t testing.TB, n int) []Event {
	t.Helper()
	testutil.Eventually(t, fmt.Sprintf("%d presence events arrive", n), func() bool { return len(rec.got()) >= n })
	return rec.got()[:n]
}

// apply applies c and fails the test on an error.
func apply(t testing.TB, r Registry, c Change) (Event, bool) {
	t.Helper()
	ev, ok, err := r.Apply(context.Background(), c)
	if err != nil {
		t.Fatalf("apply %v: %v", c.Action, err)
	}
	return ev, ok
}

func members(t testing.TB, r Registry, channel string) []Member {
	t.Helper()
	ms, err := r.Members(context.Background(), channel)
	if err != nil {
		t.Fatalf("members of %s: %v", channel, err)
	}
	return ms
}

func history(t testing.TB, r Registry, channel string, q HistoryQuery) []Event {
	t.Helper()
	evs, err := r.History(context.Background(), channel, q)
	if err != nil {
		t.Fatalf("history of %s: %v", channel, err)
	}
	return evs
}

func change(a Action, channel, conn, client, id, data string) Change {
	c := Change{Action: a, Channel: channel, ConnectionID: conn, ClientID: client, ID: id}
	if data != "" {
		c.Data = json.RawMessage(data)
	}
	return c
}

// who lists events as "action clientId@connectionId data" for comparisons.
func who(evs []Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = fmt.Sprintf("%d %s@%s %s", ev.Action, ev.ClientID, ev.ConnectionID, ev.Data)
	}
	return out
}

func memberNames(ms []Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = fmt.Sprintf("%s@%s %s", m.ClientID, m.ConnectionID, m.Data)
	}
	return out
}

func TestEnterUpdateLeave(t *testing.T) {
	forEach(t, func(t *testing.T, r *testRegistry) {
		rec := subscribe(t, r, "room")
		ev, ok := apply(t, r, change(Enter, "room", "c1", "bob", "c1:0:0", `"hi"`))
		testutil.Equal(t, "enter applied", true, ok)
		testutil.Equal(t, "enter event", Event{Action: Enter, Member: Member{
			Channel: "room", ClientID: "bob", ConnectionID: "c1", ID: "c1:0:0",
			Data: json.RawMessage(`"hi"`), Timestamp: r.clock.Now(),
		}}, ev, cmpTime)
		apply(t, r, change(Enter, "room", "c2", "alice", "c2:0:0", `{"a": 1}`)) // stored compacted
		apply(t, r, change(Update, "room", "c1", "bob", "c1:1:0", `"busy"`))
		testutil.Equal(t, "members, by clientId", []string{`alice@c2 {"a":1}`, `bob@c1 "busy"`}, memberNames(members(t, r, "room")))

		_, ok = apply(t, r, change(Leave, "room", "c1", "bob", "c1:2:0", ""))
		testutil.Equal(t, "leave applied", true, ok)
		_, ok = apply(t, r, change(Leave, "room", "c1", "bob", "c1:3:0", ""))
		testutil.Equal(t, "leave of an absent member applied", false, ok)
		_, ok = apply(t, r, change(Leave, "room", "c2", "carol", "c2:1:0", ""))
		testutil.Equal(t, "leave of an unknown clientId applied", false, ok)

		want := []string{`2 bob@c1 "hi"`, `2 alice@c2 {"a":1}`, `4 bob@c1 "busy"`, `3 bob@c1 "busy"`}
		testutil.Equal(t, "events, in apply order (a LEAVE without data carries the last)", want, who(rec.wait(t, 4)))
		testutil.Equal(t, "members after the leave", []string{`alice@c2 {"a":1}`}, memberNames(members(t, r, "room")))
		testutil.Equal(t, "history, newest first", reversed(want), who(history(t, r, "room", HistoryQuery{})))
		testutil.Equal(t, "history forwards", want, who(history(t, r, "room", HistoryQuery{Forwards: true})))
		testutil.Equal(t, "no events for what was not applied", 4, len(rec.got()))
	})
}

var cmpTime = cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })

func reversed(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

func TestEnterOfPresentMemberUpdatesIt(t *testing.T) {
	forEach(t, func(t *testing.T, r *testRegistry) {
		rec := subscribe(t, r, "room")
		apply(t, r, change(Enter, "room", "c1", "bob", "c1:0:0", `"a"`))
		apply(t, r, change(Enter, "room", "c1", "bob", "c1:1:0", `"b"`))
		// The same clientId on another connection is another member.
		apply(t, r, change(Enter, "room", "c2", "bob", "c2:0:0", `"c"`))
		testutil.Equal(t, "events as the client sent them", []string{`2 bob@c1 "a"`, `2 bob@c1 "b"`, `2 bob@c2 "c"`}, who(rec.wait(t, 3)))
		ms := members(t, r, "room")
		testutil.Equal(t, "members", []string{`bob@c1 "b"`, `bob@c2 "c"`}, memberNames(ms))
		testutil.Equal(t, "a member's id is its last change's", "c1:1:0", ms[0].ID)
	})
}

func TestEmptyChannelListsAsEmpty(t *testing.T) {
	forEach(t, func(t *testing.T, r *testRegistry) {
		ms := members(t, r, "nobody")
		evs := history(t, r, "nobody", HistoryQuery{})
		// REST presence answers these as JSON: [] and never null.
		if ms == nil || evs == nil || len(ms) != 0 || len(evs) != 0 {
			t.Fatalf("members %#v, history %#v: want both empty and non-nil", ms, evs)
		}
	})
}

func TestHistoryQuery(t *testing.T) {
	forEach(t, func(t *testing.T, r *testRegistry) {
		var times []time.Time
		for i := range 5 {
			apply(t, r, change(Enter, "h", "c1", "bob", fmt.Sprintf("c1:%d:0", i), fmt.Sprint(i)))
			times = append(times, r.clock.Now())
			r.clock.Advance(time.Second)
		}
		data := func(evs []Event) string {
			var b strings.Builder
			for _, ev := range evs {
				b.Write(ev.Data)
			}
			return b.String()
		}
		for _, tc := range []struct {
			name string
			q    HistoryQuery
			want string
		}{
			{"all, newest first", HistoryQuery{}, "43210"},
			{"limit", HistoryQuery{Limit: 2}, "43"},
			{"limit forwards", HistoryQuery{Limit: 2, Forwards: true}, "01"},
			{"start and end inclusive", HistoryQuery{Start: times[1], End: times[3]}, "321"},
			{"start forwards", HistoryQuery{Start: times[3], Forwards: true}, "34"},
			{"end", HistoryQuery{End: times[0]}, "0"},
		} {
			testutil.Check(t, tc.name, tc.want, data(history(t, r, "h", tc.q)))
		}
		r.clock.Advance(DefaultHistoryTTL)
		testutil.Equal(t, "history past its TTL", "", data(history(t, r, "h", HistoryQuery{})))
	})
}

func TestHistoryIsBounded(t *testing.T) {
	forEach(t, func(t *testing.T, r *testRegistry) {
		for i := range DefaultHistorySize + 5 {
			apply(t, r, change(Update, "b", "c1", "bob", fmt.Sprintf("c1:%d:0", i), fmt.Sprint(i)))
		}
		evs := history(t, r, "b", HistoryQuery{Limit: maxHistoryLimit})
		testutil.Equal(t, "events kept", DefaultHistorySize, len(evs))
		testutil.Equal(t, "newest", fmt.Sprint(DefaultHistorySize+4), string(evs[0].Data))
		testutil.Equal(t, "oldest kept", "5", string(evs[len(evs)-1].Data))
	})
}

func TestSubscribersSeeApplyOrder(t *testing.T) {
	forEach(t, func(t *testing.T, r *testRegistry) {
		rec := subscribe(t, r, "busy")
		const writers, each = 4, 25
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				conn := fmt.Sprintf("c%d", w)
				for i := range each {
					apply(t, r, change(Update, "busy", conn, "bob", fmt.Sprintf("%s:%d:0", conn, i), fmt.Sprint(i)))
				}
			})
		}
		wg.Wait()
		got := rec.wait(t, writers*each)
		kept := history(t, r, "busy", HistoryQuery{Forwards: true, Limit: writers * each})
		testutil.Equal(t, "subscriber order is history order", who(kept), who(got))
		last := map[string]int{}
		for _, ev := range got {
			var n int
			_ = json.Unmarshal(ev.Data, &n)
			if prev, ok := last[ev.ConnectionID]; ok && n != prev+1 {
				t.Fatalf("%s: event %d after %d", ev.ConnectionID, n, prev)
			}
			last[ev.ConnectionID] = n
		}
	})
}

func TestCancelStopsDelivery(t *testing.T) {
	forEach(t, func(t *testing.T, r *testRegistry) {
		var mu sync.Mutex
		var got []Event
		cancel := r.Subscribe("c", func(ev Event) { mu.Lock(); got = append(got, ev); mu.Unlock() })
		after := subscribe(t, r, "c") // still subscribed: tells when delivery happened
		apply(t, r, change(Enter, "c", "c1", "bob", "c1:0:0", ""))
		after.wait(t, 1)
		cancel()
		apply(t, r, change(Leave, "c", "c1", "bob", "c1:1:0", ""))
		after.wait(t, 2)
		mu.Lock()
		defer mu.Unlock()
		testutil.Equal(t, "events before cancel only", []string{"2 bob@c1 "}, who(got))
	})
}

func TestCloseConnectionSynthesizesLeaves(t *testing.T) {
	forEach(t, func(t *testing.T, r *testRegistry) {
		recA, recB := subscribe(t, r, "a"), subscribe(t, r, "b")
		apply(t, r, change(Enter, "a", "c1", "bob", "c1:0:0", `"x"`))
		apply(t, r, change(Enter, "a", "c1", "bob2", "c1:0:1", ""))
		apply(t, r, change(Enter, "b", "c1", "bob", "c1:1:0", ""))
		apply(t, r, change(Enter, "a", "c2", "alice", "c2:0:0", ""))
		recA.wait(t, 3)
		recB.wait(t, 1)
		r.clock.Advance(time.Second)
		if err := r.CloseConnection(context.Background(), "c1"); err != nil {
			t.Fatal(err)
		}
		leavesA := recA.wait(t, 5)[3:]
		leavesB := recB.wait(t, 2)[1:]
		for _, ev := range append(leavesA, leavesB...) {
			testutil.Check(t, "synthesized", true, ev.Synthesized)
			testutil.Check(t, "action", Leave, ev.Action)
			testutil.Check(t, "timestamp", true, ev.Timestamp.Equal(r.clock.Now()))
			if strings.HasPrefix(ev.ID, ev.ConnectionID) || ev.ID == "" {
				t.Errorf("synthesized LEAVE id %q starts with its connectionId (spec RTP2b1)", ev.ID)
			}
		}
		testutil.Equal(t, "leaves on a", []string{`3 bob2@c1 `, `3 bob@c1 "x"`}, sortedWho(leavesA))
		testutil.Equal(t, "members of a", []string{"alice@c2 "}, memberNames(members(t, r, "a")))
		testutil.Equal(t, "members of b", []string{}, memberNames(members(t, r, "b")))
		testutil.Equal(t, "a leave is in history", true, history(t, r, "b", HistoryQuery{})[0].Synthesized)
		if lost, err := r.Claim(context.Background(), "c1"); err != nil || lost {
			t.Fatalf("claim of a closed connection: lost=%v err=%v, want neither", lost, err)
		}
	})
}

func sortedWho(evs []Event) []string {
	s := who(evs)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

func TestDetachedMembersLeaveAfterGrace(t *testing.T) {
	forEach(t, func(t *testing.T, r *testRegistry) {
		rec := subscribe(t, r, "g")
		apply(t, r, change(Enter, "g", "c1", "bob", "c1:0:0", ""))
		apply(t, r, change(Enter, "g", "c2", "alice", "c2:0:0", ""))
		if err := r.DetachConnection(context.Background(), "c1"); err != nil {
			t.Fatal(err)
		}
		r.clock.Advance(testGrace - time.Millisecond)
		r.sweep()
		testutil.Equal(t, "members within Grace", []string{"alice@c2 ", "bob@c1 "}, memberNames(members(t, r, "g")))
		r.clock.Advance(time.Millisecond)
		r.sweep()
		r.sweep() // a second pass removes nothing twice
		leave := rec.wait(t, 3)[2]
		testutil.Equal(t, "leave", "3 bob@c1 ", who([]Event{leave})[0])
		testutil.Equal(t, "synthesized", true, leave.Synthesized)
		testutil.Equal(t, "members after Grace", []string{"alice@c2 "}, memberNames(members(t, r, "g")))

		lost, err := r.Claim(context.Background(), "c1")
		testutil.Equal(t, "claim after removal: lost", true, lost)
		testutil.Equal(t, "claim error", nil, err, errorsEqual)
		lost, _ = r.Claim(context.Background(), "c1")
		testutil.Equal(t, "a second claim (the client re-entered): lost", false, lost)
		lost, _ = r.Claim(context.Background(), "c2")
		testutil.Equal(t, "claim of a live connection: lost", false, lost)
		testutil.Equal(t, "no other event", 3, len(rec.got()))
	})
}

var errorsEqual = cmp.Comparer(func(a, b error) bool { return errors.Is(a, b) || errors.Is(b, a) })

func TestClaimKeepsDetachedMembers(t *testing.T) {
	forEach(t, func(t *testing.T, r *testRegistry) {
		other := r
		if r.peer != nil {
			other = r.peer() // the connection resumes on another node
		}
		rec := subscribe(t, other, "k")
		apply(t, r, change(Enter, "k", "c1", "bob", "c1:0:0", `"x"`))
		rec.wait(t, 1)
		if err := r.DetachConnection(context.Background(), "c1"); err != nil {
			t.Fatal(err)
		}
		r.clock.Advance(testGrace / 2)
		lost, err := other.Claim(context.Background(), "c1")
		if err != nil || lost {
			t.Fatalf("claim within Grace: lost=%v err=%v, want neither", lost, err)
		}
		r.clock.Advance(2 * testGrace)
		r.sweep()
		other.sweep()
		testutil.Equal(t, "members after Grace", []string{`bob@c1 "x"`}, memberNames(members(t, other, "k")))
		// The claimed connection is live where it resumed: a later drop
		// starts a new Grace, and a CLOSE there removes its members.
		if err := other.CloseConnection(context.Background(), "c1"); err != nil {
			t.Fatal(err)
		}
		testutil.Equal(t, "events", []string{`2 bob@c1 "x"`, `3 bob@c1 "x"`}, who(rec.wait(t, 2)))
		testutil.Equal(t, "members after close", []string{}, memberNames(members(t, r, "k")))
	})
}

func TestBadChangesChangeNothing(t *testing.T) {
	big := json.RawMessage(`"` + strings.Repeat("x", MaxDataBytes) + `"`)
	forEach(t, func(t *testing.T, r *testRegistry) {
		rec := subscribe(t, r, "ok")
		apply(t, r, change(Enter, "ok", "c1", "bob", "c1:0:0", `"x"`))
		for _, tc := range []struct {
			name string
			c    Change
			want error
		}{
			{"no clientId", change(Enter, "ok", "c1", "", "c1:1:0", ""), ErrNoClientID},
			{"no connectionId", change(Enter, "ok", "", "bob", "c1:1:0", ""), ErrBadChange},
			{"action PRESENT", change(Present, "ok", "c1", "bob", "c1:1:0", ""), ErrBadChange},
			{"action ABSENT", change(Absent, "ok", "c1", "bob", "c1:1:0", ""), ErrBadChange},
			{"action 9", change(Action(9), "ok", "c1", "bob", "c1:1:0", ""), ErrBadChange},
			{"bad channel", change(Enter, "no/slash", "c1", "bob", "c1:1:0", ""), ErrBadChannel},
			{"empty channel", change(Enter, "", "c1", "bob", "c1:1:0", ""), ErrBadChannel},
			{"data not JSON", change(Update, "ok", "c1", "bob", "c1:1:0", `{nope`), ErrBadChange},
			{"data too large", Change{Action: Update, Channel: "ok", ConnectionID: "c1", ClientID: "bob", Data: big}, ErrTooLarge},
			{"clientId too long", change(Enter, "ok", "c1", strings.Repeat("b", MaxIDLen+1), "c1:1:0", ""), ErrBadChange},
		} {
			_, ok, err := r.Apply(context.Background(), tc.c)
			if !errors.Is(err, tc.want) || ok {
				t.Errorf("%s: ok=%v err=%v, want %v", tc.name, ok, err, tc.want)
			}
		}
		if _, err := r.Members(context.Background(), "no/slash"); !errors.Is(err, ErrBadChannel) {
			t.Errorf("members of a bad channel: %v", err)
		}
		if _, err := r.History(context.Background(), "ok", HistoryQuery{Limit: -1}); !errors.Is(err, ErrBadChange) {
			t.Errorf("history with a negative limit: %v", err)
		}
		apply(t, r, change(Leave, "ok", "c1", "bob", "c1:2:0", ""))
		testutil.Equal(t, "events: only the good ones", []string{`2 bob@c1 "x"`, `3 bob@c1 "x"`}, who(rec.wait(t, 2)))
		testutil.Equal(t, "history: only the good ones", 2, len(history(t, r, "ok", HistoryQuery{})))
		testutil.Equal(t, "no more events", 2, len(rec.got()))
	})
}
