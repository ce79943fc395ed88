package alextest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Media is a FHIR R4 Media as the fake decodes it. It lists every R4
// element, so decoding with unknown fields disallowed rejects anything R4
// does not define, at any depth, as a validating R4 server does. Elements
// the fake never inspects stay raw.
type Media struct {
	ResourceType      string            `json:"resourceType"`
	ID                string            `json:"id,omitempty"`
	Meta              json.RawMessage   `json:"meta,omitempty"`
	ImplicitRules     string            `json:"implicitRules,omitempty"`
	Language          string            `json:"language,omitempty"`
	Text              json.RawMessage   `json:"text,omitempty"`
	Contained         []json.RawMessage `json:"contained,omitempty"`
	Extension         []Extension       `json:"extension,omitempty"`
	ModifierExtension []Extension       `json:"modifierExtension,omitempty"`
	Identifier        []Identifier      `json:"identifier,omitempty"`
	BasedOn           []Reference       `json:"basedOn,omitempty"`
	PartOf            []Reference       `json:"partOf,omitempty"`
	Status            string            `json:"status"`
	Type              *CodeableConcept  `json:"type,omitempty"`
	Modality          *CodeableConcept  `json:"modality,omitempty"`
	View              *CodeableConcept  `json:"view,omitempty"`
	Subject           *Reference        `json:"subject,omitempty"`
	Encounter         *Reference        `json:"encounter,omitempty"`
	CreatedDateTime   string            `json:"createdDateTime,omitempty"`
	CreatedPeriod     json.RawMessage   `json:"createdPeriod,omitempty"`
	Issued            string            `json:"issued,omitempty"`
	Operator          *Reference        `json:"operator,omitempty"`
	ReasonCode        []CodeableConcept `json:"reasonCode,omitempty"`
	BodySite          *CodeableConcept  `json:"bodySite,omitempty"`
	DeviceName        string            `json:"deviceName,omitempty"`
	Device            *Reference        `json:"device,omitempty"`
	Height            *int              `json:"height,omitempty"`
	Width             *int              `json:"width,omitempty"`
	Frames            *int              `json:"frames,omitempty"`
	Duration          *float64          `json:"duration,omitempty"`
	Content           *Attachment       `json:"content,omitempty"`
	Note              []Annotation      `json:"note,omitempty"`
}

// Extension keeps url and its value[x] (whatever its type) raw.
type Extension map[string]json.RawMessage

// Identifier is an R4 Identifier.
type Identifier struct {
	ID        string           `json:"id,omitempty"`
	Extension []Extension      `json:"extension,omitempty"`
	Use       string           `json:"use,omitempty"`
	Type      *CodeableConcept `json:"type,omitempty"`
	System    string           `json:"system,omitempty"`
	Value     string           `json:"value,omitempty"`
	Period    json.RawMessage  `json:"period,omitempty"`
	Assigner  *Reference       `json:"assigner,omitempty"`
}

// CodeableConcept is an R4 CodeableConcept.
type CodeableConcept struct {
	ID        string      `json:"id,omitempty"`
	Extension []Extension `json:"extension,omitempty"`
	Coding    []Coding    `json:"coding,omitempty"`
	Text      string      `json:"text,omitempty"`
}

// Coding is an R4 Coding.
type Coding struct {
	ID           string      `json:"id,omitempty"`
	Extension    []Extension `json:"extension,omitempty"`
	System       string      `json:"system,omitempty"`
	Version      string      `json:"version,omitempty"`
	Code         string      `json:"code,omitempty"`
	Display      string      `json:"display,omitempty"`
	UserSelected *bool       `json:"userSelected,omitempty"`
}

// Reference is an R4 Reference.
type Reference struct {
	ID         string          `json:"id,omitempty"`
	Extension  []Extension     `json:"extension,omitempty"`
	Reference  string          `json:"reference,omitempty"`
	Type       string          `json:"type,omitempty"`
	Identifier json.RawMessage `json:"identifier,omitempty"`
	Display    string          `json:"display,omitempty"`
}

// Attachment is an R4 Attachment.
type Attachment struct {
	ID          string      `json:"id,omitempty"`
	Extension   []Extension `json:"extension,omitempty"`
	ContentType string      `json:"contentType,omitempty"`
	Language    string      `json:"language,omitempty"`
	Data        string      `json:"data,omitempty"`
	URL         string      `json:"url,omitempty"`
	Size        *int        `json:"size,omitempty"`
	Hash        string      `json:"hash,omitempty"`
	Title       string      `json:"title,omitempty"`
	Creation    string      `json:"creation,omitempty"`
}

// Annotation is an R4 Annotation.
type Annotation struct {
	ID              string      `json:"id,omitempty"`
	Extension       []Extension `json:"extension,omitempty"`
	AuthorReference *Reference  `json:"authorReference,omitempty"`
	AuthorString    string      `json:"authorString,omitempty"`
	Time            string      `json:"time,omitempty"`
	Text            string      `json:"text"`
}

