//go:build integration

package ablyrt_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ably/ably-go/ably"
	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/ablyrt"
	"github.com/handoff-health/handoff/internal/testutil"
	"github.com/handoff-health/handoff/presence"
)

// redisNode is a node on a shared redis-server: the hub's Redis backend
// and the Redis ConnStore, as `handoff serve` wires them with Redis.
func redisNode(t *testing.T, r *testutil.Redis) *node {
	t.Helper()
	return redisNodeWith(t, r, ablyrt.Config{})
}

// redisNodeWith is redisNode with cfg (its Store is set here).
func redisNodeWith(t *testing.T, r *testutil.Redis, cfg ablyrt.Config) *node {
	t.Helper()
	rc := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { _ = rc.Close() }) // registered first, so it runs after the hub stops
	b, err := hub.NewRedis(hub.RedisConfig{Client: rc})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store = ablyrt.NewRedisStore(rc, "")
	return startNode(t, runHub(t, b), cfg)
}

// TestTwoNodesResume: ably-go on node A loses its transport and the
// "load balancer" sends the reconnect to node B while REST publishes
// continue on both: the resume succeeds on B (same connection id, the
// key checked there), and every message arrives once, in order.
func TestTwoNodesResume(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	a, b := redisNode(t, r), redisNode(t, r)
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			channel := "session:two-nodes-" + f.name
			p := testutil.StartProxy(t, a.http.Listener.Addr().String())
			c := realtime(t, p.Port(), f.binary, ably.WithKey(testKey))
			got := subscribe(t, c.Channels.Get(channel))
			waitState(t, c, ably.ConnectionStateConnected)
			firstID := c.Connection.ID()
			const total = 40
			for i := range total {
				if i == 10 {
					p.Retarget(b.http.Listener.Addr().String())
					p.Cut()
				}
				on := a
				if i%2 == 1 {
					on = b
				}
				if err := restJSON(t, on.port).Channels.Get(channel).Publish(ctx(t), "m", strconv.Itoa(i)); err != nil {
					t.Fatal(err)
				}
			}
			testutil.Eventually(t, "every message", func() bool { return got.len() >= total })
			msgs := got.all()
			testutil.Equal(t, "no duplicates", total, len(msgs))
			for i, m := range msgs {
				testutil.Equal(t, "message "+strconv.Itoa(i), any(strconv.Itoa(i)), m.Data)
			}
			waitState(t, c, ably.ConnectionStateConnected)
			testutil.Equal(t, "resumed on node B with the same id", firstID, c.Connection.ID())
			// The publish path works on B too.
			if err := c.Channels.Get(channel).Publish(ctx(t), "from-b", "x"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestTwoNodesResend: a publish ACKed on node A and resent with the same
// msgSerial after a resume on node B is ACKed again there with the same
// serials and published once.
func TestTwoNodesResend(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	a, b := redisNode(t, r), redisNode(t, r)
	for _, f := range wireFormats {
		channel := "session:two-resend-" + f.String()
		w := dial(t, a, f, url.Values{"key": {testKey}})
		c := w.expect(ablyproto.ActionConnected)
		pub := &ablyproto.ProtocolMessage{Action: ablyproto.ActionMessage, Channel: channel, MsgSerial: serialPtr(0),
			Messages: []ablyproto.RealtimeMessage{{Name: "n", Data: &ablyproto.Data{JSON: json.RawMessage(`{"k":1}`)}}}}
		w.write(pub)
		ack := w.expect(ablyproto.ActionAck)
		_ = w.ws.CloseNow()

		w2 := dial(t, b, f, url.Values{"key": {testKey}, "resume": {c.ConnectionDetails.ConnectionKey}})
		c2 := w2.expect(ablyproto.ActionConnected)
		testutil.Equal(t, "same connection on node B", c.ConnectionID, c2.ConnectionID)
		if c2.Error != nil {
			t.Fatalf("%s: resume on B: %+v", f, c2.Error)
		}
		w2.write(pub)
		testutil.Equal(t, "same ACK on node B", ack.Res, w2.expect(ablyproto.ActionAck).Res)
		evs, _, err := b.hub.History(context.Background(), channel, hub.Cursor{})
		if err != nil {
			t.Fatal(err)
		}
		testutil.Equal(t, "published once", 1, len(evs))
		// Its id follows Ably's realtime rule, and the next publish,
		// handled by node B, continues the connection's msgSerials.
		w2.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionMessage, Channel: channel, MsgSerial: serialPtr(1),
			Messages: []ablyproto.RealtimeMessage{{Name: "n", Data: &ablyproto.Data{JSON: json.RawMessage(`"b"`)}}}})
		w2.expect(ablyproto.ActionAck)
		evs, _, err = a.hub.History(context.Background(), channel, hub.Cursor{})
		if err != nil {
			t.Fatal(err)
		}
		var origins []hub.Origin
		for _, ev := range evs {
			origins = append(origins, ev.Origin)
		}
		id := c.ConnectionID
		testutil.Equal(t, "origins stored through both nodes, read on node A",
			[]hub.Origin{{MsgID: id + ":0:0", ConnectionID: id}, {MsgID: id + ":1:0", ConnectionID: id}}, origins)

		// CLOSE forgets the connection everywhere: no resume after it.
		w2.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionClose})
		w2.expect(ablyproto.ActionClosed)
		w3 := dial(t, a, f, url.Values{"key": {testKey}, "resume": {c2.ConnectionDetails.ConnectionKey}})
		if pm := w3.expect(ablyproto.ActionConnected); pm.ConnectionID == c.ConnectionID || pm.Error == nil || pm.Error.Code != 80008 {
			t.Fatalf("%s: resume after CLOSE: id %q error %+v", f, pm.ConnectionID, pm.Error)
		}
	}
}

