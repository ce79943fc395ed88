package loadtest

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/handoff-health/handoff/client"
)

// Event types a round expects on its session's channel.
const (
	evMobileConnected  = "mobile.connected"
	evImageAdded       = "image.added"
	evImageCommitted   = "image.committed"
	evSessionCommitted = "session.committed"
)

// round is the desktop's view of one capture session: which events a
// successful request obliged the server to publish (expected), which
// arrived (got), and when. Expected and received are matched by logical
// key ("image.added/<imageId>"), so an event that arrives before the
// request that caused it has returned still counts.
//
// Its methods are called from the GP's goroutine and the desktop's reader
// goroutine; mu guards everything.
type round struct {
	channel string
	rec     *recorder

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change
	// subscribed is set when the channel's first subscribed (or resync)
	// frame arrives.
	subscribed bool
	ids        map[string]bool      // event ids (cursors) seen
	got        map[string]time.Time // logical key → arrival
	// published is each image.added's own timestamp (the server's clock
	// when it published), by image id.
	published  map[string]time.Time
	expected   map[string]bool
	registered map[string]span // image id → register request sent, reply received
	duplicated int
	unexpected []string // types of events no step of the flow publishes
}

func newRound(channel string, rec *recorder) *round {
	return &round{
		channel:    channel,
		rec:        rec,
		changed:    make(chan struct{}),
		ids:        make(map[string]bool),
		got:        make(map[string]time.Time),
		published:  make(map[string]time.Time),
		expected:   make(map[string]bool),
		registered: make(map[string]span),
	}
}

// notify wakes every waiter; mu must be held.
func (r *round) notify() {
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *round) markSubscribed() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.subscribed {
		r.subscribed = true
		r.notify()
	}
}

// onEvent records an event the desktop received at at. An id seen before
// is a transport duplicate; a new id for a logical event seen before is a
// publish duplicate (the desktop would show the image twice). Both count
// as duplicated.
func (r *round) onEvent(ev client.Event, at time.Time) {
	key, known := eventKey(ev)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ids[ev.ID] {
		r.duplicated++
		return
	}
	r.ids[ev.ID] = true
	if !known {
		r.unexpected = append(r.unexpected, ev.Type)
		return
	}
	if _, seen := r.got[key]; seen {
		r.duplicated++
		return
	}
	r.got[key] = at
	if ev.Type == evImageAdded {
		id := strings.TrimPrefix(key, evImageAdded+"/")
		r.published[id] = ev.TS
		if reg, ok := r.registered[id]; ok {
			r.observeToDesktop(reg, at, ev.TS)
		}
	}
	r.notify()
}

// eventKey names the logical event: the type, plus the image id for
// per-image events. known is false for types the flow never publishes.
func eventKey(ev client.Event) (key string, known bool) {
	switch ev.Type {
	case evMobileConnected, evSessionCommitted:
		return ev.Type, true
	case evImageAdded, evImageCommitted:
		var d struct {
			ID      string `json:"id"`      // image.added carries the image view
			ImageID string `json:"imageId"` // image.committed names the image
		}
		_ = json.Unmarshal(ev.Data, &d)
		id := d.ImageID
		if ev.Type == evImageAdded {
			id = d.ID
		}
		return ev.Type + "/" + id, id != ""
	}
	return "", false
}

// expect adds logical events a successful request obliges the server to
// publish.
func (r *round) expect(keys ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		r.expected[k] = true
	}
}

// span is when a request was sent and when its reply arrived.
type span struct{ sent, replied time.Time }

// registeredAt records the phone's successful register request and
// expects the image's image.added.
func (r *round) registeredAt(imageID string, reg span) {
	key := evImageAdded + "/" + imageID
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expected[key] = true
	r.registered[imageID] = reg
	if got, ok := r.got[key]; ok {
		r.observeToDesktop(reg, got, r.published[imageID])
	}
}

// observeToDesktop records register→desktop two ways. registerToDesktop
// runs from the register reply (201) to the desktop receiving image.added;
// the server publishes before it replies, so the event can beat the reply,
// which is recorded as 0. registerSentToDesktop runs from sending the
// register request, so it includes the phone's round trip.
//
// published is the event's own timestamp, taken by the server as it
// published; from it, publishToDesktop and publishToReply split the two
// paths out of the same moment: how long the event took to reach the
// desktop and how long the register reply took to reach the phone. They
// compare clocks of the server and this process, so they are exact on one
// machine (loopback) and shifted alike by any skew on two.
func (r *round) observeToDesktop(reg span, added, published time.Time) {
	r.rec.observe(StepToDesktop, max(0, added.Sub(reg.replied)))
	r.rec.observe(StepSentToDesktop, added.Sub(reg.sent))
	if !published.IsZero() {
		r.rec.observe(StepPublishToDesktop, added.Sub(published))
		r.rec.observe(StepPublishToReply, reg.replied.Sub(published))
	}
}

// wait blocks until done reports true (evaluated under mu), timeout passes
// or ctx ends; it returns done's last answer.
func (r *round) wait(ctx context.Context, timeout time.Duration, done func() bool) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		r.mu.Lock()
		ok, ch := done(), r.changed
		r.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// waitSubscribed waits for the channel's subscribed frame.
func (r *round) waitSubscribed(ctx context.Context, timeout time.Duration) bool {
	return r.wait(ctx, timeout, func() bool { return r.subscribed })
}

// waitExpected waits until every expected event whose key starts with
// prefix ("" for all) has arrived.
func (r *round) waitExpected(ctx context.Context, timeout time.Duration, prefix string) bool {
	return r.wait(ctx, timeout, func() bool {
		for k := range r.expected {
			if _, ok := r.got[k]; !ok && strings.HasPrefix(k, prefix) {
				return false
			}
		}
		return true
	})
}

// tally is a finished round's event accounting.
type tally struct {
	expected, received, lost, duplicated int
	// unexpected are events nobody asked for: types the flow never
	// publishes, or an expected type for an image no request succeeded
	// with (e.g. a register whose reply was lost).
	unexpected []string
}

func (r *round) tally() tally {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := tally{expected: len(r.expected), duplicated: r.duplicated, unexpected: append([]string(nil), r.unexpected...)}
	for k := range r.expected {
		if _, ok := r.got[k]; ok {
			t.received++
		} else {
			t.lost++
		}
	}
	for k := range r.got {
		if !r.expected[k] {
			typ, _, _ := strings.Cut(k, "/")
			t.unexpected = append(t.unexpected, typ)
		}
	}
	return t
}
