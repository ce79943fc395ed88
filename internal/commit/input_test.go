package commit

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/session"
	"github.com/handoff-health/handoff/internal/testutil"
)

// Every bad request gets a clear 4xx, sends nothing to ALEX, publishes
// nothing and leaves the session exactly as it was.
func TestCommitBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	sd := e.seed(2)
	empty := e.seed(0)
	img := sd.images[0].ID
	other, err := auth.NewVerifier([]byte("another-secret-0123456789abcdefghij"))
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := other.Issue(auth.Claims{Facility: facility, Provider: provider, Expires: time.Now().Add(time.Hour)})
	body := func(s string) string { return strings.ReplaceAll(s, "SID", sd.id) }

	cases := []struct {
		name   string
		jwt    string
		body   string
		status int
		code   string
	}{
		{"no token", "-", body(`{"sessionId":"SID"}`), 401, "unauthorized"},
		{"forged token", forged, body(`{"sessionId":"SID"}`), 401, "invalid_token"},
		{"other facility", e.token("OTHER-FAC"), body(`{"sessionId":"SID"}`), 404, "session_not_found"},
		{"unknown session", "", `{"sessionId":"` + uuid.NewString() + `"}`, 404, "session_not_found"},
		{"malformed session id", "", `{"sessionId":"../etc"}`, 404, "session_not_found"},
		{"missing session id", "", `{}`, 400, "invalid_field"},
		{"no images", "", `{"sessionId":"` + empty.id + `"}`, 422, "no_images"},
		{"unknown image", "", body(`{"sessionId":"SID","imageIds":["` + img + `","` + uuid.NewString() + `"]}`), 404, "image_not_found"},
		{"metadata for unknown image", "", body(`{"sessionId":"SID","metadata":{"` + uuid.NewString() + `":{"notes":"x"}}}`), 404, "image_not_found"},
		{"metadata for unselected image", "", body(`{"sessionId":"SID","imageIds":["` + sd.images[1].ID + `"],"metadata":{"` + img + `":{"notes":"x"}}}`), 400, "invalid_field"},
		{"bad laterality", "", body(`{"sessionId":"SID","metadata":{"` + img + `":{"laterality":"up"}}}`), 400, "invalid_field"},
		{"bad body site", "", body(`{"sessionId":"SID","metadata":{"` + img + `":{"bodySite":{"system":"snomed","code":"1"}}}}`), 400, "invalid_field"},
		{"unknown metadata field", "", body(`{"sessionId":"SID","metadata":{"` + img + `":{"colour":"red"}}}`), 400, "invalid_field"},
		{"metadata wrong shape", "", body(`{"sessionId":"SID","metadata":{"` + img + `":{"notes":7}}}`), 400, "invalid_field"},
		{"unknown field", "", body(`{"sessionId":"SID","force":true}`), 400, "unknown_field"},
		{"malformed JSON", "", body(`{"sessionId":"SID"`), 400, "invalid_json"},
		{"trailing data", "", body(`{"sessionId":"SID"} {}`), 400, "invalid_json"},
		{"oversize", "", body(`{"sessionId":"SID","imageIds":["` + strings.Repeat("a", maxBody) + `"]}`), 413, "body_too_large"},
	}
	before := e.session(sd.id)
	for _, tc := range cases {
		jwt := tc.jwt
		switch jwt {
		case "":
			jwt = e.jwt
		case "-":
			jwt = ""
		}
		status, out := e.postAs(jwt, tc.body)
		var got struct{ Error ErrorInfo }
		_ = json.Unmarshal(out, &got)
		okStatus := testutil.Check(t, tc.name+": status", tc.status, status)
		okCode := testutil.Check(t, tc.name+": error code", tc.code, got.Error.Code)
		if got.Error.Message == "" {
			t.Errorf("%s: error without a message", tc.name)
		}
		if !okStatus || !okCode {
			t.Logf("%s: reply %s", tc.name, out)
		}
	}
	testutil.Check(t, "session after rejected requests", before, e.session(sd.id))
	if n := e.fake.MediaRequests() + e.fake.TokenRequests(); n != 0 {
		t.Errorf("%d calls to ALEX", n)
	}
	if evs := e.events(sd.id); len(evs) != 0 {
		t.Errorf("events published: %v", eventTypes(evs))
	}
	for _, img := range sd.images {
		if e.read(img.Key) == nil {
			t.Errorf("blob %s deleted", img.ID)
		}
	}
	lines := e.auditLines()
	if len(lines) != len(cases) {
		t.Errorf("%d audit lines for %d requests", len(lines), len(cases))
	}
	for i, l := range lines {
		testutil.Check(t, fmt.Sprintf("audit line %d: result", i), any("rejected"), l["result"])
		if l["code"] == nil {
			t.Errorf("audit line %d has no code", i)
		}
	}
	e.assertNoPHI(forged)
}

// The unauthenticated reply says how to authenticate.
func TestCommitUnauthorizedHeader(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/api/medtech/session/commit", strings.NewReader(`{}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	testutil.Check(t, "status", http.StatusUnauthorized, resp.StatusCode)
	testutil.Check(t, "WWW-Authenticate", "Bearer", resp.Header.Get("WWW-Authenticate"))
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	testutil.Check(t, "default Concurrency", DefaultConcurrency, cfg.Concurrency)
	testutil.Check(t, "default Timeout", DefaultTimeout, cfg.Timeout)
	testutil.Check(t, "default ClaimLease", DefaultClaimLease, cfg.ClaimLease)
	testutil.Check(t, "default SessionTTL", session.DefaultTTL, cfg.SessionTTL)
	for _, bad := range []Config{{Concurrency: -1}, {ClaimLease: -time.Second}} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if _, err := New(Config{}, Deps{}); err == nil {
		t.Error("New accepted missing deps")
	}
}