// TestTwoNodesResendRace: a resend racing its original, the connection's
// transports on two nodes at once (the old one not yet gone when the
// resume reached the other node) sending the same msgSerials: each
// message is published once and both transports get the same serials.
// The ConnStore cannot settle it (neither outcome is recorded yet); the
// hub's dedupe by message id does.
func TestTwoNodesResendRace(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	a, b := redisNode(t, r), redisNode(t, r)
	for _, f := range wireFormats {
		channel := "session:resend-race-" + f.String()
		w := dial(t, a, f, url.Values{"key": {testKey}})
		c := w.expect(ablyproto.ActionConnected)
		w2 := dial(t, b, f, url.Values{"key": {testKey}, "resume": {c.ConnectionDetails.ConnectionKey}})
		testutil.Equal(t, "same connection on node B", c.ConnectionID, w2.expect(ablyproto.ActionConnected).ConnectionID)
		const n = 20
		acks := [2][]ablyproto.PublishResult{}
		var wg sync.WaitGroup
		for _, wr := range []*wire{w, w2} {
			wg.Go(func() {
				for i := range n {
					wr.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionMessage, Channel: channel, MsgSerial: serialPtr(int64(i)),
						Messages: []ablyproto.RealtimeMessage{{Name: "n", Data: &ablyproto.Data{JSON: json.RawMessage(strconv.Itoa(i))}}, {Name: "m"}}})
				}
			})
		}
		wg.Wait()
		for side, wr := range []*wire{w, w2} {
			for range n {
				acks[side] = append(acks[side], wr.expect(ablyproto.ActionAck).Res...)
			}
		}
		testutil.Equal(t, f.String()+": the same serials on both nodes", acks[0], acks[1])
		evs, _, err := b.hub.History(context.Background(), channel, hub.Cursor{})
		if err != nil {
			t.Fatal(err)
		}
		testutil.Equal(t, f.String()+": events published", 2*n, len(evs))
	}
}

