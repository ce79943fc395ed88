package session

import (
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Metadata limits. Messages name the field and the rule, never the value:
// a value may be PHI and error messages may end up in logs.
const (
	// MaxNotesLen bounds an image's notes, in characters: a few paragraphs.
	MaxNotesLen   = 2000
	maxSystemLen  = 256
	maxCodeLen    = 64
	maxCodingText = 256
)

// lateralities accepted in image metadata (FHIR Media laterality, coded by
// the committer).
var lateralities = map[string]bool{"left": true, "right": true, "bilateral": true, "not_applicable": true}

// InvalidError is a value that breaks a rule of the model. Its text names
// the field and the rule, never the value (which may be PHI), so an API may
// show it to its client as it is.
type InvalidError struct{ msg string }

func (e *InvalidError) Error() string { return e.msg }

func invalid(format string, args ...any) error {
	return &InvalidError{fmt.Sprintf(format, args...)}
}

// Validate checks what the GP says about an image: the phone's metadata,
// the desktop's edits and the committer's overrides all pass through it.
// Errors are *InvalidError.
func (m Metadata) Validate() error {
	if m.Laterality != "" && !lateralities[m.Laterality] {
		return invalid("metadata.laterality must be left, right, bilateral or not_applicable")
	}
	if err := CheckText("metadata.notes", m.Notes, MaxNotesLen, true); err != nil {
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
	return CheckText("metadata.bodySite.display", b.Display, maxCodingText, false)
}

// CheckText is the rule for text a person typed into a session (notes, a
// patient's display name): valid UTF-8 of at most max characters without
// control characters (newlines and tabs only where multiline is true).
// Errors are *InvalidError naming field.
func CheckText(field, v string, max int, multiline bool) error {
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
