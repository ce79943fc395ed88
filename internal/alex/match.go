package alex

import (
	"encoding/json"
	"fmt"
	"io"
)

// matchedMedia is the part of a Media read to check a conditional-create
// match: is it the Media this image would have become?
type matchedMedia struct {
	ResourceType string       `json:"resourceType"`
	ID           string       `json:"id"`
	Identifier   []identifier `json:"identifier"`
	Subject      *reference   `json:"subject"`
}

// expected is what a Media filed for one image must carry.
type expected struct {
	system, value string
	subject       string // "Patient/<id>"
}

func expect(in MediaInput, system string) expected {
	return expected{system: system, value: IdentifierValue(in), subject: "Patient/" + in.PatientID}
}

// check refuses a matched Media that is not in's: a 200 to a conditional
// create only says some Media has the identifier, and filing "succeeded"
// onto another patient's record would be silent data loss for this one.
// The errors name no patient.
func (e expected) check(m matchedMedia) error {
	if m.ResourceType != "Media" || m.ID == "" {
		return fmt.Errorf("%w: the matched resource is not a Media with an id", ErrIdentifierConflict)
	}
	if m.Subject == nil || m.Subject.Reference != e.subject {
		return fmt.Errorf("%w: it belongs to another patient", ErrIdentifierConflict)
	}
	for _, id := range m.Identifier {
		if id.System == e.system && id.Value == e.value {
			return nil
		}
	}
	return fmt.Errorf("%w: it does not carry this image's identifier", ErrIdentifierConflict)
}

// decodeMatched reads a Media (or anything else) from r, at most limit bytes.
func decodeMatched(r io.Reader, limit int64) (matchedMedia, bool) {
	var m matchedMedia
	err := json.NewDecoder(io.LimitReader(r, limit)).Decode(&m)
	return m, err == nil && m.ResourceType != ""
}
