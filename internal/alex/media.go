package alex

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/handoff-health/handoff/internal/blob"
)

// Code systems and extension URLs used in the Media we build.
const (
	SystemSNOMED    = "http://snomed.info/sct"
	SystemMediaType = "http://terminology.hl7.org/CodeSystem/media-type"

	// LateralityExtension carries laterality on Media.bodySite; see BuildMedia.
	LateralityExtension = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-laterality-qualifier"
)

// MediaInput is one image to file, with what the phone and the desktop
// said about it.
type MediaInput struct {
	FacilityID  string // HPI facility id, sent as mt-facilityid (not in the Media)
	PatientID   string // ALEX Patient id
	EncounterID string // ALEX Encounter id; empty or not a FHIR id: no Media.encounter
	ProviderID  string // ALEX Practitioner id of the GP; empty or not a FHIR id: no Media.operator
	SessionID   string // the capture session (server-minted UUID)
	ImageID     string // the image id the phone chose, unique within its session
	ContentType string // image/jpeg, image/png or image/heic
	Title       string
	Notes       string
	Laterality  string // left, right, bilateral, not_applicable or empty
	Data        []byte
	CreatedAt   time.Time // when the photo was taken; zero omits it
	BodySite    *Coding   // SNOMED CT body structure; system defaults to SNOMED
}

// Coding is a FHIR Coding as the phone and desktop send it.
type Coding struct {
	System  string `json:"system"`
	Code    string `json:"code"`
	Display string `json:"display"`
}

// laterality maps our values to SNOMED CT laterality qualifiers, with the
// word used in bodySite.text. not_applicable and empty mean none.
var laterality = map[string]struct{ code, display, word string }{
	"left":      {"7771000", "Left", "Left"},
	"right":     {"24028007", "Right", "Right"},
	"bilateral": {"51440002", "Right and left", "Bilateral"},
}

// fhirID is FHIR's id datatype. Image ids must fit it too: they become a
// file name in the outbox and a token in an If-None-Exist query, where
// anything beyond [A-Za-z0-9.-] would need escaping.
var fhirID = regexp.MustCompile(`^[A-Za-z0-9.-]{1,64}$`)

// The FHIR R4 shapes we emit, in the element order of the specification.
type (
	media struct {
		ResourceType    string           `json:"resourceType"`
		Identifier      []identifier     `json:"identifier"`
		Status          string           `json:"status"`
		Type            *codeableConcept `json:"type"`
		Subject         reference        `json:"subject"`
		Encounter       *reference       `json:"encounter,omitempty"`
		CreatedDateTime string           `json:"createdDateTime,omitempty"`
		Operator        *reference       `json:"operator,omitempty"`
		BodySite        *codeableConcept `json:"bodySite,omitempty"`
		Note            []annotation     `json:"note,omitempty"`
		Content         attachment       `json:"content"`
	}
	identifier struct {
		System string `json:"system"`
		Value  string `json:"value"`
	}
	codeableConcept struct {
		Extension []extension `json:"extension,omitempty"`
		Coding    []coding    `json:"coding,omitempty"`
		Text      string      `json:"text,omitempty"`
	}
	coding struct {
		System  string `json:"system"`
		Code    string `json:"code"`
		Display string `json:"display,omitempty"`
	}
	extension struct {
		URL                  string          `json:"url"`
		ValueCodeableConcept codeableConcept `json:"valueCodeableConcept"`
	}
	reference struct {
		Reference string `json:"reference"`
	}
	annotation struct {
		Text string `json:"text"`
	}
	attachment struct {
		ContentType string `json:"contentType"`
		Data        string `json:"data"`
		Size        int    `json:"size"`
		Title       string `json:"title,omitempty"`
		Creation    string `json:"creation,omitempty"`
	}
)

// IdentifierValue is the Media.identifier value of in: "<sessionId>.<imageId>".
//
// The phone chooses image ids, so an image id alone can collide across
// sessions and facilities; the session id is a random UUID the server
// minted, and the session's store keeps its image ids unique, so the pair
// is unique everywhere. It is also fixed for the image's life, so every
// retry of a commit sends the same identifier and the conditional create
// still finds the first filing. Deriving it needs no stored state (a minted
// id would have to be kept on the image from register on). '.' never occurs
// in a session id, so the value splits back unambiguously, and every
// character of it needs no escaping in If-None-Exist or a file name.
func IdentifierValue(in MediaInput) string { return in.SessionID + "." + in.ImageID }

