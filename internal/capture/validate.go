package capture

import (
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/handoff-health/handoff/internal/httpx"
)

// Input limits. Messages name the field and the rule, never the value: a
// value may be PHI and error messages may end up in logs.
const (
	maxIDLen      = 128 // ALEX and host ids are UUIDs or short numbers
	maxDisplayLen = 64  // initials or a short name for the phone to confirm
	maxNotesLen   = 2000
	maxSystemLen  = 256
	maxCodeLen    = 64
	maxCodingText = 256
)

// Lateralities accepted in image metadata (FHIR Media laterality, coded by
// the committer).
var lateralities = map[string]bool{"left": true, "right": true, "bilateral": true, "not_applicable": true}

// imageTypes are the content types a phone may upload: what cameras produce,
// what blob.SniffImage recognises and what ALEX accepts.
var imageTypes = map[string]bool{"image/jpeg": true, "image/png": true, "image/heic": true}

func invalid(format string, args ...any) error {
	return httpx.Errorf(http.StatusBadRequest, "invalid_field", format, args...)
}

// checkID accepts 1..maxIDLen characters of [A-Za-z0-9._:-], which keeps
// ids safe in keys, URLs and FHIR references.
func checkID(field, v string, required bool) error {
	if v == "" {
		if required {
			return invalid("%s is required", field)
		}
		return nil
	}
	if len(v) > maxIDLen {
		return invalid("%s must be at most %d characters", field, maxIDLen)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return invalid("%s may contain only letters, digits and . _ : -", field)
		}
	}
	return nil
}

// normalizeNHI upper-cases an NHI number and checks its shape: three letters
// (never I or O) then four digits (old format) or two digits and two letters
// (new format, from 2025). The check digit is not verified: test patients in
// Medtech use numbers that fail it, and ALEX checks real ones.
func normalizeNHI(v string) (string, error) {
	v = strings.ToUpper(strings.TrimSpace(v))
	if v == "" {
		return "", nil
	}
	ok := len(v) == 7 && nhiLetter(v[0]) && nhiLetter(v[1]) && nhiLetter(v[2]) && isDigit(v[3]) && isDigit(v[4]) &&
		(isDigit(v[5]) && isDigit(v[6]) || nhiLetter(v[5]) && nhiLetter(v[6]))
	if !ok {
		return "", invalid("patientNhi must be an NHI number: AAA9999 or AAA99AA")
	}
	return v, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func nhiLetter(c byte) bool { return c >= 'A' && c <= 'Z' && c != 'I' && c != 'O' }

// checkText accepts valid UTF-8 of at most max characters without control
// characters (newlines and tabs only where multiline is true).
func checkText(field, v string, max int, multiline bool) error {
	if !utf8.ValidString(v) {
		return invalid("%s must be valid UTF-8", field)
	}
	if utf8.RuneCountInString(v) > max {
		return invalid("%s must be at most %d characters", field, max)
	}
	for _, r := range v {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\r' || r == '\t')) {
			return invalid("%s must not contain control characters", field)
		}
	}
	return nil
}

// checkImageID accepts a UUID in canonical lower-case form only, so one image
// has exactly one key.
func checkImageID(v string) error {
	u, err := uuid.Parse(v)
	if err != nil || u.String() != v {
		return invalid("imageId must be a lower-case UUID")
	}
	return nil
}

// Validate checks what the GP says about an image: the phone's metadata,
// the desktop's edits and the committer's overrides all pass through it.
// Messages name the field and the rule, never the value (it may be PHI).
func (m Metadata) Validate() error {
	if m.Laterality != "" && !lateralities[m.Laterality] {
		return invalid("metadata.laterality must be left, right, bilateral or not_applicable")
	}
	if err := checkText("metadata.notes", m.Notes, maxNotesLen, true); err != nil {
		return err
	}
	return checkBodySite(m.BodySite)
}

func checkBodySite(b BodySite) error {
	if b == (BodySite{}) {
		return nil
	}
	if u, err := url.Parse(b.System); err != nil || !u.IsAbs() || len(b.System) > maxSystemLen {
		return invalid("metadata.bodySite.system must be an absolute URI of at most %d characters", maxSystemLen)
	}
	if b.Code == "" || len(b.Code) > maxCodeLen || strings.IndexFunc(b.Code, func(r rune) bool {
		return !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.' || r == '-' || r == '_'))
	}) >= 0 {
		return invalid("metadata.bodySite.code must be 1 to %d letters, digits or . - _", maxCodeLen)
	}
	return checkText("metadata.bodySite.display", b.Display, maxCodingText, false)
}
