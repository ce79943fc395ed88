package alex

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/handoff-health/handoff/internal/alex/alextest"
	"github.com/handoff-health/handoff/internal/testutil"
)

var matchReplies = []struct {
	name  string
	reply alextest.MatchReply
}{{"resource in the body", alextest.MatchBody}, {"Location only", alextest.MatchLocation}}

// TestCreateMediaMatchedSameImage: a conditional create that matches this
// image's own earlier filing is a success with that Media's id.
func TestCreateMediaMatchedSameImage(t *testing.T) {
	t.Parallel()
	for _, mr := range matchReplies {
		t.Run(mr.name, func(t *testing.T) {
			t.Parallel()
			fake := alextest.NewServer(t, alextest.Options{})
			fake.SetMatchReply(mr.reply)
			c, _ := newTestClient(t, fake, nil)
			first, err := c.CreateMedia(context.Background(), sampleInput())
			if err != nil {
				t.Fatal(err)
			}
			again, err := c.CreateMedia(context.Background(), sampleInput())
			if err != nil {
				t.Fatalf("matched create: %v", err)
			}
			testutil.Check(t, "matched Media id", first.ID, again.ID)
			testutil.Check(t, "Media stored", 1, len(fake.Media()))
		})
	}
}

// TestCreateMediaMatchedOtherPatient: ALEX already holds a Media with this
// image's identifier for another patient. The match must not count as
// filed: the image fails, permanently, and the error names no patient.
func TestCreateMediaMatchedOtherPatient(t *testing.T) {
	t.Parallel()
	for _, mr := range matchReplies {
		t.Run(mr.name, func(t *testing.T) {
			t.Parallel()
			fake := alextest.NewServer(t, alextest.Options{})
			fake.SetMatchReply(mr.reply)
			in := sampleInput()
			fake.AddMedia(alextest.StoredMedia{FacilityID: in.FacilityID, Resource: alextest.Media{
				ResourceType: "Media", Status: "completed",
				Identifier: []alextest.Identifier{{System: DefaultIdentifierSystem, Value: IdentifierValue(in)}},
				Subject:    &alextest.Reference{Reference: "Patient/someone-else"},
			}})
			c, _ := newTestClient(t, fake, nil)
			_, err := c.CreateMedia(context.Background(), in)
			if !errors.Is(err, ErrIdentifierConflict) {
				t.Fatalf("err = %v, want ErrIdentifierConflict", err)
			}
			testutil.Check(t, "permanent", true, IsPermanent(err))
			testutil.Check(t, "create requests (no retry)", 1, fake.MediaRequests())
			testutil.Check(t, "Media stored", 1, len(fake.Media()))
			if strings.Contains(err.Error(), in.PatientID) || strings.Contains(err.Error(), "someone-else") {
				t.Errorf("error %q names a patient", err)
			}
		})
	}
}

// TestExpectedCheck covers what a matched Media must carry.
func TestExpectedCheck(t *testing.T) {
	t.Parallel()
	in := sampleInput()
	want := expect(in, "urn:sys")
	good := matchedMedia{ResourceType: "Media", ID: "m-1",
		Identifier: []identifier{{System: "urn:other", Value: "x"}, {System: "urn:sys", Value: IdentifierValue(in)}},
		Subject:    &reference{Reference: "Patient/" + in.PatientID}}
	if err := want.check(good); err != nil {
		t.Fatalf("own Media refused: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*matchedMedia)
	}{
		{"another patient", func(m *matchedMedia) { m.Subject = &reference{Reference: "Patient/other"} }},
		{"no subject", func(m *matchedMedia) { m.Subject = nil }},
		{"identifier of another session", func(m *matchedMedia) {
			m.Identifier = []identifier{{System: "urn:sys", Value: "other-session." + in.ImageID}}
		}},
		{"identifier in another system", func(m *matchedMedia) {
			m.Identifier = []identifier{{System: "urn:other", Value: IdentifierValue(in)}}
		}},
		{"not a Media", func(m *matchedMedia) { m.ResourceType = "OperationOutcome" }},
	} {
		m := good
		tc.edit(&m)
		if err := want.check(m); !errors.Is(err, ErrIdentifierConflict) {
			t.Errorf("%s: err = %v, want ErrIdentifierConflict", tc.name, err)
		}
	}
}

// TestOutboxSameImageIDInTwoSessions is issue 13's reproduction at the
// outbox: two sessions (of different facilities) file a different photo
// under one image id, and both are written, each with its own bytes.
func TestOutboxSameImageIDInTwoSessions(t *testing.T) {
	t.Parallel()
	o, err := NewOutbox(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, b := sampleInput(), sampleInput()
	b.FacilityID, b.SessionID, b.PatientID = "F9Z999-B", "5e0c7a51-2b8d-4e3f-9c6a-1d2e3f4a5b6c", "other-patient"
	b.Data = []byte{0xff, 0xd8, 0xff, 0xe1, 'o', 't', 'h', 'e', 'r'}
	ra, err := o.CreateMedia(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := o.CreateMedia(context.Background(), b)
	if err != nil {
		t.Fatalf("second session's image: %v", err)
	}
	if ra.Location == rb.Location || ra.ID == rb.ID {
		t.Fatalf("both sessions filed to one file: %+v %+v", ra, rb)
	}
	for _, tc := range []struct {
		res Result
		in  MediaInput
	}{{ra, a}, {rb, b}} {
		got, _ := os.ReadFile(tc.res.Location)
		want, _ := BuildMedia(tc.in, DefaultIdentifierSystem)
		testutil.Check(t, "outbox file of session "+tc.in.SessionID, string(want), string(got))
	}
}

// TestOutboxConflict: an outbox file for this identifier that names
// another patient is not this image's filing.
func TestOutboxConflict(t *testing.T) {
	t.Parallel()
	o, err := NewOutbox(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.CreateMedia(context.Background(), sampleInput()); err != nil {
		t.Fatal(err)
	}
	in := sampleInput()
	in.PatientID = "other-patient"
	if _, err := o.CreateMedia(context.Background(), in); !errors.Is(err, ErrIdentifierConflict) {
		t.Fatalf("err = %v, want ErrIdentifierConflict", err)
	}
}
