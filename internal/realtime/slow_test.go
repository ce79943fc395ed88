package realtime

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/testutil"
	"github.com/handoff-health/handoff/protocol"
)

// TestSlowConsumer subscribes a raw client that then stops reading, and
// publishes until the server gives up on it. The socket must close with
// 4008, its send queue must have stayed within the configured bounds
// (whatever the number of events published), and a reconnect from the
// last cursor the client holds must resume with nothing lost.
func TestSlowConsumer(t *testing.T) {
	t.Parallel()
	const channel = "session:slow"
	v := newVerifier(t)
	// History larger than anything the test publishes, so the resume is
	// always recoverable and any loss would be the transport's fault.
	h := startHub(t, hub.NewMemory(hub.MemoryConfig{HistorySize: 100_000}))
	n := startNode(t, h, v, Config{})
	tok := issue(t, v, "f", "p", time.Hour)

	r := connect(t, n.url, tok)
	r.send(map[string]any{"type": "subscribe", "channel": channel, "since": "0"})
	testutil.Equal(t, "frame type (want subscribed)", protocol.FrameSubscribed, r.next().Type)

	// 5,000 events of 4 KiB: the kernel's socket buffers fill after a
	// few hundred, then the send queue, then the server must cut the client.
	data := []byte(`{"pad":"` + strings.Repeat("x", 4096) + `"}`)
	var published []hub.Event
	for i := range 5000 {
		ev, err := h.Publish(context.Background(), channel, hub.Publication{Type: "image.added", Data: data})
		if err != nil {
			t.Fatal(err)
		}
		published = append(published, ev)
		if i == 0 {
			// On a loaded machine the writer may not run before the queue
			// overflows, and then nothing reaches the client before the
			// 4008; let the first event (after connected and subscribed)
			// reach the socket, so "reads what reached it" has something.
			testutil.Eventually(t, "the first event is written", func() bool {
				return metricValue(t, n.srv.metrics.framesOut) >= 3
			})
		}
	}
	testutil.Eventually(t, "the slow consumer is disconnected", func() bool { return metricValue(t, n.srv.metrics.slowConsumers) == 1 })
	peakMsgs, peakBytes := n.srv.metrics.queuePeakMessages.Load(), n.srv.metrics.queuePeakBytes.Load()
	t.Logf("queue peak %d frames, %d bytes", peakMsgs, peakBytes)
	if peakMsgs > DefaultSendQueueMessages {
		t.Errorf("queue peak %d frames exceeds the bound %d", peakMsgs, DefaultSendQueueMessages)
	}
	if peakBytes > DefaultSendQueueBytes {
		t.Errorf("queue peak %d bytes exceeds the bound %d", peakBytes, DefaultSendQueueBytes)
	}
	if t.Failed() {
		t.FailNow()
	}

	// The client wakes up: it reads what reached it, then the 4008.
	var got []string
	for {
		f, err := r.read(10 * time.Second)
		if err != nil {
			if code := closeStatus(err); code != CloseSlowConsumer {
				t.Fatalf("socket ended with %v, want close %d", err, CloseSlowConsumer)
			}
			break
		}
		if f.Event != nil {
			got = append(got, f.Event.ID)
		}
	}
	if len(got) == 0 {
		t.Fatalf("slow client read none of %d events before the close", len(published))
	}
	if len(got) >= len(published) {
		t.Fatalf("slow client read all %d events: it was never slow", len(got))
	}

	// Publish a few more while it is away, then resume from its cursor.
	published = append(published, publish(t, h, channel, "image.added", 10)...)
	r2 := connect(t, n.url, tok)
	r2.send(map[string]any{"type": "subscribe", "channel": channel, "since": got[len(got)-1]})
	f := r2.next()
	testutil.Equal(t, "resume: subscribed frame",
		frame{Type: protocol.FrameSubscribed, Recovered: new(true)},
		frame{Type: f.Type, Recovered: f.Recovered})
	for len(got) < len(published) {
		f := r2.next()
		if f.Event == nil {
			t.Fatalf("resume: a %q frame (code %q) where an event was due", f.Type, f.Code)
		}
		got = append(got, f.Event.ID)
	}
	want := make([]string, len(published))
	for i, ev := range published {
		want[i] = ev.ID
	}
	testutil.Equal(t, "event ids before and after the resume", want, got)
	if c := metricValue(t, n.srv.metrics.closes.WithLabelValues("4008")); c != 1 {
		t.Errorf("disconnects{code=4008} = %v, want 1", c)
	}
}
