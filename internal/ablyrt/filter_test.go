package ablyrt_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ably/ably-go/ably"

	"github.com/handoff-health/handoff/internal/ablyrt"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestAblyGoSubscriptionFilters mirrors ably-go's
// TestRealtimeChannel_SubscriptionFilters: a derived channel
// ("[filter=<base64>?param=1]name", GetDerived) gets only the messages its
// filter matches, live and on replay (rewind), while the plain channel
// gets all of them; extras.headers survive REST and realtime publish,
// delivery and history. A bad filter or an unsupported qualifier fails
// the attach with 40010.
func TestAblyGoSubscriptionFilters(t *testing.T) {
	t.Parallel()
	n := startNode(t, startHub(t), ablyrt.Config{})
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			channel := "session:filters-" + f.name
			c := realtime(t, n.port, f.binary, ably.WithKey(testKey))
			filter := ably.DeriveOptions{Filter: "name == `\"filtered\"` && headers.number == `1234` || name == 'end'"}
			derived, err := c.Channels.GetDerived("[?param=1]"+channel, filter)
			if err != nil {
				t.Fatal(err)
			}
			filtered := subscribe(t, derived)
			all := subscribe(t, c.Channels.Get(channel))

			h := func(number int) map[string]any {
				return map[string]any{"headers": map[string]any{"name": "value one", "number": number, "bool": true}}
			}
			msgs := []*ably.Message{
				{Name: "filtered", Data: "pass", Extras: h(1234)},
				{Name: "filtered", Data: "no headers"},
				{Name: "filtered", Data: "wrong number", Extras: h(5678)},
				{Name: "other", Data: "wrong name", Extras: h(1234)},
			}
			// REST in this subtest's format (msgpack is ably-go's default).
			rest, err := ably.NewREST(options(n.port, f.binary, ably.WithKey(testKey))...)
			if err != nil {
				t.Fatal(err)
			}
			if err := rest.Channels.Get(channel).PublishMultiple(ctx(t), msgs); err != nil {
				t.Fatal(err)
			}
			// Realtime publish keeps headers too (in this subtest's format).
			pub := realtime(t, n.port, f.binary, ably.WithKey(testKey))
			if err := pub.Channels.Get(channel).PublishMultiple(ctx(t), []*ably.Message{
				{Name: "filtered", Data: "pass realtime", Extras: h(1234)},
				{Name: "end", Data: "last"},
			}); err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, "all 6 messages", func() bool { return all.len() >= 6 })
			testutil.Eventually(t, "filtered end", func() bool {
				m := filtered.all()
				return len(m) > 0 && m[len(m)-1].Name == "end"
			})
			got := filtered.all()
			testutil.Equal(t, "filtered data", []any{"pass", "pass realtime", "last"}, datas(got))
			testutil.Equal(t, "headers delivered", "value one 1234 true", headerText(got[0]))
			testutil.Equal(t, "realtime headers delivered", "value one 1234 true", headerText(got[1]))
			testutil.Equal(t, "unfiltered count", 6, all.len())

			// Replay through a filter: rewind in the qualifier's params.
			late := realtime(t, n.port, f.binary, ably.WithKey(testKey))
			replayed, err := late.Channels.GetDerived("[?rewind=10]"+channel, filter)
			if err != nil {
				t.Fatal(err)
			}
			rgot := subscribe(t, replayed)
			testutil.Eventually(t, "replayed end", func() bool {
				m := rgot.all()
				return len(m) > 0 && m[len(m)-1].Name == "end"
			})
			testutil.Equal(t, "replayed data", []any{"pass", "pass realtime", "last"}, datas(rgot.all()))

			// History returns extras.headers.
			pages, err := rest.Channels.Get(channel).History(ably.HistoryWithDirection(ably.Forwards)).Pages(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			if !pages.Next(ctx(t)) {
				t.Fatal(pages.Err())
			}
			hist := pages.Items()
			testutil.Equal(t, "history length", 6, len(hist))
			testutil.Equal(t, "history headers", "value one 5678 true", headerText(hist[2]))

			// echo=false holds a connection's own publishes back from its
			// filtered view of the channel too.
			quiet := realtime(t, n.port, f.binary, ably.WithKey(testKey), ably.WithEchoMessages(false))
			qview, err := quiet.Channels.GetDerived(channel, filter)
			if err != nil {
				t.Fatal(err)
			}
			qgot := subscribe(t, qview)
			if err := quiet.Channels.Get(channel).Publish(ctx(t), "end", "own"); err != nil {
				t.Fatal(err)
			}
			if err := pub.Channels.Get(channel).Publish(ctx(t), "end", "other"); err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, "other's end", func() bool { return qgot.len() > 0 })
			testutil.Equal(t, "echo=false filtered view", []any{"other"}, datas(qgot.all()))

			// A filter that does not parse, and an unsupported qualifier.
			for _, bad := range []*ably.RealtimeChannel{
				mustDerive(t, c, channel, "name === 'x'"),
				c.Channels.Get("[meta]" + channel),
			} {
				err := bad.Attach(ctx(t))
				var ae *ably.ErrorInfo
				if !errors.As(err, &ae) || ae.Code != 40010 {
					t.Fatalf("attach %s: %v, want 40010", bad.Name, err)
				}
			}
		})
	}
}

func mustDerive(t *testing.T, c *ably.Realtime, channel, expr string) *ably.RealtimeChannel {
	t.Helper()
	ch, err := c.Channels.GetDerived(channel, ably.DeriveOptions{Filter: expr})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func datas(ms []*ably.Message) []any {
	var d []any
	for _, m := range ms {
		d = append(d, m.Data)
	}
	return d
}

// headerText is a message's headers name, number and bool, whatever
// numeric type the format decoded the number to.
func headerText(m *ably.Message) string {
	h, _ := m.Extras["headers"].(map[string]any)
	return fmt.Sprint(h["name"], " ", h["number"], " ", h["bool"])
}
