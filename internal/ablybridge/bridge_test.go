package ablybridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/testutil"
)

func TestBridgeMirrorsEveryEventInOrder(t *testing.T) {
	t.Parallel()
	stub := newAblyStub(t)
	progress := NewMemoryProgress()
	n := newNode(t, hub.NewMemory(hub.MemoryConfig{}), progress, testConfig(stub), nil)

	// Published before Run: the pending mark carries them to the bridge.
	early := n.publish(t, "session:early", 0, 5)
	n.start(t)

	const channels, perChannel = 8, 40
	evs := make([][]hub.Event, channels)
	var wg sync.WaitGroup
	for c := range channels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			evs[c] = n.publish(t, fmt.Sprintf("session:s%d", c), 0, perChannel)
		}()
	}
	wg.Wait()
	// Not a session channel: never bridged.
	n.publish(t, "integrator.feed", 0, 3)

	want := len(early) + channels*perChannel
	testutil.Eventually(t, "every event at Ably", func() bool { return stub.total() == want })
	checkMirrored(t, stub, "session:early", early)
	for c := range channels {
		checkMirrored(t, stub, fmt.Sprintf("session:s%d", c), evs[c])
	}
	if got := stub.messages("integrator.feed"); len(got) != 0 {
		t.Errorf("a non-session channel was bridged: %d messages", len(got))
	}
	if got := n.metric(t, "handoff_ably_bridged_total"); got != float64(want) {
		t.Errorf("bridged_total = %v, want %d", got, want)
	}
	// Once the grace has passed, drained channels leave the pending set.
	testutil.Eventually(t, "pending set to empty", func() bool {
		p, _ := progress.Pending(context.Background())
		return len(p) == 0
	})
	testutil.Eventually(t, "lag back to zero", func() bool { return n.metric(t, "handoff_ably_lag_events") == 0 })
	checkLogsClean(t, n.logs)
}

func TestBridgeOutageLosesNothing(t *testing.T) {
	t.Parallel()
	stub := newAblyStub(t)
	n := newNode(t, hub.NewMemory(hub.MemoryConfig{}), NewMemoryProgress(), testConfig(stub), nil).start(t)
	chans := []string{"session:a", "session:b", "session:c"}
	evs := map[string][]hub.Event{}
	publishAll := func(from, count int) {
		for _, ch := range chans {
			evs[ch] = append(evs[ch], n.publish(t, ch, from, count)...)
		}
	}
	retries := func() float64 { return n.metric(t, "handoff_ably_retries_total") }

	// 1. Ably answers 500.
	stub.mode.Store(stubFail500)
	publishAll(0, 10)
	testutil.Eventually(t, "retries during 500s", func() bool { return retries() >= 3 })
	testutil.Eventually(t, "the backlog gauge", func() bool { return n.metric(t, "handoff_ably_lag_events") == 30 })

	// 2. Ably stores the message but never answers: the ack is lost.
	stub.mode.Store(stubHang)
	r := retries()
	publishAll(10, 5)
	// Each channel's first message is stored, its ack times out, and the
	// retry under the same id is discarded as a duplicate.
	testutil.Eventually(t, "retries after timeouts", func() bool {
		_, dups := stub.counts()
		return retries() >= r+3 && dups >= 3
	})

	// 3. Ably unreachable: connection refused.
	stub.Down()
	r = retries()
	publishAll(15, 5)
	testutil.Eventually(t, "retries while refused", func() bool { return retries() >= r+3 })

	stub.mode.Store(stubOK)
	stub.Up()
	testutil.Eventually(t, "the backlog to drain", func() bool { return stub.total() == 60 })
	for _, ch := range chans {
		checkMirrored(t, stub, ch, evs[ch])
	}
	if got := n.metric(t, "handoff_ably_failures_total{kind=ably}"); got == 0 {
		t.Errorf("failures_total{kind=ably} = 0 after an outage")
	}
	if got := n.metric(t, "handoff_ably_dropped_total{reason=unrecoverable}"); got != 0 {
		t.Errorf("dropped %v events during an outage the history covered", got)
	}
	testutil.Eventually(t, "lag back to zero", func() bool { return n.metric(t, "handoff_ably_lag_events") == 0 })
	if !strings.Contains(n.logs.String(), "mirroring is failing") {
		t.Errorf("the outage was not logged:\n%s", n.logs)
	}
	checkLogsClean(t, n.logs)
}