// BuildMedia returns the FHIR R4 Media JSON for in, identified by
// identifierSystem|IdentifierValue(in).
//
// Laterality: R4 Media.bodySite is one CodeableConcept, and its codings must
// all mean the same thing, so a second "left" coding next to "forearm" would
// be wrong; core R4 has no laterality element or extension for it (the core
// "bodySite" extension is a Reference(BodyStructure) for resources without
// a body site, and R4 BodyStructure would need its own resource); and a
// post-coordinated SNOMED expression (forearm:272741003=7771000) is correct
// but few receivers parse it. So the body site coding stays exactly the
// pre-coordinated SNOMED code chosen on the phone, laterality is coded as
// the SNOMED qualifier (7771000 left, 24028007 right, 51440002 bilateral)
// in the published R4 laterality-qualifier extension (LateralityExtension,
// whose context includes CodeableConcept) on bodySite, and bodySite.text
// spells it out ("Left forearm") for readers that ignore extensions. With
// laterality but no body site, bodySite holds just the extension and text.
// bodySite.text is what a GP reads ("Left forearm"): SNOMED's "structure"
// wording is dropped from it (siteText), while coding.display keeps the
// term exactly as sent.
//
// Encounter and performer: Media.encounter is Encounter/{EncounterID} and
// Media.operator (R4's "the person who generated the image") is
// Practitioner/{ProviderID}, each only when the id is known and a valid
// FHIR id; an id that is not would make ALEX refuse the whole Media, and
// the photo matters more than the link. Whether ALEX UAT accepts either
// reference has not been verified.
func BuildMedia(in MediaInput, identifierSystem string) ([]byte, error) {
	if err := validateMedia(in); err != nil {
		return nil, err
	}
	if identifierSystem == "" {
		return nil, fmt.Errorf("alex: %w: identifier system is empty", ErrInvalidInput)
	}
	m := media{
		ResourceType: "Media",
		Identifier:   []identifier{{System: identifierSystem, Value: IdentifierValue(in)}},
		Status:       "completed",
		Type: &codeableConcept{Coding: []coding{
			{System: SystemMediaType, Code: "image", Display: "Image"},
		}},
		Subject:   reference{Reference: "Patient/" + in.PatientID},
		Encounter: optionalRef("Encounter", in.EncounterID),
		Operator:  optionalRef("Practitioner", in.ProviderID),
		BodySite:  bodySite(in.BodySite, in.Laterality),
		Content: attachment{
			ContentType: strings.ToLower(in.ContentType),
			// Data stays empty here; encodeMedia writes the base64 in place.
			Size:  len(in.Data),
			Title: in.Title,
		},
	}
	if !in.CreatedAt.IsZero() {
		m.CreatedDateTime = in.CreatedAt.UTC().Format(time.RFC3339)
		m.Content.Creation = m.CreatedDateTime
	}
	if strings.TrimSpace(in.Notes) != "" {
		m.Note = []annotation{{Text: in.Notes}}
	}
	var out []byte
	var err error
	blob.ImageWork(func() { out, err = encodeMedia(m, in.Data) })
	return out, err
}

// dataField is how json.Marshal writes an empty Media.content.data. No
// other bytes of the document can match it: a '"' inside any string value
// is escaped as \", and "data" is a key nowhere else.
var dataField = []byte(`"data":""`)

// encodeMedia marshals m (whose Content.Data is empty) with data's base64
// put into content.data: one buffer of the final size, written once. The
// base64 alphabet needs no JSON escaping, so running ~1.4 MB of it through
// json.Marshal's string encoder (and EncodeToString's copy before that)
// only cost CPU and garbage on the commit path.
func encodeMedia(m media, data []byte) ([]byte, error) {
	doc, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	i := bytes.Index(doc, dataField)
	if i < 0 {
		return nil, fmt.Errorf("alex: Media JSON has no content.data field")
	}
	at := i + len(dataField) - 1 // the closing quote of the empty value
	n := base64.StdEncoding.EncodedLen(len(data))
	out := make([]byte, len(doc)+n)
	copy(out, doc[:at])
	base64.StdEncoding.Encode(out[at:at+n], data)
	copy(out[at+n:], doc[at:])
	return out, nil
}

