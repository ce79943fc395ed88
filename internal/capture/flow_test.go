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
	if !c.Created || c.Channel != "session:"+c.SessionID || !strings.HasPrefix(c.MobileURL, e.srv.URL+"/m/") {
		t.Fatalf("create reply %+v", c)
	}
	if now := e.clock.Now().Truncate(time.Millisecond); !c.ExpiresAt.Equal(now.Add(DefaultQRTokenTTL)) || !c.SessionExpiresAt.Equal(now.Add(DefaultSessionTTL)) {
		t.Fatalf("expiries %v %v", c.ExpiresAt, c.SessionExpiresAt)
	}
	live := e.subscribe(c.Channel, nil)
	checkQR(t, c.QRURL, http.StatusOK)

	cl := e.claim(c.Token)
	if cl.SessionID != c.SessionID || cl.PatientDisplay != testDisplay || cl.MaxImages != DefaultMaxImages || cl.ImageCount != 0 {
		t.Fatalf("claim reply %+v", cl)
	}
	live.wait(t, EventMobileConnected)
	checkQR(t, c.QRURL, http.StatusGone) // a used QR code is not shown again

	data := testJPEG(t, 1)
	added := e.addImage(cl.MobileToken, data, "image/jpeg")
	ev := live.wait(t, EventImageAdded)
	var evImg ImageView
	if err := json.Unmarshal(ev.Data, &evImg); err != nil || evImg.ID != added.ID || evImg.URL == "" {
		t.Fatalf("image.added data %s (%v)", ev.Data, err)
	}
	if !bytes.Equal(fetch(t, evImg.URL), data) {
		t.Fatal("event URL serves other bytes")
	}

	snap := e.snapshot(c.SessionID)
	if snap.Status != StatusOpen || !snap.MobileConnected || len(snap.Images) != 1 || snap.Cursor == "0" ||
		snap.PatientDisplay != testDisplay || snap.EncounterID != "enc-flow" || snap.Channel != c.Channel {
		t.Fatalf("snapshot %+v", snap)
	}
	img := snap.Images[0]
	if img.ID != added.ID || img.ContentType != "image/jpeg" || img.Size != int64(len(data)) ||
		img.Metadata.Laterality != "left" || img.Commit.Status != CommitPending {
		t.Fatalf("snapshot image %+v", img)
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
	if patched.Metadata.Laterality != "" || patched.Metadata.Notes != "healing well" || patched.Metadata.BodySite.Code != "40983000" {
		t.Fatalf("patched %+v", patched.Metadata)
	}
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
	second := e.addImage(mobile, testPNG(t, 2), "image/png")
	e.clock.Advance(DefaultSessionTTL + time.Second)
	if n := e.api.sweep(ctx); n != 1 {
		t.Fatalf("sweep removed %d sessions, want 1", n)
	}
	live.wait(t, EventSessionExpired)
	if _, err := e.blobs.Stat(ctx, blob.Key(c.SessionID, second.ID)); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("expired session's blob: %v", err)
	}
	st, body = e.do("GET", "/api/medtech/session/"+c.SessionID, e.jwt, nil)
	if st != http.StatusNotFound || errCode(body) != "session_not_found" {
		t.Fatalf("snapshot after expiry: %d %s", st, body)
	}
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
	if want == http.StatusOK && (resp.Header.Get("Content-Type") != "image/svg+xml" || !bytes.HasPrefix(b, []byte("<svg"))) {
		t.Fatalf("QR: %s %.40s", resp.Header.Get("Content-Type"), b)
	}
}
