package commit

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/handoff-health/handoff/internal/alex"
	"github.com/handoff-health/handoff/internal/alex/alextest"
	"github.com/handoff-health/handoff/internal/capture"
)

func TestCommitHappyPath(t *testing.T) {
	t.Parallel()
	for _, sk := range storeKinds(t) {
		t.Run(sk.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{store: sk.make(t)})
			sd := e.seed(3)

			reply := e.commit(Request{SessionID: sd.id})
			if reply.Status != StatusCommitted || reply.SessionStatus != capture.StatusCommitted ||
				reply.Committed != 3 || reply.Failed != 0 || len(reply.Results) != 3 {
				t.Fatalf("reply %+v", reply)
			}
			media := e.fake.Media()
			if len(media) != 3 {
				t.Fatalf("%d Media at ALEX, want 3", len(media))
			}
			byImage := map[string]alextest.StoredMedia{}
			for _, m := range media {
				byImage[m.Resource.Identifier[0].Value] = m
			}
			for i, img := range sd.images {
				res := reply.Results[i]
				m, ok := byImage[img.ID]
				if !ok || res.ImageID != img.ID || res.Status != capture.CommitCommitted || res.AlexID != m.ID {
					t.Fatalf("result %d %+v, media %+v", i, res, m.ID)
				}
				checkMedia(t, m, img, sd.data[img.ID], i+1)
			}

			s := e.session(sd.id)
			if s.Status != capture.StatusCommitted {
				t.Errorf("session status %q", s.Status)
			}
			for _, img := range s.Images {
				if img.Commit.Status != capture.CommitCommitted || img.Commit.AlexID == "" || img.Commit.CommittedAt.IsZero() {
					t.Errorf("stored commit %+v", img.Commit)
				}
				if e.read(img.Key) != nil {
					t.Errorf("blob of %s not deleted", img.ID)
				}
			}
			checkEvents(t, e, sd, reply)

			checkRecommitNoop(t, e, sd, reply)
			checkAudit(t, e, []map[string]any{
				{"result": "committed", "requested": 3.0, "committed": 3.0, "skipped": 0.0, "failed": 0.0},
				{"result": "committed", "requested": 3.0, "committed": 0.0, "skipped": 3.0, "failed": 0.0},
			})
			e.assertNoPHI()
		})
	}
}

// checkRecommitNoop commits a committed session again: nothing is sent,
// nothing is announced, and the reply repeats the ALEX ids.
func checkRecommitNoop(t *testing.T, e *env, sd seeded, reply Reply) {
	t.Helper()
	before, evs := e.fake.MediaRequests(), len(e.events(sd.id))
	again := e.commit(Request{SessionID: sd.id})
	if again.Status != StatusCommitted || again.Committed != 3 || e.fake.MediaRequests() != before {
		t.Errorf("re-commit: %+v, %d Media requests (was %d)", again, e.fake.MediaRequests(), before)
	}
	for i, res := range again.Results {
		if res.AlexID != reply.Results[i].AlexID {
			t.Errorf("re-commit result %+v, want alexId %s", res, reply.Results[i].AlexID)
		}
	}
	if n := len(e.events(sd.id)); n != evs {
		t.Errorf("re-commit published %d events", n-evs)
	}
}

// checkMedia checks one filed Media against the image it came from.
func checkMedia(t *testing.T, m alextest.StoredMedia, img capture.Image, data []byte, n int) {
	t.Helper()
	r := m.Resource
	switch {
	case !bytes.Equal(m.Data, data):
		t.Errorf("content.data of %s differs from the upload", img.ID)
	case m.FacilityID != facility:
		t.Errorf("mt-facilityid %q", m.FacilityID)
	case r.Subject == nil || r.Subject.Reference != "Patient/"+patientID:
		t.Errorf("subject %+v", r.Subject)
	case r.Identifier[0].System != alex.DefaultIdentifierSystem:
		t.Errorf("identifier %+v", r.Identifier)
	case r.BodySite == nil || len(r.BodySite.Coding) != 1 || r.BodySite.Coding[0].Code != "14975008" ||
		len(r.BodySite.Extension) != 1 || !strings.Contains(string(r.BodySite.Extension[0]["valueCodeableConcept"]), "7771000"):
		t.Errorf("bodySite/laterality %+v", r.BodySite)
	case len(r.Note) != 1 || r.Note[0].Text != secretNotes:
		t.Errorf("notes %+v", r.Note)
	case r.Content.ContentType != "image/jpeg" || r.Content.Title != "Clinical photo "+string(rune('0'+n))+" of 3":
		t.Errorf("content %+v", r.Content)
	case r.CreatedDateTime == "":
		t.Errorf("no createdDateTime")
	}
}

// checkEvents checks image.committed for each image, then session.committed.
func checkEvents(t *testing.T, e *env, sd seeded, reply Reply) {
	t.Helper()
	evs := e.events(sd.id)
	want := []string{EventImageCommitted, EventImageCommitted, EventImageCommitted, EventSessionCommitted}
	if got := eventTypes(evs); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	alexIDs := map[string]string{}
	for _, res := range reply.Results {
		alexIDs[res.ImageID] = res.AlexID
	}
	for _, ev := range evs[:3] {
		var d imageCommittedEvent
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			t.Fatal(err)
		}
		if d.SessionID != sd.id || d.AlexID == "" || alexIDs[d.ImageID] != d.AlexID || d.Image == nil ||
			d.Image.Commit.Status != capture.CommitCommitted || d.Image.URL == "" {
			t.Errorf("image.committed %s", ev.Data)
		}
	}
	var sc sessionCommittedEvent
	if err := json.Unmarshal(evs[3].Data, &sc); err != nil || sc.ImageCount != 3 || sc.Committed != 3 {
		t.Errorf("session.committed %s", evs[3].Data)
	}
}

