package publish

import (
	"net/http/httptest"
	"testing"
)

// TestBodyLabels: the Content-Types a publish body may carry, and which
// decoder each selects (the SDKs' exact labels skip parsing; any other
// label is parsed).
func TestBodyLabels(t *testing.T) {
	t.Parallel()
	for ct, want := range map[string]struct{ json, msgpack bool }{
		"":                                {true, false},
		"application/json":                {true, false},
		"application/json; charset=utf-8": {true, false},
		"APPLICATION/JSON":                {true, false},
		"application/x-msgpack":           {false, true},
		"Application/X-Msgpack; q=1":      {false, true},
		"text/plain":                      {false, false},
		"application/jsonx":               {false, false},
		"application/x-msgpack;;":         {false, false},
	} {
		r := httptest.NewRequest("POST", "/channels/x/messages", nil)
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		if got := jsonBody(r); got != want.json {
			t.Errorf("jsonBody(%q) = %v, want %v", ct, got, want.json)
		}
		if got := msgpackBody(r); got != want.msgpack {
			t.Errorf("msgpackBody(%q) = %v, want %v", ct, got, want.msgpack)
		}
	}
}
