//go:build integration

package realtime

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/testutil"
	"github.com/handoff-health/handoff/presence"
	"github.com/handoff-health/handoff/protocol"
)

// TestPresenceTwoNodesOneRedis: the phone's socket on one node, the
// desktop's on another, one Redis. The desktop sees the phone enter, leave
// at once when its socket closes, and, for a socket that drops, stay until
// the grace has passed and then leave.
func TestPresenceTwoNodesOneRedis(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	v := newVerifier(t)
	nodeOn := func(name string) *node {
		rc := redis.NewClient(&redis.Options{Addr: r.Addr})
		t.Cleanup(func() { _ = rc.Close() })
		reg, err := presence.NewRedis(presence.RedisConfig{Client: rc, NodeID: name,
			Grace: 500 * time.Millisecond, SweepInterval: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(reg.Stop)
		return startNode(t, redisHub(t, r, hub.RedisConfig{}), v, Config{Presence: reg, Phone: phoneGrants})
	}
	a, b := nodeOn("node-a"), nodeOn("node-b")

	desk := connect(t, b.url, issue(t, v, "fac1", "gp1", time.Hour))
	testutil.Equal(t, "members before the phone", []protocol.PresenceMember{}, desk.watch("session:a"))

	phone := connect(t, a.url, phoneTokenA)
	phone.send(map[string]any{"type": "presence", "channel": "session:a", "action": "enter", "data": map[string]string{"device": "phone"}})
	if f := phone.next(); f.Type != protocol.FrameAck {
		t.Fatalf("reply to enter: %+v", f)
	}
	f := desk.next()
	testutil.Equal(t, "enter across nodes", protocol.PresenceEnter, f.Action)
	testutil.Equal(t, "who entered", "phone:0a1b2c3d4e5f", f.Member.ClientID)
	if err := phone.ws.Close(1000, "bye"); err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "leave after the close", protocol.PresenceLeave, desk.next().Action)

	dropped := connect(t, a.url, phoneTokenA)
	dropped.send(map[string]any{"type": "presence", "channel": "session:a", "action": "enter"})
	if f := dropped.next(); f.Type != protocol.FrameAck {
		t.Fatalf("reply to enter: %+v", f)
	}
	testutil.Equal(t, "enter of the second socket", protocol.PresenceEnter, desk.next().Action)
	_ = dropped.ws.CloseNow()
	testutil.Equal(t, "leave once the grace has passed", protocol.PresenceLeave, desk.next().Action)
}
