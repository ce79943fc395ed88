package capture

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/blob"
	"github.com/handoff-health/handoff/internal/session"
	"github.com/handoff-health/handoff/internal/testutil"
)

// failingHub is a hub backend whose publishes fail while failing is set,
// like Redis failing over between the session write and the publish.
type failingHub struct {
	hub.Backend
	mu      sync.Mutex
	failing bool
}

func (f *failingHub) set(failing bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failing = failing
}

func (f *failingHub) Publish(ctx context.Context, channel string, p hub.Publication) (hub.Event, error) {
	f.mu.Lock()
	failing := f.failing
	f.mu.Unlock()
	if failing {
		return hub.Event{}, errors.New("redis: CLUSTERDOWN the cluster is down")
	}
	return f.Backend.Publish(ctx, channel, p)
}

// TestStoredChangeIsAnnouncedAfterPublishFails: the image is stored, its
// publish fails; the phone is told 503 (not 201), and the desktop still
// gets image.added once the hub takes publishes again. The phone's retry of
// the same register is answered 200 with the stored image.
func TestStoredChangeIsAnnouncedAfterPublishFails(t *testing.T) {
	t.Parallel()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fh := &failingHub{Backend: hub.NewMemory(hub.MemoryConfig{})}
			e := newEnvHub(t, b, Config{}, testutil.NewClock(), fh)
			c := e.create("enc-announce")
			desktop := e.subscribe(c.Channel, nil)
			cl := e.claim(c.Token)
			desktop.wait(t, EventMobileConnected)

			data := testutil.JPEG(t, 1)
			id := uuid.NewString()
			p := e.presign(cl.MobileToken, id, "image/jpeg", len(data))
			upload(t, p, data)
			fh.set(true)
			st, body := e.register(cl.MobileToken, id, p.Key, nil)
			testutil.Equal(t, "register status while the hub fails", http.StatusServiceUnavailable, st)
			testutil.Equal(t, "register error code", "unavailable", errCode(body))
			testutil.Equal(t, "events kept", 1, e.hub.Pending())

			fh.set(false)
			ev := desktop.wait(t, EventImageAdded)
			testutil.Eventually(t, "nothing left to republish", func() bool { return e.hub.Pending() == 0 })
			testutil.Equal(t, "image.added is the stored image", true, bytes.Contains(ev.Data, []byte(id)))
			st, _ = e.register(cl.MobileToken, id, p.Key, nil)
			testutil.Equal(t, "retried register", http.StatusOK, st)
			testutil.Equal(t, "image.added events", 0, desktop.count(EventImageAdded))
		})
	}
}

// TestRemoveIsAnnouncedAfterPublishFails covers a desktop request: the
// removal is stored, the publish fails, the desktop is told 503 and its
// subscribers still get image.removed, after the earlier image.added.
func TestRemoveIsAnnouncedAfterPublishFails(t *testing.T) {
	t.Parallel()
	fh := &failingHub{Backend: hub.NewMemory(hub.MemoryConfig{})}
	e := newEnvHub(t, memoryBackend(), Config{}, testutil.NewClock(), fh)
	c := e.create("enc-announce-rm")
	desktop := e.subscribe(c.Channel, nil)
	cl := e.claim(c.Token)
	img := e.addImage(cl.MobileToken, testutil.JPEG(t, 2), "image/jpeg")
	desktop.wait(t, EventImageAdded)

	fh.set(true)
	st, _ := e.do("DELETE", "/api/medtech/session/"+c.SessionID+"/images/"+img.ID, e.jwt, nil)
	testutil.Equal(t, "delete status while the hub fails", http.StatusServiceUnavailable, st)
	fh.set(false)
	desktop.wait(t, EventImageRemoved)
}

// TestRetriedRegisterReannounces: node A stored the image but could not
// publish, and its kept event dies with it (its hub never takes a publish
// again). The phone's retry reaches node B, which finds no image.added in
// the channel's history and announces it: the desktop, on B, gets it.
// A second retry adds nothing.
func TestRetriedRegisterReannounces(t *testing.T) {
	t.Parallel()
	deadHub := &failingHub{Backend: hub.NewMemory(hub.MemoryConfig{}), failing: true}
	a := newEnvHub(t, memoryBackend(), Config{}, testutil.NewClock(), deadHub)
	shared := backend{"shared", func(*testing.T, string) (session.Store, blob.Store, func(*http.ServeMux)) {
		return a.store, a.blobs, func(*http.ServeMux) {}
	}}
	b := newEnvHub(t, shared, Config{}, testutil.NewClock(), hub.NewMemory(hub.MemoryConfig{}))
	c := a.create("enc-reannounce")
	desktop := b.subscribe(c.Channel, nil)
	cl := a.claim(c.Token)

	data := testutil.JPEG(t, 4)
	id := uuid.NewString()
	p := a.presign(cl.MobileToken, id, "image/jpeg", len(data))
	upload(t, p, data)
	st, _ := a.register(cl.MobileToken, id, p.Key, nil)
	testutil.Equal(t, "register on node A", http.StatusServiceUnavailable, st)

	st, _ = b.register(cl.MobileToken, id, p.Key, nil)
	testutil.Equal(t, "retried register on node B", http.StatusOK, st)
	ev := desktop.wait(t, EventImageAdded)
	testutil.Equal(t, "image.added names the image", true, bytes.Contains(ev.Data, []byte(id)))
	top := b.top(c.Channel)
	st, _ = b.register(cl.MobileToken, id, p.Key, nil)
	testutil.Equal(t, "second retry", http.StatusOK, st)
	testutil.Equal(t, "nothing published by the second retry", top, b.top(c.Channel))
}
