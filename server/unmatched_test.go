package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/handoff-health/handoff/internal/testutil"
)

func TestJSONUnmatched(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/things", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusCreated) })
	mux.HandleFunc("POST /channels/{channel}/messages", func(w http.ResponseWriter, _ *http.Request) {})
	mux.HandleFunc("GET /page", func(w http.ResponseWriter, _ *http.Request) {})
	h := jsonUnmatched(mux)

	type reply struct {
		Status int
		JSON   bool
		Code   string
		Allow  string
	}
	cases := []struct {
		method, path string
		want         reply
	}{
		{"GET", "/api/nope", reply{http.StatusNotFound, true, "not_found", ""}},
		{"PUT", "/api/things", reply{http.StatusMethodNotAllowed, true, "method_not_allowed", "POST"}},
		{"DELETE", "/channels/x/messages", reply{http.StatusMethodNotAllowed, true, "method_not_allowed", "POST"}},
		{"POST", "/api/things", reply{http.StatusCreated, false, "", ""}},
		{"GET", "/nope", reply{http.StatusNotFound, false, "", ""}}, // not an API path: the mux's plain 404
		{"POST", "/page", reply{http.StatusMethodNotAllowed, false, "", "GET, HEAD"}},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			var body struct {
				Error struct{ Code string } `json:"error"`
			}
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			got := reply{
				Status: rec.Code,
				JSON:   strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json"),
				Code:   body.Error.Code,
				Allow:  rec.Header().Get("Allow"),
			}
			testutil.Equal(t, "reply", tc.want, got)
		})
	}
}
