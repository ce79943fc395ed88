package ablyrt_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ably/ably-go/ably"
	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/ablyrt"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/publish"
	"github.com/handoff-health/handoff/presence"
)

// Test keys: Ably's appId.keyId:secret shape, secrets without '.'.
const (
	keyName   = "app.key1"
	keySecret = "s3cr3t-0123456789abcdef"
	testKey   = keyName + ":" + keySecret
	subName   = "app.sub"
	subKey    = subName + ":sub-0123456789abcdefgh"
)

// formats runs every scenario in JSON and in msgpack, as ably-go speaks
// them (WithUseBinaryProtocol).
var formats = []struct {
	name   string
	binary bool
}{{"json", false}, {"msgpack", true}}

// node is handoff's Ably surface over one hub: the realtime socket at "/"
// and the REST routes, as server/wire.go mounts them.
type node struct {
	hub  *hub.Hub
	rt   *ablyrt.Server
	http *httptest.Server
	port int
	// presence is the node's registry, when the test gave it one.
	presence presence.Registry
}

func startHub(t testing.TB) *hub.Hub {
	t.Helper()
	return runHub(t, hub.NewMemory(hub.MemoryConfig{}))
}

func runHub(t testing.TB, b hub.Backend) *hub.Hub {
	t.Helper()
	h := hub.New(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = h.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		_ = b.Close()
		<-done
	})
	return h
}

func startNode(t testing.TB, h *hub.Hub, cfg ablyrt.Config) *node {
	t.Helper()
	keys, err := auth.ParseAPIKeys(testKey+","+subKey, `{"`+subName+`":{"sub:*":["subscribe"],"pub:*":["subscribe","publish"]}}`)
	if err != nil {
		t.Fatal(err)
	}
	rt := ablyrt.New(h, keys, cfg, zerolog.Nop())
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", rt.OnlyUpgrades(http.NotFoundHandler()))
	publish.New(h, keys, publish.Config{Presence: cfg.Presence}, zerolog.Nop()).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = rt.Shutdown(ctx)
		srv.Close()
	})
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	return &node{hub: h, rt: rt, http: srv, port: p}
}

// options points ably-go at a port on 127.0.0.1 without TLS.
func options(port int, binary bool, extra ...ably.ClientOption) []ably.ClientOption {
	return append([]ably.ClientOption{
		ably.WithEndpoint("127.0.0.1"), ably.WithPort(port), ably.WithTLS(false),
		ably.WithInsecureAllowBasicAuthWithoutTLS(), ably.WithUseBinaryProtocol(binary),
		ably.WithDisconnectedRetryTimeout(100 * time.Millisecond), ably.WithLogLevel(ably.LogNone),
	}, extra...)
}

func realtime(t testing.TB, port int, binary bool, extra ...ably.ClientOption) *ably.Realtime {
	t.Helper()
	c, err := ably.NewRealtime(options(port, binary, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// recovering is a client that recovers the connection of recoveryKey
// (RTN16). It connects only once NewRealtime has returned: ably-go 1.4.0
// starts connecting inside NewRealtime before it sets Realtime.Connection,
// and a recover answered before that runs onReconnected on a nil
// Connection (a panic in resendAcks), and before it sets the recovered
// msgSerial (RTN16f).
func recovering(t testing.TB, port int, binary bool, recoveryKey string, extra ...ably.ClientOption) *ably.Realtime {
	t.Helper()
	c := realtime(t, port, binary, append(extra, ably.WithRecover(recoveryKey), ably.WithAutoConnect(false))...)
	c.Connect()
	return c
}

// restJSON is a REST client speaking JSON (handoff's REST publish and
// requestToken take JSON bodies).
func restJSON(t testing.TB, port int, extra ...ably.ClientOption) *ably.REST {
	t.Helper()
	c, err := ably.NewREST(options(port, false, append([]ably.ClientOption{ably.WithKey(testKey)}, extra...)...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitState waits until the connection reaches state, failing on FAILED.
func waitState(t testing.TB, c *ably.Realtime, want ably.ConnectionState) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for c.Connection.State() != want {
		if c.Connection.State() == ably.ConnectionStateFailed && want != ably.ConnectionStateFailed {
			t.Fatalf("connection failed: %v", c.Connection.ErrorReason())
		}
		if time.Now().After(deadline) {
			t.Fatalf("connection state %v, want %v (reason %v)", c.Connection.State(), want, c.Connection.ErrorReason())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// inbox collects a subscription's messages.
type inbox struct {
	mu   sync.Mutex
	msgs []*ably.Message
}

func (b *inbox) add(m *ably.Message) {
	b.mu.Lock()
	b.msgs = append(b.msgs, m)
	b.mu.Unlock()
}

func (b *inbox) all() []*ably.Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*ably.Message(nil), b.msgs...)
}

func (b *inbox) len() int { return len(b.all()) }

// subscribe attaches ch and collects every message it receives.
func subscribe(t testing.TB, ch *ably.RealtimeChannel) *inbox {
	t.Helper()
	got := &inbox{}
	if _, err := ch.SubscribeAll(ctx(t), got.add); err != nil {
		t.Fatal(err)
	}
	return got
}
