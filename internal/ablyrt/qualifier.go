package ablyrt

import (
	"encoding/base64"
	"net/url"
	"strings"

	"github.com/handoff-health/handoff/ablyproto"
)

// Channel qualifiers: an attach may name "[filter=<base64 expr>]name",
// "[?param=v]name" or "[filter=<base64 expr>?param=v]name" (ably-go's
// GetDerived). The hub channel is the base name; the filter belongs to
// the attachment and selects which MESSAGEs it delivers (live and
// replay). Params in the qualifier are accepted and, apart from rewind,
// not acted on. Any other qualifier ([meta], …) is an invalid name.

// qualified is an Ably channel name split into its base and qualifier.
type qualified struct {
	base   string
	filter *ablyproto.Filter // nil: every message
	params url.Values
}

// parseQualified splits name; ok is false for a qualifier handoff does not
// support or a filter that does not decode or parse (bad says why: it is
// the caller's 40010 text).
func parseQualified(name string) (q qualified, bad string, ok bool) {
	if !strings.HasPrefix(name, "[") {
		return qualified{base: name}, "", true
	}
	inner, base, found := strings.Cut(name[1:], "]")
	if !found || base == "" {
		return q, invalidChannelText, false
	}
	q.base = base
	spec, query, hasQuery := strings.Cut(inner, "?")
	if hasQuery {
		v, err := url.ParseQuery(query)
		if err != nil {
			return q, "invalid channel params in the channel qualifier", false
		}
		q.params = v
	}
	switch {
	case spec == "" && hasQuery:
	case strings.HasPrefix(spec, "filter="):
		raw, err := base64.StdEncoding.DecodeString(spec[len("filter="):])
		if err != nil {
			return q, "invalid filter: not base64", false
		}
		f, err := ablyproto.ParseFilter(string(raw))
		if err != nil {
			return q, err.Error(), false
		}
		q.filter = f
	default:
		return q, "unsupported channel qualifier: handoff supports [filter=…] and [?params] only", false
	}
	return q, "", true
}
