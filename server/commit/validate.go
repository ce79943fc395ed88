package commit

import (
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/handoff-health/handoff/server/capture"
	"github.com/handoff-health/handoff/server/httpx"
)

// Metadata limits, the same as the capture API's: an override must be
// acceptable wherever the phone's metadata is. capture keeps its checks
// unexported, so they are mirrored here; keep the two in step.
const (
	maxNotesLen   = 2000
	maxSystemLen  = 256
	maxCodeLen    = 64
	maxCodingText = 256
)

// lateralities are the values alex.BuildMedia codes.
var lateralities = map[string]bool{"left": true, "right": true, "bilateral": true, "not_applicable": true}

func invalid(format string, args ...any) error {
	return httpx.Errorf(http.StatusBadRequest, "invalid_field", format, args...)
}

// checkMetadata validates an override. Messages name the field and the rule,
// never the value: a value may be PHI.
func checkMetadata(m capture.Metadata) error {
	if m.Laterality != "" && !lateralities[m.Laterality] {
		return invalid("metadata.laterality must be left, right, bilateral or not_applicable")
	}
	if err := checkText("metadata.notes", m.Notes, maxNotesLen, true); err != nil {
		return err
	}
	return checkBodySite(m.BodySite)
}

func checkBodySite(b capture.BodySite) error {
	if b == (capture.BodySite{}) {
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