// TestTwoNodesIdempotentREST: one idempotent REST batch (ably-go, the
// same message ids) posted to two nodes at once is stored once, and both
// requests succeed.
func TestTwoNodesIdempotentREST(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	a, b := redisNode(t, r), redisNode(t, r)
	const channel = "idempotent-two-nodes"
	for round := range 5 {
		base := "batch" + strconv.Itoa(round)
		var wg sync.WaitGroup
		for _, n := range []*node{a, b} {
			wg.Go(func() {
				var msgs []*ably.Message
				for i := range 3 {
					msgs = append(msgs, &ably.Message{ID: base + ":" + strconv.Itoa(i), Name: "m", Data: strconv.Itoa(i)})
				}
				if err := restJSON(t, n.port).Channels.Get(channel).PublishMultiple(ctx(t), msgs); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	evs, _, err := a.hub.History(context.Background(), channel, hub.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, ev := range evs {
		ids = append(ids, ev.MsgID)
	}
	var want []string
	for round := range 5 {
		for i := range 3 {
			want = append(want, "batch"+strconv.Itoa(round)+":"+strconv.Itoa(i))
		}
	}
	testutil.Equal(t, "message ids in history, each once", want, ids)
}

// TestResyncIsUnsolicitedAttached: when Redis loses its data (an empty
// restart), live delivery cannot be repaired from history; the native
// protocol's resync reaches Ably clients as an unsolicited ATTACHED
// without RESUMED, with error 90003 and the new channelSerial, before any
// message of the new history, and delivery goes on from there.
func TestResyncIsUnsolicitedAttached(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	n := redisNode(t, r)
	channel := "session:resync"
	var ws []*wire
	for _, f := range wireFormats {
		w := dial(t, n, f, url.Values{"key": {testKey}})
		w.expect(ablyproto.ActionConnected)
		w.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionAttach, Channel: channel})
		w.expect(ablyproto.ActionAttached)
		ws = append(ws, w)
	}
	if _, err := n.hub.Publish(context.Background(), channel, hub.Publication{Type: "before"}); err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		w.expect(ablyproto.ActionMessage)
	}
	r.Kill()
	r.Start()
	var after []hub.Event
	testutil.Eventually(t, "publishes succeed after the restart", func() bool {
		ev, err := n.hub.Publish(context.Background(), channel, hub.Publication{Type: "after"})
		if err == nil {
			after = append(after, ev)
		}
		return err == nil
	})
	for range 3 {
		ev, err := n.hub.Publish(context.Background(), channel, hub.Publication{Type: "after"})
		if err != nil {
			t.Fatal(err)
		}
		after = append(after, ev)
	}
	for _, w := range ws {
		at := w.expect(ablyproto.ActionAttached) // fails on a MESSAGE first
		if at.HasFlag(ablyproto.FlagResumed) || at.Error == nil || at.Error.Code != 90003 {
			t.Fatalf("%s: resync ATTACHED flags %d error %+v", w.format, at.Flags, at.Error)
		}
		pos, err := hub.ParseCursor(at.ChannelSerial)
		if err != nil {
			t.Fatalf("%s: resync channelSerial %q: %v", w.format, at.ChannelSerial, err)
		}
		for _, ev := range after {
			if ev.Cursor.Epoch == pos.Epoch && ev.Cursor.Offset > pos.Offset || pos.IsZero() {
				testutil.Equal(t, "after the resync", ev.ID, w.expect(ablyproto.ActionMessage).ChannelSerial)
			}
		}
	}
}

// TestStoreAskedOnlyAfterResume: the msgSerial dedupe asks the store only
// where a MESSAGE can be a resend: on a transport that resumed its
// connection, up to the first serial the store has no answer for. A new
// connection's publishes cost no lookup; a resend after a resume is still
// answered from the store and published once. Lookups are counted by the
// real redis-server (HGET in INFO commandstats); the hub is in memory, so
// every HGET is the store's.
func TestStoreAskedOnlyAfterResume(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	rc := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { _ = rc.Close() })
	n := startNode(t, startHub(t), ablyrt.Config{Store: ablyrt.NewRedisStore(rc, "")})
	lookups := func() int {
		info, err := rc.Info(context.Background(), "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(info, "\n") {
			if rest, ok := strings.CutPrefix(line, "cmdstat_hget:calls="); ok {
				calls, _, _ := strings.Cut(rest, ",")
				c, err := strconv.Atoi(calls)
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
		}
		return 0
	}
	const channel = "session:lookups"
	pub := func(w *wire, serial int64) *ablyproto.ProtocolMessage {
		w.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionMessage, Channel: channel, MsgSerial: serialPtr(serial),
			Messages: []ablyproto.RealtimeMessage{{Name: "n", Data: &ablyproto.Data{JSON: json.RawMessage(strconv.FormatInt(serial, 10))}}}})
		ack := w.expect(ablyproto.ActionAck)
		testutil.Equal(t, "acked serial", serial, *ack.MsgSerial)
		return ack
	}

	w := dial(t, n, ablyproto.FormatJSON, keyQuery())
	c := w.expect(ablyproto.ActionConnected)
	var acks []*ablyproto.ProtocolMessage
	for i := range int64(3) {
		acks = append(acks, pub(w, i))
	}
	testutil.Equal(t, "store lookups for a new connection's publishes", 0, lookups())
	_ = w.ws.CloseNow()

	w2 := dial(t, n, ablyproto.FormatJSON, keyQuery("resume", c.ConnectionDetails.ConnectionKey))
	testutil.Equal(t, "same connection", c.ConnectionID, w2.expect(ablyproto.ActionConnected).ConnectionID)
	testutil.Equal(t, "resend answered from the store", acks[2].Res, pub(w2, 2).Res)
	testutil.Equal(t, "lookups after the resend", 1, lookups())
	pub(w2, 3)
	testutil.Equal(t, "lookups after the first new serial", 2, lookups())
	pub(w2, 4)
	pub(w2, 5)
	testutil.Equal(t, "lookups after more new serials", 2, lookups())

	evs, _, err := n.hub.History(context.Background(), channel, hub.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "events published (the resend once)", 6, len(evs))
}

