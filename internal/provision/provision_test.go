package provision_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/provision"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestBadRequestsChangeNothing: every refused POST /apps and DELETE
// /apps/{id} is a 4xx in Ably's error shape and leaves the apps and the
// node's keys as they were; the accepted ones change exactly one app.
func TestBadRequestsChangeNothing(t *testing.T) {
	t.Parallel()
	keys, err := auth.ParseAPIKeys("ops:ops-secret-0123456789", "")
	if err != nil {
		t.Fatal(err)
	}
	p := provision.New(keys)
	mux := http.NewServeMux()
	p.Register(mux)
	do := func(method, path, body string, basic ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if len(basic) == 2 {
			req.SetBasicAuth(basic[0], basic[1])
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		return w
	}

	w := do("POST", "/apps", `{"keys":[{"capability":"{\"*\":[\"subscribe\"]}"}]}`)
	testutil.Equal(t, "create status", http.StatusCreated, w.Code)
	var app provision.App
	if err := json.Unmarshal(w.Body.Bytes(), &app); err != nil {
		t.Fatal(err)
	}
	key := app.Keys[0]
	testutil.Equal(t, "apps after create", 1, p.Apps())
	testutil.Equal(t, "keys after create", 2, keys.Len())

	tooMany := `{"keys":[` + strings.TrimSuffix(strings.Repeat(`{},`, 17), ",") + `]}`
	for name, body := range map[string]string{
		"not JSON":            "{nope",
		"empty":               "",
		"a bad capability":    `{"keys":[{},{"capability":"not json"}]}`,
		"too many keys":       tooMany,
		"over the body limit": `{"channels":["` + strings.Repeat("x", provision.MaxBodyBytes) + `"]}`,
	} {
		w := do("POST", "/apps", body)
		testutil.Equal(t, name+": status", http.StatusBadRequest, w.Code)
		testutil.Equal(t, name+": X-Ably-Errorcode", "40000", w.Header().Get("X-Ably-Errorcode"))
		testutil.Equal(t, name+": apps", 1, p.Apps())
		testutil.Equal(t, name+": keys", 2, keys.Len())
	}

	for name, creds := range map[string][]string{
		"no credentials":        nil,
		"a wrong secret":        {key.KeyName, "wrong-secret-wrong-secret"},
		"a key of another app":  {"ops", "ops-secret-0123456789"},
		"the key, another path": {key.KeyName, key.Value, "/apps/t000000000000"},
	} {
		path := "/apps/" + app.AppID
		if len(creds) == 3 {
			path, creds = creds[2], creds[:2]
		}
		w := do("DELETE", path, "", creds...)
		testutil.Equal(t, name+": delete status", http.StatusUnauthorized, w.Code)
		testutil.Equal(t, name+": apps", 1, p.Apps())
		testutil.Equal(t, name+": keys", 2, keys.Len())
	}
	if _, ok := keys.Authenticate(key.KeyName, key.Value); !ok {
		t.Fatal("the app's key stopped working after refused requests")
	}

	testutil.Equal(t, "delete status", http.StatusNoContent, do("DELETE", "/apps/"+app.AppID, "", key.KeyName, key.Value).Code)
	testutil.Equal(t, "apps after delete", 0, p.Apps())
	testutil.Equal(t, "keys after delete", 1, keys.Len())
	testutil.Equal(t, "prefix of a deleted app's key", "", p.ChannelPrefix(key.KeyName))
}
