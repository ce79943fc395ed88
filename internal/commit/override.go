package commit

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/handoff-health/handoff/internal/httpx"
	"github.com/handoff-health/handoff/internal/session"
)

// MetadataOverride is the desktop's last edit of an image's metadata, sent
// with the commit. It is a JSON merge patch, like the capture API's
// PATCH .../images/{imageId}: an absent field is unchanged, null clears it,
// a value replaces it. So a desktop that only edited the notes does not
// wipe the body site the phone chose.
type MetadataOverride struct {
	Laterality *string           // nil: unchanged; "": cleared
	BodySite   *session.BodySite // nil: unchanged; zero: cleared
	Notes      *string           // nil: unchanged; "": cleared
}

// UnmarshalJSON decodes the merge patch strictly: unknown fields and wrong
// shapes are refused, as everywhere in the API.
func (o *MetadataOverride) UnmarshalJSON(b []byte) error {
	var raw struct {
		Laterality json.RawMessage `json:"laterality"`
		BodySite   json.RawMessage `json:"bodySite"`
		Notes      json.RawMessage `json:"notes"`
	}
	if err := strictDecode(b, &raw); err != nil {
		return httpx.Errorf(http.StatusBadRequest, "invalid_field", "each metadata entry may only have laterality, bodySite and notes")
	}
	*o = MetadataOverride{}
	fields := []struct {
		name string
		raw  json.RawMessage
		set  func() any // allocates the field and returns where to decode
	}{
		{"laterality", raw.Laterality, func() any { o.Laterality = new(string); return o.Laterality }},
		{"bodySite", raw.BodySite, func() any { o.BodySite = new(session.BodySite); return o.BodySite }},
		{"notes", raw.Notes, func() any { o.Notes = new(string); return o.Notes }},
	}
	for _, f := range fields {
		switch {
		case f.raw == nil:
		case bytes.Equal(f.raw, []byte("null")):
			f.set() // cleared: the zero value
		default:
			if err := strictDecode(f.raw, f.set()); err != nil {
				return httpx.Errorf(http.StatusBadRequest, "invalid_field", "metadata field %s has the wrong shape", f.name)
			}
		}
	}
	return nil
}

func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// MarshalJSON writes the override back as a merge patch, so a Request
// round-trips (tests, Go clients).
func (o MetadataOverride) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	if o.Laterality != nil {
		m["laterality"] = *o.Laterality
	}
	if o.BodySite != nil {
		m["bodySite"] = *o.BodySite
		if *o.BodySite == (session.BodySite{}) {
			m["bodySite"] = nil
		}
	}
	if o.Notes != nil {
		m["notes"] = *o.Notes
	}
	return json.Marshal(m)
}

// apply merges o into m.
func (o MetadataOverride) apply(m *session.Metadata) {
	if o.Laterality != nil {
		m.Laterality = *o.Laterality
	}
	if o.BodySite != nil {
		m.BodySite = *o.BodySite
	}
	if o.Notes != nil {
		m.Notes = *o.Notes
	}
}

// check validates the fields o sets. Fields are validated independently,
// and the stored metadata is valid, so the merge of both is valid too.
func (o MetadataOverride) check() error {
	var m session.Metadata
	o.apply(&m)
	if err := m.Validate(); err != nil {
		// A *session.InvalidError: it names the field and rule, not the value.
		return httpx.Errorf(http.StatusBadRequest, "invalid_field", "%s", err.Error())
	}
	return nil
}