// eventStatus is R4's required EventStatus value set for Media.status.
var eventStatus = map[string]bool{"preparation": true, "in-progress": true, "not-done": true,
	"on-hold": true, "stopped": true, "completed": true, "entered-in-error": true, "unknown": true}

var (
	patientRef   = regexp.MustCompile(`^Patient/[A-Za-z0-9.-]{1,64}$`)
	encounterRef = regexp.MustCompile(`^Encounter/[A-Za-z0-9.-]{1,64}$`)
	// operatorRef: R4 Media.operator is Reference(Practitioner |
	// PractitionerRole | Organization | CareTeam | Patient | Device |
	// RelatedPerson).
	operatorRef = regexp.MustCompile(`^(Practitioner|PractitionerRole|Organization|CareTeam|Patient|Device|RelatedPerson)/[A-Za-z0-9.-]{1,64}$`)
)

// invalid is a rejected Media: the OperationOutcome issue code and text.
type invalid struct{ code, text string }

func (e *invalid) Error() string { return e.text }

// decodeMedia parses and validates a Media body as a strict R4 server
// would, returning the resource and its decoded content.data.
func decodeMedia(body []byte) (*Media, []byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var m Media
	if err := dec.Decode(&m); err != nil {
		return nil, nil, &invalid{"structure", "Unable to parse Media: " + err.Error()}
	}
	if dec.More() {
		return nil, nil, &invalid{"structure", "Unexpected content after the resource"}
	}
	if err := checkMedia(&m); err != nil {
		return nil, nil, err
	}
	data, err := base64.StdEncoding.DecodeString(m.Content.Data)
	if err != nil || len(data) == 0 {
		return nil, nil, &invalid{"value", "Media.content.data is not valid non-empty base64"}
	}
	if m.Content.Size != nil && *m.Content.Size != len(data) {
		return nil, nil, &invalid{"value", "Media.content.size does not match the data"}
	}
	return &m, data, nil
}

func checkMedia(m *Media) error {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	if m.ResourceType != "Media" {
		return &invalid{"invalid", fmt.Sprintf("Expected resourceType Media, got %q", m.ResourceType)}
	}
	if !hasIdentifierValue(m.Identifier) {
		return &invalid{"required", "The mandatory Identifier.value field is missing"}
	}
	if !eventStatus[m.Status] {
		bad("Media.status %q is not in the EventStatus value set", m.Status)
	}
	if m.Subject == nil || !patientRef.MatchString(m.Subject.Reference) {
		bad("Media.subject.reference must be Patient/<id>")
	}
	if m.Encounter != nil && !encounterRef.MatchString(m.Encounter.Reference) {
		bad("Media.encounter.reference must be Encounter/<id>")
	}
	if m.Operator != nil && !operatorRef.MatchString(m.Operator.Reference) {
		bad("Media.operator.reference must be Practitioner/<id> or another R4 operator type")
	}
	if m.Content == nil || m.Content.ContentType == "" {
		bad("Media.content.contentType is required (att-1)")
	}
	if m.Type != nil && !validCodings(m.Type, "http://terminology.hl7.org/CodeSystem/media-type",
		map[string]bool{"image": true, "video": true, "audio": true}) {
		bad("Media.type coding is invalid")
	}
	if m.BodySite != nil && !validCodings(m.BodySite, "", nil) {
		bad("Media.bodySite coding needs a system and a code")
	}
	if m.CreatedDateTime != "" && !validDateTime(m.CreatedDateTime) {
		bad("Media.createdDateTime is not a FHIR dateTime")
	}
	for _, n := range m.Note {
		if strings.TrimSpace(n.Text) == "" {
			bad("Media.note.text is required")
		}
	}
	if len(problems) > 0 {
		return &invalid{"invalid", strings.Join(problems, "; ")}
	}
	return nil
}

func hasIdentifierValue(ids []Identifier) bool {
	for _, id := range ids {
		if strings.TrimSpace(id.Value) != "" {
			return true
		}
	}
	return false
}

// validCodings checks each coding has system and code, and that codes of
// system (if given) come from codes.
func validCodings(cc *CodeableConcept, system string, codes map[string]bool) bool {
	if len(cc.Coding) == 0 && cc.Text == "" && len(cc.Extension) == 0 {
		return false // ele-1: an element must have a value or children
	}
	for _, c := range cc.Coding {
		if c.System == "" || c.Code == "" || (c.System == system && !codes[c.Code]) {
			return false
		}
	}
	for _, e := range cc.Extension {
		if len(e["url"]) == 0 {
			return false
		}
	}
	return true
}

func validDateTime(s string) bool {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02", "2006-01", "2006"} {
		if _, err := time.Parse(layout, s); err == nil {
			return true
		}
	}
	return false
}
