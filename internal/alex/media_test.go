package alex

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

func sampleInput() MediaInput {
	nz := time.FixedZone("NZDT", 13*3600)
	return MediaInput{
		FacilityID:  "F2N060-A",
		PatientID:   "14e52e16edb7a435bfa05e307afd008b",
		EncounterID: "enc-7f3a91",
		ProviderID:  "prac-4b20c7",
		SessionID:   "0b9d4f3e-8c21-4f6a-a5d2-7e13c94b6f08",
		ImageID:     "6f1c2a0e-5b7d-4c1e-9a41-3f0b8e2d7c11",
		ContentType: "image/jpeg",
		Title:       "Wound, day 3",
		Notes:       "Healing well; no exudate.",
		Laterality:  "left",
		Data:        []byte{0xff, 0xd8, 0xff, 0xe0, 'j', 'p', 'e', 'g'},
		CreatedAt:   time.Date(2025, 3, 4, 10, 30, 0, 0, nz),
		BodySite:    &Coding{System: SystemSNOMED, Code: "14975008", Display: "Forearm structure"},
	}
}

func TestBuildMediaGolden(t *testing.T) {
	t.Parallel()
	got, err := BuildMedia(sampleInput(), DefaultIdentifierSystem)
	if err != nil {
		t.Fatal(err)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, got, "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	golden := filepath.Join("testdata", "media.golden.json")
	if *update {
		if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Errorf("BuildMedia output differs from %s (run with -update to accept):\n%s", golden, pretty.Bytes())
	}
}

func TestBuildMediaFields(t *testing.T) {
	t.Parallel()
	raw, err := BuildMedia(sampleInput(), "urn:test")
	if err != nil {
		t.Fatal(err)
	}
	var m media
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"resourceType", m.ResourceType, "Media"},
		{"identifier", m.Identifier[0].System + "|" + m.Identifier[0].Value, "urn:test|0b9d4f3e-8c21-4f6a-a5d2-7e13c94b6f08.6f1c2a0e-5b7d-4c1e-9a41-3f0b8e2d7c11"},
		{"status", m.Status, "completed"},
		{"type", m.Type.Coding[0].System + "#" + m.Type.Coding[0].Code, SystemMediaType + "#image"},
		{"subject", m.Subject.Reference, "Patient/14e52e16edb7a435bfa05e307afd008b"},
		{"encounter", m.Encounter.Reference, "Encounter/enc-7f3a91"},
		{"operator", m.Operator.Reference, "Practitioner/prac-4b20c7"},
		{"bodySite display (SNOMED term, as sent)", m.BodySite.Coding[0].Display, "Forearm structure"},
		{"created", m.CreatedDateTime, "2025-03-03T21:30:00Z"},
		{"bodySite code", m.BodySite.Coding[0].System + "#" + m.BodySite.Coding[0].Code, SystemSNOMED + "#14975008"},
		{"bodySite text", m.BodySite.Text, "Left forearm"},
		{"laterality url", m.BodySite.Extension[0].URL, LateralityExtension},
		{"laterality code", m.BodySite.Extension[0].ValueCodeableConcept.Coding[0].Code, "7771000"},
		{"note", m.Note[0].Text, "Healing well; no exudate."},
		{"contentType", m.Content.ContentType, "image/jpeg"},
		{"data", m.Content.Data, "/9j/4GpwZWc="},
		{"title", m.Content.Title, "Wound, day 3"},
		{"creation", m.Content.Creation, "2025-03-03T21:30:00Z"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if m.Content.Size != 8 {
		t.Errorf("size = %d, want 8", m.Content.Size)
	}
}

func TestBuildMediaBodySite(t *testing.T) {
	t.Parallel()
	forearm := &Coding{Code: "14975008", Display: "Forearm"}
	cases := []struct {
		name    string
		site    *Coding
		side    string
		want    string // bodySite JSON, "" for absent
		wantErr bool
	}{
		{"none", nil, "", "", false},
		{"not applicable", nil, "not_applicable", "", false},
		{"site only, system defaulted", forearm, "",
			`{"coding":[{"system":"http://snomed.info/sct","code":"14975008","display":"Forearm"}],"text":"Forearm"}`, false},
		{"right", forearm, "right", `"text":"Right forearm"`, false},
		{"bilateral", forearm, "bilateral", `"code":"51440002"`, false},
		{"side already in display", &Coding{Code: "85151006", Display: "Structure of left hand"}, "left",
			`"text":"Left hand"`, false},
		{"structure wording dropped", &Coding{Code: "77568009", Display: "Structure of back of trunk"}, "",
			`"display":"Structure of back of trunk"}],"text":"Back of trunk"`, false},
		{"entire dropped, side added", &Coding{Code: "76853006", Display: "Entire heel"}, "right",
			`"text":"Right heel"`, false},
		{"bone structure of dropped", &Coding{Code: "54735007", Display: "Bone structure of sacrum"}, "",
			`"text":"Sacrum"`, false},
		{"region kept", &Coding{Code: "16982005", Display: "Shoulder region structure"}, "left",
			`"text":"Left shoulder region"`, false},
		{"side word inside another word", &Coding{Code: "80281008", Display: "Cleft lip"}, "left",
			`"text":"Left cleft lip"`, false},
		{"side without site", nil, "right", `{"extension":[{"url":"` + LateralityExtension +
			`","valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"24028007","display":"Right"}]}}],"text":"Right"}`, false},
		{"unknown side", forearm, "sideways", "", true},
		{"site without code", &Coding{Display: "Forearm"}, "", "", true},
	}
	for _, tc := range cases {
		in := sampleInput()
		in.BodySite, in.Laterality = tc.site, tc.side
		raw, err := BuildMedia(in, DefaultIdentifierSystem)
		if tc.wantErr {
			if !errors.Is(err, ErrInvalidInput) {
				t.Errorf("%s: err = %v, want ErrInvalidInput", tc.name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var m struct {
			BodySite json.RawMessage `json:"bodySite"`
		}
		_ = json.Unmarshal(raw, &m)
		if tc.want == "" && m.BodySite != nil || !strings.Contains(string(m.BodySite), tc.want) {
			t.Errorf("%s: bodySite = %s, want %s", tc.name, m.BodySite, tc.want)
		}
	}
}

// TestBuildMediaReferences: encounter and operator appear only when their
// ids are known and valid FHIR ids; a bad one is left out, never fatal.
func TestBuildMediaReferences(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, encounter, provider string
		wantEncounter, wantOp     string
	}{
		{"both", "enc-1", "prac-1", `"encounter":{"reference":"Encounter/enc-1"}`, `"operator":{"reference":"Practitioner/prac-1"}`},
		{"none", "", "", "", ""},
		{"not FHIR ids", "enc 1/../x", "prac|1", "", ""},
	}
	for _, tc := range cases {
		in := sampleInput()
		in.EncounterID, in.ProviderID = tc.encounter, tc.provider
		raw, err := BuildMedia(in, DefaultIdentifierSystem)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for _, c := range []struct{ field, want string }{{`"encounter"`, tc.wantEncounter}, {`"operator"`, tc.wantOp}} {
			if c.want == "" && strings.Contains(string(raw), c.field) {
				t.Errorf("%s: %s present: %s", tc.name, c.field, raw)
			}
			if c.want != "" && !strings.Contains(string(raw), c.want) {
				t.Errorf("%s: want %s in %s", tc.name, c.want, raw)
			}
		}
	}
}

func TestBuildMediaValidation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		edit func(*MediaInput)
		want string
	}{
		{"no patient", func(in *MediaInput) { in.PatientID = "" }, "patient id is missing"},
		{"bad patient", func(in *MediaInput) { in.PatientID = "NHI ABC1234" }, "patient id is not a valid FHIR id"},
		{"no image id", func(in *MediaInput) { in.ImageID = "" }, "image id is missing"},
		{"no session id", func(in *MediaInput) { in.SessionID = "" }, "session id is missing"},
		{"dot in session id", func(in *MediaInput) { in.SessionID = "a.b" }, "session id must be"},
		{"path in image id", func(in *MediaInput) { in.ImageID = "../etc/passwd" }, "image id must be"},
		{"gif", func(in *MediaInput) { in.ContentType = "image/gif" }, "content type"},
		{"no data", func(in *MediaInput) { in.Data = nil }, "image data is empty"},
	}
	for _, tc := range cases {
		in := sampleInput()
		tc.edit(&in)
		_, err := BuildMedia(in, DefaultIdentifierSystem)
		if !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%s: err = %v, want ErrInvalidInput", tc.name, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to say %q", tc.name, err, tc.want)
		}
		testutil.Check(t, tc.name+": permanent", true, IsPermanent(err))
		if err != nil && (strings.Contains(err.Error(), "NHI") || strings.Contains(err.Error(), in.PatientID) && in.PatientID != "") {
			t.Errorf("%s: error leaks the patient id: %v", tc.name, err)
		}
	}
	in := sampleInput()
	in.Notes, in.CreatedAt, in.Title = "  ", time.Time{}, ""
	raw, err := BuildMedia(in, DefaultIdentifierSystem)
	if err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{`"note"`, `"createdDateTime"`, `"creation"`, `"title"`} {
		if strings.Contains(string(raw), absent) {
			t.Errorf("%s present for empty input: %s", absent, raw)
		}
	}
}