// TestResyncResendsPresence: the unsolicited ATTACHED of a resync makes
// the SDKs restart their presence set (RTP19a), so on a channel the client
// sees presence on it carries HAS_PRESENCE and is followed by a SYNC of
// the members still present; without one the SDKs would drop them all.
func TestResyncResendsPresence(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	rc := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { _ = rc.Close() })
	b, err := hub.NewRedis(hub.RedisConfig{Client: rc})
	if err != nil {
		t.Fatal(err)
	}
	reg := presence.NewMemory(presence.MemoryConfig{})
	t.Cleanup(reg.Stop)
	n := startNode(t, runHub(t, b), ablyrt.Config{Presence: reg})
	channel := "session:resync-presence"
	if _, _, err := reg.Apply(context.Background(), presence.Change{Action: presence.Enter, Channel: channel,
		ClientID: "phone", ConnectionID: "other", ID: "other:0:0", Data: json.RawMessage(`"here"`)}); err != nil {
		t.Fatal(err)
	}
	var ws []*wire
	for _, f := range wireFormats {
		w := dial(t, n, f, url.Values{"key": {testKey}})
		w.expect(ablyproto.ActionConnected)
		w.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionAttach, Channel: channel})
		at := w.expect(ablyproto.ActionAttached)
		if !at.HasFlag(ablyproto.FlagHasPresence) {
			t.Fatalf("%s: ATTACHED flags %d without HAS_PRESENCE", f, at.Flags)
		}
		testutil.Equal(t, "SYNC member", "phone", w.expect(ablyproto.ActionSync).Presence[0].ClientID)
		ws = append(ws, w)
	}
	if _, err := n.hub.Publish(context.Background(), channel, hub.Publication{Type: "before"}); err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		w.expect(ablyproto.ActionMessage)
	}
	r.Kill()
	r.Start()
	testutil.Eventually(t, "publishes succeed after the restart", func() bool {
		_, err := n.hub.Publish(context.Background(), channel, hub.Publication{Type: "after"})
		return err == nil
	})
	for _, w := range ws {
		at := w.expect(ablyproto.ActionAttached)
		if at.HasFlag(ablyproto.FlagResumed) || !at.HasFlag(ablyproto.FlagHasPresence) {
			t.Fatalf("%s: resync ATTACHED flags %d", w.format, at.Flags)
		}
		var sync *ablyproto.ProtocolMessage
		for sync == nil {
			if pm := w.read(); pm.Action == ablyproto.ActionSync {
				sync = pm
			}
		}
		if len(sync.Presence) != 1 || sync.Presence[0].ClientID != "phone" || !strings.HasSuffix(sync.ChannelSerial, ":") {
			t.Fatalf("%s: resync SYNC %+v", w.format, sync)
		}
	}
}

