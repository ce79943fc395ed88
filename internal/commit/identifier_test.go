package commit

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/handoff-health/handoff/internal/alex"
	"github.com/handoff-health/handoff/internal/alex/alextest"
	"github.com/handoff-health/handoff/internal/session"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestSameImageIDInTwoFacilities is issue 13's reproduction of "image ids
// collide across sessions": facility B registers a different photo under
// the image id facility A used, and both commit. Each must be filed, as
// its own Media file holding its own bytes; neither may be "committed"
// with nothing filed, and neither may lose its blob to the other.
func TestSameImageIDInTwoFacilities(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := newEnv(t, envOptions{outbox: dir})
	a := e.seed(1)
	shared := a.images[0].ID
	b := e.seedAs("fac-b-"+uuid.NewString()[:8], "other-patient", shared)

	for _, tc := range []struct {
		jwt string
		sd  seeded
	}{{e.jwt, a}, {e.token(e.session(b.id).Facility), b}} {
		status, body := e.postAs(tc.jwt, Request{SessionID: tc.sd.id})
		var r Reply
		if status != 200 || json.Unmarshal(body, &r) != nil {
			t.Fatalf("commit of session %s: %d %s", tc.sd.id, status, body)
		}
		testutil.Check(t, "commit status of session "+tc.sd.id, StatusCommitted, r.Status)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	testutil.Check(t, "outbox files", 2, len(files))
	for _, sd := range []seeded{a, b} {
		raw, err := os.ReadFile(filepath.Join(dir, "media-"+sd.id+"."+shared+".json"))
		if err != nil {
			t.Fatalf("session %s: %v", sd.id, err)
		}
		var m struct {
			Content struct{ Data string } `json:"content"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		got, _ := base64.StdEncoding.DecodeString(m.Content.Data)
		if !bytes.Equal(got, sd.data[shared]) {
			t.Errorf("session %s: the outbox file does not hold its own photo", sd.id)
		}
	}
}

// TestMatchedCreateOfAnotherPatient: ALEX already holds a Media under this
// image's identifier, for another patient. The conditional create matches
// it, which must not count as filed: the image fails with a reason the GP
// sees, and keeps its blob; the session stays open.
func TestMatchedCreateOfAnotherPatient(t *testing.T) {
	t.Parallel()
	for _, mr := range []alextest.MatchReply{alextest.MatchBody, alextest.MatchLocation} {
		e := newEnv(t, envOptions{})
		e.fake.SetMatchReply(mr)
		sd := e.seed(1)
		img := sd.images[0]
		e.fake.AddMedia(alextest.StoredMedia{FacilityID: facility, Resource: alextest.Media{
			ResourceType: "Media", Status: "completed",
			Identifier: []alextest.Identifier{{System: alex.DefaultIdentifierSystem, Value: sd.id + "." + img.ID}},
			Subject:    &alextest.Reference{Reference: "Patient/someone-else"},
		}})
		reply := e.commit(Request{SessionID: sd.id})
		testutil.Equal(t, "result", Result{ImageID: img.ID, Status: session.CommitFailed, Error: &errIdentifierConflict},
			reply.Results[0])
		testutil.Check(t, "session status", session.StatusOpen, e.session(sd.id).Status)
		testutil.Check(t, "image kept", true, e.read(img.Key) != nil)
		testutil.Check(t, "Media in ALEX", 1, len(e.fake.Media()))
	}
}

// seedAs opens a session of another facility and patient and registers one
// image under imageID, with bytes of its own.
func (e *env) seedAs(fac, patient, imageID string) seeded {
	e.t.Helper()
	now := time.Now().UTC()
	s := session.Session{
		ID: uuid.NewString(), Facility: fac, EncounterID: "enc-b", PatientID: patient,
		MaxImages: 20, CreatedAt: now, ExpiresAt: now.Add(2 * time.Hour),
	}
	ctx := context.Background()
	if _, _, err := e.store.Open(ctx, s, session.QRToken{Hash: uuid.NewString(), ExpiresAt: now.Add(time.Minute)}, 0); err != nil {
		e.t.Fatal(err)
	}
	img := e.upload(s.ID, now)
	// Re-register the upload under the shared id: the phone chose it.
	if _, err := e.store.RemoveImage(ctx, s.ID, img.ID, e.api.touch()); err != nil {
		e.t.Fatal(err)
	}
	img.ID = imageID
	if _, _, err := e.store.AddImage(ctx, s.ID, img, e.api.touch()); err != nil {
		e.t.Fatal(err)
	}
	return seeded{id: s.ID, images: []session.Image{img}, data: map[string][]byte{imageID: e.read(img.Key)}}
}