// TestBuildMediaDataInPlace checks that writing the base64 into the
// marshalled document gives exactly what json.Marshal gives, even when the
// free-text fields spell the data key itself.
func TestBuildMediaDataInPlace(t *testing.T) {
	t.Parallel()
	in := sampleInput()
	in.Title = `"data":"" and "data":""`
	in.Notes = `{"content":{"data":""}}`
	in.Data = bytes.Repeat([]byte{0xff, 0xd8, 0x00, 0x7f, 0xfe}, 1001)
	got, err := BuildMedia(in, DefaultIdentifierSystem)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Content struct {
			Data  []byte `json:"data"` // json decodes base64 into []byte
			Title string `json:"title"`
		} `json:"content"`
		Note []struct {
			Text string `json:"text"`
		} `json:"note"`
	}
	if err := json.Unmarshal(got, &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if !bytes.Equal(doc.Content.Data, in.Data) || doc.Content.Title != in.Title ||
		len(doc.Note) != 1 || doc.Note[0].Text != in.Notes {
		t.Fatalf("round trip differs: title %q, notes %v, %d data bytes", doc.Content.Title, doc.Note, len(doc.Content.Data))
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, got); err != nil || !bytes.Equal(compact.Bytes(), got) {
		t.Fatalf("not compact JSON as json.Marshal writes it (err %v)", err)
	}
}