// validateMedia checks in without echoing its values: they may be PHI.
func validateMedia(in MediaInput) error {
	var problem string
	switch {
	case in.PatientID == "":
		problem = "patient id is missing"
	case !fhirID.MatchString(in.PatientID):
		problem = "patient id is not a valid FHIR id"
	case in.SessionID == "":
		problem = "session id is missing"
	case !fhirID.MatchString(in.SessionID) || strings.Contains(in.SessionID, "."):
		problem = "session id must be 1-64 letters, digits or '-'"
	case in.ImageID == "":
		problem = "image id is missing"
	case !fhirID.MatchString(in.ImageID):
		problem = "image id must be 1-64 letters, digits, '-' or '.'"
	case !blob.IsImageType(strings.ToLower(in.ContentType)):
		problem = "content type must be image/jpeg, image/png or image/heic"
	case len(in.Data) == 0:
		problem = "image data is empty"
	case in.BodySite != nil && strings.TrimSpace(in.BodySite.Code) == "":
		problem = "body site has no code"
	case in.Laterality != "" && in.Laterality != "not_applicable" &&
		laterality[in.Laterality].code == "":
		problem = fmt.Sprintf("laterality %q is not left, right, bilateral or not_applicable", in.Laterality)
	default:
		return nil
	}
	return fmt.Errorf("alex: %w: %s", ErrInvalidInput, problem)
}

// bodySite builds Media.bodySite; see BuildMedia for the laterality choice.
func bodySite(site *Coding, side string) *codeableConcept {
	lat, hasSide := laterality[side]
	if site == nil && !hasSide {
		return nil
	}
	cc := &codeableConcept{}
	if site != nil {
		system := site.System
		if system == "" {
			system = SystemSNOMED
		}
		cc.Coding = []coding{{System: system, Code: site.Code, Display: site.Display}}
		cc.Text = siteText(site.Display)
	}
	if hasSide {
		cc.Extension = []extension{{
			URL: LateralityExtension,
			ValueCodeableConcept: codeableConcept{Coding: []coding{
				{System: SystemSNOMED, Code: lat.code, Display: lat.display},
			}},
		}}
		cc.Text = sideText(lat.word, cc.Text)
	}
	return cc
}

// optionalRef is a reference to resourceType/id, or nil when id is empty
// or not a valid FHIR id.
func optionalRef(resourceType, id string) *reference {
	if !fhirID.MatchString(id) {
		return nil
	}
	return &reference{Reference: resourceType + "/" + id}
}

// siteText is a SNOMED CT body-structure term as a GP reads it: the
// preferred terms say "Forearm structure", "Structure of back of trunk"
// "Entire heel" or "Bone structure of sacrum", which no one says at the
// bedside. The text keeps
// everything else, so it never says less than the term.
func siteText(display string) string {
	t := strings.TrimSpace(display)
	lower := strings.ToLower(t)
	for _, prefix := range []string{"bone structure of ", "structure of ", "entire "} {
		if strings.HasPrefix(lower, prefix) && len(t) > len(prefix) {
			t, lower = t[len(prefix):], lower[len(prefix):]
		}
	}
	if strings.HasSuffix(lower, " structure") && len(t) > len(" structure") {
		t = t[:len(t)-len(" structure")]
	}
	if t == "" {
		return ""
	}
	first, n := utf8.DecodeRuneInString(t)
	return string(unicode.ToUpper(first)) + t[n:]
}

// sideText prefixes a body site's display with its side ("Left forearm"),
// unless the display already names it (a pre-coordinated "Left hand").
func sideText(word, display string) string {
	if display == "" {
		return word
	}
	words := strings.FieldsFunc(display, func(r rune) bool { return !unicode.IsLetter(r) })
	for _, w := range words {
		if strings.EqualFold(w, word) {
			return display
		}
	}
	first, n := utf8.DecodeRuneInString(display)
	next, _ := utf8.DecodeRuneInString(display[n:])
	if unicode.IsUpper(first) && unicode.IsLower(next) {
		display = string(unicode.ToLower(first)) + display[n:]
	}
	return word + " " + display
}