func TestBridgeCountsEventsTheHistoryLost(t *testing.T) {
	t.Parallel()
	stub := newAblyStub(t)
	n := newNode(t, hub.NewMemory(hub.MemoryConfig{HistorySize: 5}), NewMemoryProgress(), testConfig(stub), nil)
	// Twelve events while the bridge is not running; history keeps five.
	evs := n.publish(t, "session:trim", 0, 12)
	n.start(t)

	testutil.Eventually(t, "the retained events at Ably", func() bool { return stub.total() == 5 })
	checkMirrored(t, stub, "session:trim", evs[7:])
	if got := n.metric(t, "handoff_ably_dropped_total{reason=unrecoverable}"); got != 7 {
		t.Errorf("dropped_total{unrecoverable} = %v, want 7", got)
	}
	if !strings.Contains(n.logs.String(), "history was trimmed or lost") {
		t.Errorf("the loss was not logged:\n%s", n.logs)
	}
	checkLogsClean(t, n.logs)
}

func TestBridgeRejectedMessageDoesNotBlockTheChannel(t *testing.T) {
	t.Parallel()
	stub := newAblyStub(t)
	stub.reject.Store("session.expired")
	n := newNode(t, hub.NewMemory(hub.MemoryConfig{}), NewMemoryProgress(), testConfig(stub), nil).start(t)
	ctx := context.Background()
	var want []hub.Event
	want = append(want, n.publish(t, "session:r", 1, 1)...)
	if _, err := n.hub.Publish(ctx, "session:r", hub.Publication{Type: "session.expired", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	want = append(want, n.publish(t, "session:r", 2, 1)...)

	testutil.Eventually(t, "the events after the rejected one", func() bool { return stub.total() == 2 })
	checkMirrored(t, stub, "session:r", want)
	if got := n.metric(t, "handoff_ably_dropped_total{reason=rejected}"); got != 1 {
		t.Errorf("dropped_total{rejected} = %v, want 1", got)
	}
}

func TestBridgeEncounterTemplate(t *testing.T) {
	t.Parallel()
	stub := newAblyStub(t)
	cfg := testConfig(stub)
	cfg.ChannelTemplate = "medtech:{encounterId}:{sessionId}"
	resolve := func(ctx context.Context, sessionID string) (string, error) {
		if sessionID == "known" {
			return "enc42", nil
		}
		return "", fmt.Errorf("capture store: %w", ErrUnknownSession)
	}
	n := newNode(t, hub.NewMemory(hub.MemoryConfig{}), NewMemoryProgress(), cfg, resolve).start(t)
	n.publish(t, "session:gone", 0, 3)
	evs := n.publish(t, "session:known", 0, 4)

	testutil.Eventually(t, "the known session at Ably", func() bool { return stub.total() == 4 })
	checkMirrored(t, stub, "medtech:enc42:known", evs)
	testutil.Eventually(t, "the unknown session's events counted", func() bool {
		return n.metric(t, "handoff_ably_dropped_total{reason=unknown_session}") == 3
	})
	name, err := n.bridge.AblyChannel(context.Background(), "known")
	if err != nil {
		t.Errorf("AblyChannel: %v", err)
	}
	testutil.Check(t, "AblyChannel", "medtech:enc42:known", name)
	if _, err := n.bridge.AblyChannel(context.Background(), "gone"); !errors.Is(err, ErrUnknownSession) {
		t.Errorf("AblyChannel(unknown) err = %v, want ErrUnknownSession", err)
	}
}

// failingProgress refuses to mark channels pending, as Redis does when down.
type failingProgress struct{ *MemoryProgress }

func (failingProgress) MarkPending(context.Context, string) error {
	return fmt.Errorf("mark: %w", hub.ErrUnavailable)
}

func TestPublishFailsWhenTheChannelCannotBeMarked(t *testing.T) {
	t.Parallel()
	stub := newAblyStub(t)
	backend := hub.NewMemory(hub.MemoryConfig{})
	n := newNode(t, backend, failingProgress{NewMemoryProgress()}, testConfig(stub), nil)
	ctx := context.Background()
	_, err := n.hub.Publish(ctx, "session:m", hub.Publication{Type: "image.added", Data: []byte(`{}`)})
	if !errors.Is(err, hub.ErrUnavailable) {
		t.Fatalf("publish with an unmarkable channel: %v, want ErrUnavailable", err)
	}
	// The event does not exist: nothing can be published unmarked.
	top, err := backend.Top(ctx, "session:m")
	if err != nil {
		t.Fatal(err)
	}
	testutil.Check(t, "top after the refused publish (nothing stored)", hub.Cursor{}, top)
	// Channels the bridge ignores are not held up by it.
	if _, err := n.hub.Publish(ctx, "integrator.feed", hub.Publication{Type: "x", Data: []byte(`{}`)}); err != nil {
		t.Errorf("a non-session publish failed: %v", err)
	}
}