// TestTwoNodesPresence: with the Redis registry, a member entered on node
// A is seen by a subscriber on node B; when its transport is cut and the
// client resumes on B, B claims it and it stays past the grace that A's
// detach started; when it closes on B it leaves at once, seen on A.
func TestTwoNodesPresence(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	clock := &testClock{}
	presenceRedisNode := func() *node {
		rc := redis.NewClient(&redis.Options{Addr: r.Addr})
		t.Cleanup(func() { _ = rc.Close() })
		b, err := hub.NewRedis(hub.RedisConfig{Client: rc})
		if err != nil {
			t.Fatal(err)
		}
		reg, err := presence.NewRedis(presence.RedisConfig{Client: rc, Grace: presenceGrace, Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(reg.Stop)
		return startNode(t, runHub(t, b), ablyrt.Config{Store: ablyrt.NewRedisStore(rc, ""), Presence: reg})
	}
	a, b := presenceRedisNode(), presenceRedisNode()
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			channel := "session:two-nodes-presence-" + f.name
			watcher := realtime(t, a.port, f.binary, ably.WithKey(testKey))
			wch := watcher.Channels.Get(channel)
			if err := wch.Attach(ctx(t)); err != nil {
				t.Fatal(err)
			}
			events := subscribePresence(t, wch)

			p := testutil.StartProxy(t, a.http.Listener.Addr().String())
			c := realtime(t, p.Port(), f.binary, ably.WithKey(testKey), ably.WithClientID("roamer"))
			ch := c.Channels.Get(channel)
			own := subscribePresence(t, ch)
			if err := ch.Presence.Enter(ctx(t), "on a"); err != nil {
				t.Fatal(err)
			}
			events.waitFor(t, ably.PresenceActionEnter, "roamer")
			// ably-go re-enters (RTP17f) only the members it has seen
			// echoed on its own connection: an ENTER whose echo is lost in
			// the cut is listed by the SYNC on B instead, and no re-enter
			// goes out. Wait for the echo so the re-enter below is due.
			own.waitFor(t, ably.PresenceActionEnter, "roamer")
			firstID := c.Connection.ID()

			var reattached atomic.Bool
			off := ch.OnAll(func(sc ably.ChannelStateChange) {
				if sc.Current == ably.ChannelStateAttached {
					reattached.Store(true)
				}
			})
			defer off()
			p.Retarget(b.http.Listener.Addr().String())
			p.Cut()
			testutil.Eventually(t, "resumed on node B, the channel attached again", func() bool {
				return c.Connection.State() == ably.ConnectionStateConnected && c.Connection.ID() == firstID && reattached.Load()
			})
			// ably-go 1.4.0 re-enters on the re-attach (RTP17f) from a
			// goroutine that can run before the channel's state is ATTACHED
			// (onAttach runs first): the ENTER is then queued on a presence
			// queue that was already flushed and never goes out. So the test
			// does not wait for it; whether or not it went out, its ACK comes
			// before the UPDATE's below (one transport, answered in order),
			// so none is in flight when the client closes (see
			// TestAblyGoPresenceLeaveOnClose for the SDK's race on that).
			clock.Add(2 * presenceGrace)
			if err := ch.Presence.Update(ctx(t), "on b"); err != nil {
				t.Fatal(err)
			}
			events.waitFor(t, ably.PresenceActionUpdate, "roamer")
			for _, m := range events.all() {
				if m.Action == ably.PresenceActionLeave {
					t.Fatalf("the member left though its connection resumed on B: %+v", m)
				}
			}
			c.Close()
			events.waitFor(t, ably.PresenceActionLeave, "roamer")
		})
	}
}

