package capture

import (
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/handoff-health/handoff/internal/httpx"
)

// Input limits of request fields. Messages name the field and the rule,
// never the value: a value may be PHI and error messages may end up in logs.
// Image metadata follows the model's own rules (session.Metadata.Validate).
const (
	maxIDLen      = 128 // ALEX and host ids are UUIDs or short numbers
	maxDisplayLen = 64  // initials or a short name for the phone to confirm
)

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

// checkDOB accepts an optional date of birth as YYYY-MM-DD: a real
// calendar date, not after today (UTC, so a birth today in New Zealand may
// still be tomorrow's date there; a day of slack covers it) and not before
// 1880.
func checkDOB(v string, now time.Time) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil
	}
	d, err := time.Parse(time.DateOnly, v)
	if err != nil || d.Format(time.DateOnly) != v {
		return "", invalid("patientDob must be a date as YYYY-MM-DD")
	}
	if d.After(now.Add(24*time.Hour)) || d.Year() < 1880 {
		return "", invalid("patientDob must be a date of birth in the past")
	}
	return v, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func nhiLetter(c byte) bool { return c >= 'A' && c <= 'Z' && c != 'I' && c != 'O' }

// checkImageID accepts a UUID in canonical lower-case form only, so one image
// has exactly one key.
func checkImageID(v string) error {
	u, err := uuid.Parse(v)
	if err != nil || u.String() != v {
		return invalid("imageId must be a lower-case UUID")
	}
	return nil
}
