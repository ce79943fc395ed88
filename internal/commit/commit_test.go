package commit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/handoff-health/handoff/internal/alex"
	"github.com/handoff-health/handoff/internal/alex/alextest"
	"github.com/handoff-health/handoff/internal/session"
	"github.com/handoff-health/handoff/internal/testutil"
)

func TestCommitHappyPath(t *testing.T) {
	t.Parallel()
	for _, sk := range storeKinds(t) {
		t.Run(sk.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{store: sk.make(t)})
			sd := e.seed(3)

			reply := e.commit(Request{SessionID: sd.id})
			checkReply(t, "reply", replySummary{StatusCommitted, session.StatusCommitted, 3, 0, 3}, reply)
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
				m, ok := byImage[sd.id+"."+img.ID]
				if !ok {
					t.Fatalf("image %d was not filed", i)
				}
				testutil.Equal(t, fmt.Sprintf("result %d", i), Result{ImageID: img.ID, Status: session.CommitCommitted, AlexID: m.ID}, res)
				checkMedia(t, m, img, sd.data[img.ID], i+1)
			}

			s := e.session(sd.id)
			testutil.Check(t, "session status", session.StatusCommitted, s.Status)
			for _, img := range s.Images {
				testutil.Check(t, "stored commit status of "+img.ID, session.CommitCommitted, img.Commit.Status)
				if img.Commit.AlexID == "" {
					t.Errorf("stored commit of %s has no ALEX id", img.ID)
				}
				if img.Commit.CommittedAt.IsZero() {
					t.Errorf("stored commit of %s has no committedAt", img.ID)
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
	testutil.Check(t, "re-commit: status", StatusCommitted, again.Status)
	testutil.Check(t, "re-commit: committed", 3, again.Committed)
	testutil.Check(t, "re-commit: Media requests", before, e.fake.MediaRequests())
	for i, res := range again.Results {
		testutil.Check(t, fmt.Sprintf("re-commit result %d: alexId", i), reply.Results[i].AlexID, res.AlexID)
	}
	testutil.Check(t, "events after re-commit (none published)", evs, len(e.events(sd.id)))
}

// checkMedia checks one filed Media against the image it came from.
func checkMedia(t *testing.T, m alextest.StoredMedia, img session.Image, data []byte, n int) {
	t.Helper()
	r := m.Resource
	if !bytes.Equal(m.Data, data) {
		t.Errorf("content.data of %s differs from the upload", img.ID)
	}
	testutil.Check(t, "mt-facilityid", facility, m.FacilityID)
	if r.Subject == nil {
		t.Error("Media has no subject")
	} else {
		testutil.Check(t, "subject reference", "Patient/"+patientID, r.Subject.Reference)
	}
	testutil.Check(t, "identifier system", alex.DefaultIdentifierSystem, r.Identifier[0].System)
	switch {
	case r.BodySite == nil:
		t.Error("Media has no bodySite")
	case len(r.BodySite.Coding) != 1:
		t.Errorf("bodySite has %d codings, want 1", len(r.BodySite.Coding))
	case len(r.BodySite.Extension) != 1:
		t.Errorf("bodySite has %d extensions (laterality), want 1", len(r.BodySite.Extension))
	default:
		testutil.Check(t, "bodySite code", "14975008", r.BodySite.Coding[0].Code)
		if !strings.Contains(string(r.BodySite.Extension[0]["valueCodeableConcept"]), "7771000") {
			t.Errorf("laterality extension %s lacks the left code 7771000", r.BodySite.Extension[0]["valueCodeableConcept"])
		}
	}
	if testutil.Check(t, "number of notes", 1, len(r.Note)) {
		testutil.Check(t, "note text", secretNotes, r.Note[0].Text)
	}
	testutil.Check(t, "content type", "image/jpeg", r.Content.ContentType)
	testutil.Check(t, "content title", "Clinical photo "+string(rune('0'+n))+" of 3", r.Content.Title)
	if r.CreatedDateTime == "" {
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
		testutil.Check(t, "image.committed: sessionId", sd.id, d.SessionID)
		if d.AlexID == "" {
			t.Errorf("image.committed has no alexId: %s", ev.Data)
		}
		testutil.Check(t, "image.committed: alexId of "+d.ImageID, alexIDs[d.ImageID], d.AlexID)
		if d.Image == nil {
			t.Errorf("image.committed has no image: %s", ev.Data)
			continue
		}
		testutil.Check(t, "image.committed: image commit status", session.CommitCommitted, d.Image.Commit.Status)
		if d.Image.URL == "" {
			t.Errorf("image.committed image has no URL: %s", ev.Data)
		}
	}
	var sc sessionCommittedEvent
	if err := json.Unmarshal(evs[3].Data, &sc); err != nil {
		t.Fatalf("session.committed %s: %v", evs[3].Data, err)
	}
	testutil.Check(t, "session.committed", sessionCommittedEvent{SessionID: sd.id, ImageCount: 3, Committed: 3}, sc)
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
	testutil.Check(t, "reply status", StatusCommitted, reply.Status)
	testutil.Equal(t, "reply sessionStatus", session.StatusCommitted, reply.SessionStatus)
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != 3 {
		t.Fatalf("%d outbox files, want 3", len(files))
	}
	for i, img := range sd.images {
		got, err := os.ReadFile(filepath.Join(dir, "media-"+sd.id+"."+img.ID+".json"))
		if err != nil {
			t.Fatal(err)
		}
		want, err := alex.BuildMedia(alex.MediaInput{
			FacilityID: facility, PatientID: patientID, SessionID: sd.id, ImageID: img.ID, ContentType: "image/jpeg",
			EncounterID: e.session(sd.id).EncounterID, ProviderID: provider,
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
		testutil.Check(t, fmt.Sprintf("result %d: alexId", i), "outbox-"+sd.id+"."+img.ID, reply.Results[i].AlexID)
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
	testutil.Check(t, "image a metadata", session.Metadata{
		Laterality: "right", Notes: "edited on desktop",
		BodySite: session.BodySite{System: alex.SystemSNOMED, Code: "14975008", Display: "Forearm"},
	}, ma.Metadata)
	testutil.Check(t, "image b metadata", session.Metadata{Notes: secretNotes}, mb.Metadata)
	if len(e.fake.Media()) != 2 {
		t.Fatalf("%d Media filed, want 2", len(e.fake.Media()))
	}
	for _, m := range e.fake.Media() {
		// The identifier is <sessionId>.<imageId>.
		switch strings.TrimPrefix(m.Resource.Identifier[0].Value, sd.id+".") {
		case a:
			testutil.Check(t, "Media of a: note", "edited on desktop", m.Resource.Note[0].Text)
			testutil.Check(t, "Media of a: encounter", "Encounter/"+s.EncounterID, m.Resource.Encounter.Reference)
			testutil.Check(t, "Media of a: operator", "Practitioner/"+provider, m.Resource.Operator.Reference)
			if ext := string(m.Resource.BodySite.Extension[0]["valueCodeableConcept"]); !strings.Contains(ext, "24028007") {
				t.Errorf("Media of a: laterality %s lacks the right code 24028007", ext)
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
	checkReply(t, "subset reply", replySummary{StatusCommitted, session.StatusOpen, 1, 0, 1}, first)
	testutil.Equal(t, "Media at ALEX after the subset", 1, len(e.fake.Media()))
	for _, img := range sd.images[:2] {
		if e.read(img.Key) == nil {
			t.Fatalf("blob of %s deleted before the session was committed", img.ID)
		}
	}
	rest := e.commit(Request{SessionID: sd.id})
	testutil.Check(t, "rest: sessionStatus", session.StatusCommitted, rest.SessionStatus)
	testutil.Check(t, "Media at ALEX after the rest", 3, len(e.fake.Media()))
	testutil.Check(t, "Media requests after the rest", 3, e.fake.MediaRequests())
	testutil.Check(t, "event types", []string{EventImageCommitted, EventImageCommitted, EventImageCommitted, EventSessionCommitted},
		eventTypes(e.events(sd.id)))
}
