package capture

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/blob"
	"github.com/handoff-health/handoff/internal/session"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestFlow runs the whole capture flow on both configurations: create →
// QR → claim → presign → upload through the returned URL → register → live
// image.added → snapshot with a download URL whose bytes match → edit →
// delete → expiry sweep.
func TestFlow(t *testing.T) {
	t.Parallel()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b, Config{})
			runFlow(t, e)
		})
	}
}

func runFlow(t *testing.T, e *env) {
	c, mobile, live, snap := flowCapture(t, e)
	flowEditAndExpire(t, e, c, mobile, live, snap)
}

// flowCapture runs create → QR → claim → upload → register → live event →
// snapshot, and returns what the rest of the flow works on.
func flowCapture(t *testing.T, e *env) (createReply, string, *recorder, snapshotReply) {
	c := e.create("enc-flow")
	testutil.Check(t, "create reply: created", true, c.Created)
	testutil.Check(t, "create reply: channel", "session:"+c.SessionID, c.Channel)
	if !strings.HasPrefix(c.MobileURL, e.srv.URL+"/m/") {
		t.Errorf("create reply: mobileUrl %q does not start with %s/m/", c.MobileURL, e.srv.URL)
	}
	now := e.clock.Now().Truncate(time.Millisecond)
	testutil.Check(t, "create reply: expiresAt (QR token)", now.Add(DefaultQRTokenTTL), c.ExpiresAt)
	testutil.Check(t, "create reply: sessionExpiresAt", now.Add(DefaultSessionTTL), c.SessionExpiresAt)
	if t.Failed() {
		t.FailNow()
	}
	live := e.subscribe(c.Channel, nil)
	checkQR(t, c.QRURL, http.StatusOK)

	cl := e.claim(c.Token)
	testutil.Check(t, "claim reply: sessionId", c.SessionID, cl.SessionID)
	testutil.Check(t, "claim reply: patientDisplay", testDisplay, cl.PatientDisplay)
	testutil.Check(t, "claim reply: maxImages", DefaultMaxImages, cl.MaxImages)
	testutil.Check(t, "claim reply: imageCount", 0, cl.ImageCount)
	if t.Failed() {
		t.FailNow()
	}
	live.wait(t, EventMobileConnected)
	checkQR(t, c.QRURL, http.StatusGone) // a used QR code is not shown again

	data := testutil.JPEG(t, 1)
	added := e.addImage(cl.MobileToken, data, "image/jpeg")
	ev := live.wait(t, EventImageAdded)
	var evImg ImageView
	if err := json.Unmarshal(ev.Data, &evImg); err != nil {
		t.Fatalf("image.added data %s: %v", ev.Data, err)
	}
	testutil.Equal(t, "image.added: image id", added.ID, evImg.ID)
	if evImg.URL == "" {
		t.Fatal("image.added: no download URL")
	}
	if !bytes.Equal(fetch(t, evImg.URL), data) {
		t.Fatal("event URL serves other bytes")
	}

	snap := e.snapshot(c.SessionID)
	testutil.Check(t, "snapshot: status", session.StatusOpen, snap.Status)
	testutil.Check(t, "snapshot: mobileConnected", true, snap.MobileConnected)
	testutil.Check(t, "snapshot: patientDisplay", testDisplay, snap.PatientDisplay)
	testutil.Check(t, "snapshot: encounterId", "enc-flow", snap.EncounterID)
	testutil.Check(t, "snapshot: channel", c.Channel, snap.Channel)
	if snap.Cursor == "0" {
		t.Error("snapshot: cursor 0 after events were published")
	}
	testutil.Equal(t, "snapshot: image ids", []string{added.ID}, imageIDs(snap.Images))
	img := snap.Images[0]
	testutil.Check(t, "snapshot image: contentType", "image/jpeg", img.ContentType)
	testutil.Check(t, "snapshot image: size", int64(len(data)), img.Size)
	testutil.Check(t, "snapshot image: laterality", "left", img.Metadata.Laterality)
	testutil.Check(t, "snapshot image: commit status", session.CommitPending, img.Commit.Status)
	if t.Failed() {
		t.FailNow()
	}
	if !bytes.Equal(fetch(t, img.URL), data) {
		t.Fatal("snapshot URL serves other bytes")
	}
	return c, cl.MobileToken, live, snap
}

// flowEditAndExpire edits and deletes the snapshot's image from the desktop,
// adds another from the phone and lets the session expire.
func flowEditAndExpire(t *testing.T, e *env, c createReply, mobile string, live *recorder, snap snapshotReply) {
	ctx := context.Background()
	img := snap.Images[0]
	// Subscribing from the snapshot's cursor replays nothing already seen.
	cur, err := hub.ParseCursor(snap.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	after := e.subscribe(c.Channel, &cur)

	// The desktop edits the metadata (merge patch) and deletes the image.
	var patched ImageView
	st, body := e.do("PATCH", "/api/medtech/session/"+c.SessionID+"/images/"+img.ID, e.jwt,
		`{"laterality":null,"notes":"healing well","bodySite":{"system":"http://snomed.info/sct","code":"40983000","display":"Upper arm"}}`)
	e.must(st, http.StatusOK, body, &patched)
	testutil.Equal(t, "patched metadata", session.Metadata{
		Notes:    "healing well",
		BodySite: session.BodySite{System: "http://snomed.info/sct", Code: "40983000", Display: "Upper arm"},
	}, patched.Metadata)
	st, body = e.do("DELETE", "/api/medtech/session/"+c.SessionID+"/images/"+img.ID, e.jwt, nil)
	e.must(st, http.StatusNoContent, body, nil)
	live.wait(t, EventImageRemoved)
	after.wait(t, EventImageRemoved)
	if n := after.count(EventImageAdded); n != 0 {
		t.Fatalf("replay from the snapshot cursor repeated %d image.added", n)
	}
	if _, err := e.blobs.Stat(ctx, blob.Key(c.SessionID, img.ID)); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("deleted image's blob: %v", err)
	}

	// The phone adds another photo; the session then expires and is swept.
	second := e.addImage(mobile, testutil.PNG(t, 2), "image/png")
	e.clock.Advance(DefaultSessionTTL + time.Second)
	if n := e.api.sweep(ctx); n != 1 {
		t.Fatalf("sweep removed %d sessions, want 1", n)
	}
	live.wait(t, EventSessionExpired)
	if _, err := e.blobs.Stat(ctx, blob.Key(c.SessionID, second.ID)); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("expired session's blob: %v", err)
	}
	st, body = e.do("GET", "/api/medtech/session/"+c.SessionID, e.jwt, nil)
	testutil.Check(t, "snapshot after expiry: status", http.StatusNotFound, st)
	testutil.Equal(t, "snapshot after expiry: error code", "session_not_found", errCode(body))
	if n := e.api.sweep(ctx); n != 0 {
		t.Fatalf("second sweep removed %d", n)
	}
}

func checkQR(t *testing.T, url string, want int) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("QR: %d %s", resp.StatusCode, b)
	}
	if want != http.StatusOK {
		return
	}
	testutil.Equal(t, "QR Content-Type", "image/svg+xml", resp.Header.Get("Content-Type"))
	if !bytes.HasPrefix(b, []byte("<svg")) {
		t.Fatalf("QR body is not an SVG: %.40s", b)
	}
}
