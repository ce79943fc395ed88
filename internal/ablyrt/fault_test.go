package ablyrt_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ably/ably-go/ably"

	"github.com/handoff-health/handoff/internal/ablyrt"
	"github.com/handoff-health/handoff/internal/testutil"
)

// Fault injection with the real SDK (issue 12 item 4). Each scenario
// publishes by REST on another client, through no proxy, before, during
// and after the fault, and then checks that the subscriber got every
// message exactly once, in order. The cut connection is
// TestAblyGoDroppedTransport (ablygo_test.go).

// assertSequence checks that got holds exactly the data "0".."total-1",
// in order.
func assertSequence(t *testing.T, got *inbox, total int) {
	t.Helper()
	testutil.Eventually(t, "every message", func() bool { return got.len() >= total })
	msgs := got.all()
	testutil.Equal(t, "no duplicates", total, len(msgs))
	for i, m := range msgs {
		testutil.Equal(t, "message "+strconv.Itoa(i), any(strconv.Itoa(i)), m.Data)
	}
}

// disconnects records the reason codes of a connection's DISCONNECTED
// states.
type disconnects struct {
	mu    sync.Mutex
	codes []int
}

func watchDisconnects(c *ably.Realtime) *disconnects {
	d := &disconnects{}
	c.Connection.On(ably.ConnectionEventDisconnected, func(ch ably.ConnectionStateChange) {
		code := 0
		if ch.Reason != nil {
			code = int(ch.Reason.Code)
		}
		d.mu.Lock()
		d.codes = append(d.codes, code)
		d.mu.Unlock()
	})
	return d
}

func (d *disconnects) seen(code int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.codes {
		if c == code {
			return true
		}
	}
	return false
}

// TestAblyGoStalledTransport: the proxy stops forwarding both ways but
// keeps both TCP connections open, so only heartbeats can tell. ably-go's
// idle timer (maxIdleInterval + realtimeRequestTimeout) starves and it
// goes DISCONNECTED with 80003; once the path works again it resumes the
// same connection and re-attaches from its channelSerial, and every
// message published meanwhile arrives once, in order.
func TestAblyGoStalledTransport(t *testing.T) {
	t.Parallel()
	// A short maxIdleInterval makes the starvation quick: ably-go gives up
	// after maxIdleInterval + realtimeRequestTimeout of silence.
	n := startNode(t, startHub(t), ablyrt.Config{MaxIdleInterval: time.Second})
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			channel := "session:stall-" + f.name
			p := testutil.StartProxy(t, n.http.Listener.Addr().String())
			c := realtime(t, p.Port(), f.binary, ably.WithKey(testKey), ably.WithRealtimeRequestTimeout(2*time.Second))
			d := watchDisconnects(c)
			got := subscribe(t, c.Channels.Get(channel))
			waitState(t, c, ably.ConnectionStateConnected)
			firstID := c.Connection.ID()
			rest := restJSON(t, n.port).Channels.Get(channel)
			next := 0
			publish := func(k int) {
				t.Helper()
				for range k {
					if err := rest.Publish(ctx(t), "m", strconv.Itoa(next)); err != nil {
						t.Fatal(err)
					}
					next++
				}
			}
			publish(5)
			testutil.Eventually(t, "before the stall", func() bool { return got.len() >= 5 })

			p.Stall()
			publish(10)
			testutil.EventuallyWithin(t, "DISCONNECTED 80003 (heartbeats starved)", 30*time.Second, func() bool { return d.seen(80003) })
			publish(5)
			p.Unstall()
			publish(5)

			assertSequence(t, got, next)
			waitState(t, c, ably.ConnectionStateConnected)
			testutil.Equal(t, "resumed the same connection", firstID, c.Connection.ID())
		})
	}
}

// tokenErrorBody is Ably's answer to a request with a token it will not
// take. 40140 is the code ably-go v1.4.0's REST client renews on (it
// compares with ErrTokenErrorUnspecified exactly, so on Ably's 40142 it
// gives up); it is also what handoff's REST answers.
var tokenErrorBody = []byte(`{"error":{"code":40140,"statusCode":401,"message":"token expired","href":"https://help.ably.io/error/40140"}}`)

// TestAblyGoRESTTokenRenewal: one REST publish, from a client on token
// auth, is answered 401 with a token error by the proxy; ably-go renews
// its token through the authCallback and retries, and the message is
// published once. "lost" forwards the request first and loses the
// answer: the retry repeats the idempotent id, which handoff deduplicates.
func TestAblyGoRESTTokenRenewal(t *testing.T) {
	t.Parallel()
	n := startNode(t, startHub(t), ablyrt.Config{})
	for _, f := range formats {
		for _, forward := range []bool{false, true} {
			name := f.name + "-refused"
			if forward {
				name = f.name + "-lost"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				channel := "session:renew-" + name
				sub := realtime(t, n.port, f.binary, ably.WithKey(testKey))
				got := subscribe(t, sub.Channels.Get(channel))

				p := testutil.StartHTTPProxy(t, n.http.Listener.Addr().String())
				keyRest := restJSON(t, n.port)
				var calls atomic.Int32
				pub, err := ably.NewREST(options(p.Port(), f.binary, ably.WithAuthCallback(func(ctx context.Context, _ ably.TokenParams) (ably.Tokener, error) {
					calls.Add(1)
					return keyRest.Auth.RequestToken(ctx, nil)
				}))...)
				if err != nil {
					t.Fatal(err)
				}
				pch := pub.Channels.Get(channel)
				const total = 10
				for i := range total {
					if i == 4 {
						p.FailNext(testutil.HTTPFault{
							Match: func(r *http.Request) bool {
								return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/messages")
							},
							Status: http.StatusUnauthorized, Body: tokenErrorBody, Forward: forward,
							Header: http.Header{"Content-Type": {"application/json"},
								"X-Ably-Errorcode": {"40140"}, "X-Ably-Errormessage": {"token expired"}},
						})
					}
					if err := pch.Publish(ctx(t), "m", strconv.Itoa(i)); err != nil {
						t.Fatalf("publish %d: %v", i, err)
					}
				}
				testutil.Equal(t, "requests answered 401", 1, p.Faulted())
				testutil.Equal(t, "authCallback calls (the first token and its renewal)", int32(2), calls.Load())
				assertSequence(t, got, total)

				pages, err := keyRest.Channels.Get(channel).History().Pages(ctx(t))
				if err != nil {
					t.Fatal(err)
				}
				if !pages.Next(ctx(t)) {
					t.Fatal(pages.Err())
				}
				testutil.Equal(t, "published once each (history)", total, len(pages.Items()))
			})
		}
	}
}