// checkAudit checks there is one audit line per request with these fields,
// and with who and which session.
func checkAudit(t *testing.T, e *env, want []map[string]any) {
	t.Helper()
	lines := e.auditLines()
	if len(lines) != len(want) {
		t.Fatalf("%d audit lines, want %d:\n%s", len(lines), len(want), e.log.String())
	}
	for i, w := range want {
		for k, v := range w {
			if lines[i][k] != v {
				t.Errorf("audit line %d: %s = %v, want %v", i, k, lines[i][k], v)
			}
		}
		for _, k := range []string{"provider", "facility", "session", "duration_ms"} {
			if _, ok := lines[i][k]; !ok {
				t.Errorf("audit line %d has no %s", i, k)
			}
		}
	}
}

// The outbox files exactly what the client would send, one file per image.
func TestCommitOutbox(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := newEnv(t, envOptions{outbox: dir})
	sd := e.seed(3)
	reply := e.commit(Request{SessionID: sd.id})
	if reply.Status != StatusCommitted || reply.SessionStatus != capture.StatusCommitted {
		t.Fatalf("reply %+v", reply)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != 3 {
		t.Fatalf("%d outbox files, want 3", len(files))
	}
	for i, img := range sd.images {
		got, err := os.ReadFile(filepath.Join(dir, "media-"+img.ID+".json"))
		if err != nil {
			t.Fatal(err)
		}
		want, err := alex.BuildMedia(alex.MediaInput{
			FacilityID: facility, PatientID: patientID, ImageID: img.ID, ContentType: "image/jpeg",
			Title: "Clinical photo " + string(rune('1'+i)) + " of 3", Notes: secretNotes, Laterality: "left",
			Data: sd.data[img.ID], CreatedAt: img.CreatedAt,
			BodySite: &alex.Coding{System: alex.SystemSNOMED, Code: "14975008", Display: "Forearm"},
		}, alex.DefaultIdentifierSystem)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("outbox file of image %d differs from BuildMedia:\n%s\n%s", i, got, want)
		}
		if reply.Results[i].AlexID != "outbox-"+img.ID {
			t.Errorf("result %+v", reply.Results[i])
		}
	}
	e.assertNoPHI()
}

// Metadata overrides are merge patches stored before filing, and what is
// filed.
func TestCommitMetadataOverride(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	sd := e.seed(2)
	a, b := sd.images[0].ID, sd.images[1].ID
	body := `{"sessionId":"` + sd.id + `","metadata":{` +
		`"` + a + `":{"laterality":"right","notes":"edited on desktop"},` +
		`"` + b + `":{"bodySite":null,"laterality":null}}}`
	status, out := e.post(body)
	if status != 200 {
		t.Fatalf("%d %s", status, out)
	}
	s := e.session(sd.id)
	ma, _ := s.Image(a)
	mb, _ := s.Image(b)
	if ma.Metadata.Laterality != "right" || ma.Metadata.Notes != "edited on desktop" || ma.Metadata.BodySite.Code != "14975008" {
		t.Errorf("image a metadata %+v", ma.Metadata)
	}
	if mb.Metadata != (capture.Metadata{Notes: secretNotes}) {
		t.Errorf("image b metadata %+v", mb.Metadata)
	}
	for _, m := range e.fake.Media() {
		switch m.Resource.Identifier[0].Value {
		case a:
			if m.Resource.Note[0].Text != "edited on desktop" || !strings.Contains(string(m.Resource.BodySite.Extension[0]["valueCodeableConcept"]), "24028007") {
				t.Errorf("Media of a: %+v", m.Resource)
			}
		case b:
			if m.Resource.BodySite != nil {
				t.Errorf("Media of b has a body site: %+v", m.Resource.BodySite)
			}
		}
	}
}

// Committing a subset files only it; the session closes when the rest is
// committed too.
func TestCommitSubset(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	sd := e.seed(3)
	first := e.commit(Request{SessionID: sd.id, ImageIDs: []string{sd.images[1].ID, sd.images[1].ID}})
	if first.Status != StatusCommitted || len(first.Results) != 1 || first.SessionStatus != capture.StatusOpen {
		t.Fatalf("subset reply %+v", first)
	}
	if len(e.fake.Media()) != 1 || e.read(sd.images[0].Key) == nil || e.read(sd.images[1].Key) == nil {
		t.Fatalf("subset: %d Media; blobs must stay until the session is committed", len(e.fake.Media()))
	}
	rest := e.commit(Request{SessionID: sd.id})
	if rest.SessionStatus != capture.StatusCommitted || len(e.fake.Media()) != 3 || e.fake.MediaRequests() != 3 {
		t.Fatalf("rest %+v, %d Media, %d requests", rest, len(e.fake.Media()), e.fake.MediaRequests())
	}
	if got := eventTypes(e.events(sd.id)); got[len(got)-1] != EventSessionCommitted || len(got) != 4 {
		t.Errorf("events %v", got)
	}
}