// TestTwoNodesRecoverWhileHeld: a second client recovers, on node B, the
// connection a live first client holds on node A. B cannot end A's
// transport, and sharing the connection id would let the two clients'
// msgSerials and message ids collide, so B refuses the recover (80008) and
// the second client gets a connection of its own; the first keeps its own.
// Both publish, and every message arrives once. Once the first client's
// transport on A is gone (released), a recover of its key on B succeeds.
func TestTwoNodesRecoverWhileHeld(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	a, b := redisNode(t, r), redisNode(t, r)
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			channel := "session:recover-held-" + f.name
			got := subscribe(t, realtime(t, b.port, f.binary, ably.WithKey(testKey)).Channels.Get(channel))

			p := testutil.StartProxy(t, a.http.Listener.Addr().String())
			first := realtime(t, p.Port(), f.binary, ably.WithKey(testKey))
			waitState(t, first, ably.ConnectionStateConnected)
			firstID := first.Connection.ID()
			if err := first.Channels.Get(channel).Publish(ctx(t), "first", "first-0"); err != nil {
				t.Fatal(err)
			}

			second := recovering(t, b.port, f.binary, first.Connection.CreateRecoveryKey(), ably.WithKey(testKey))
			waitState(t, second, ably.ConnectionStateConnected)
			if second.Connection.ID() == firstID {
				t.Fatal("the recover on node B shares the connection node A's live transport holds")
			}
			var e *ably.ErrorInfo
			if reason := second.Connection.ErrorReason(); reason == nil || !errors.As(error(reason), &e) || e.Code != ablyproto.CodeConnectionExpired {
				t.Fatalf("refused recover: reason %v, want %d", second.Connection.ErrorReason(), ablyproto.CodeConnectionExpired)
			}
			testutil.Equal(t, "the first client's connection", firstID, first.Connection.ID())

			// Both publish the same msgSerials' worth of messages: each is
			// published once, under its own connection.
			const each = 5
			for i := 1; i <= each; i++ {
				if err := first.Channels.Get(channel).Publish(ctx(t), "first", "first-"+strconv.Itoa(i)); err != nil {
					t.Fatal(err)
				}
				if err := second.Channels.Get(channel).Publish(ctx(t), "second", "second-"+strconv.Itoa(i)); err != nil {
					t.Fatal(err)
				}
			}
			testutil.Eventually(t, "every message", func() bool { return got.len() >= 2*each+1 })
			seen := map[any]int{}
			for _, m := range got.all() {
				seen[m.Data]++
			}
			testutil.Equal(t, "messages delivered", 2*each+1, len(got.all()))
			for i := 0; i <= each; i++ {
				testutil.Equal(t, "first-"+strconv.Itoa(i), 1, seen["first-"+strconv.Itoa(i)])
				if i > 0 {
					testutil.Equal(t, "second-"+strconv.Itoa(i), 1, seen["second-"+strconv.Itoa(i)])
				}
			}

			// The first client's transport on A ends (its proxy is cut and
			// now leads nowhere): A releases the connection, and a recover of
			// its key on B keeps the id.
			key := first.Connection.CreateRecoveryKey()
			p.Retarget("127.0.0.1:1")
			p.Cut()
			rc := redis.NewClient(&redis.Options{Addr: r.Addr})
			t.Cleanup(func() { _ = rc.Close() })
			store := ablyrt.NewRedisStore(rc, "")
			testutil.Eventually(t, "node A released the connection", func() bool {
				h, alive, err := store.Holder(ctx(t), firstID)
				return err == nil && alive && h == ""
			})
			first.Close()
			third := recovering(t, b.port, f.binary, key, ably.WithKey(testKey))
			waitState(t, third, ably.ConnectionStateConnected)
			testutil.Equal(t, "a recover once nothing holds the connection", firstID, third.Connection.ID())
		})
	}
}

// TestTwoNodesResumeEndsTheOtherTransport: a connection held by ably-go's
// transport on node A is resumed on node B (a transport of the same
// connection key, as when a client's reconnect lands on B while A has not
// yet seen the old socket die). A learns of it at its next refresh of the
// connection (every ConnectionStateTTL/4, here 0.5 s) and ends its
// transport, as one node does at once; the client on A, whose key is now
// superseded, gets a new connection (80008) instead of sharing the id.
func TestTwoNodesResumeEndsTheOtherTransport(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	cfg := ablyrt.Config{MaxIdleInterval: time.Second, ConnectionStateTTL: 2 * time.Second}
	a, b := redisNodeWith(t, r, cfg), redisNodeWith(t, r, cfg)
	for _, f := range wireFormats {
		t.Run(f.String(), func(t *testing.T) {
			onA := realtime(t, a.port, f == ablyproto.FormatMsgpack, ably.WithKey(testKey))
			waitState(t, onA, ably.ConnectionStateConnected)
			id := onA.Connection.ID()

			w := dial(t, b, f, keyQuery("resume", onA.Connection.Key()))
			connected := w.expect(ablyproto.ActionConnected)
			testutil.Equal(t, "resumed on B", id, connected.ConnectionID)

			testutil.Eventually(t, "A's client moved to a new connection", func() bool {
				return onA.Connection.State() == ably.ConnectionStateConnected && onA.Connection.ID() != "" && onA.Connection.ID() != id
			})
			var e *ably.ErrorInfo
			if reason := onA.Connection.ErrorReason(); reason == nil || !errors.As(error(reason), &e) || e.Code != ablyproto.CodeConnectionExpired {
				t.Fatalf("A's client's reason %v, want %d", onA.Connection.ErrorReason(), ablyproto.CodeConnectionExpired)
			}
			// B's transport still holds the connection: it answers a ping.
			w.write(&ablyproto.ProtocolMessage{Action: ablyproto.ActionHeartbeat, ID: "still-there"})
			testutil.Equal(t, "B's transport answers", "still-there", w.expect(ablyproto.ActionHeartbeat).ID)
		})
	}
}
