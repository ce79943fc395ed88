package provision_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/provision"
	"github.com/handoff-health/handoff/internal/testutil"
	"github.com/handoff-health/handoff/presence"
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

// TestPresenceFixtures: an app's channel presence fixtures (ablytest's
// DefaultConfig shape) are members of its prefixed channel, with their
// data, until the app is deleted; a fixture whose data handoff cannot
// store (base64) refuses the app.
func TestPresenceFixtures(t *testing.T) {
	t.Parallel()
	keys, err := auth.ParseAPIKeys("", "")
	if err != nil {
		t.Fatal(err)
	}
	reg := presence.NewMemory(presence.MemoryConfig{})
	t.Cleanup(reg.Stop)
	p := provision.New(keys).WithPresence(reg)
	mux := http.NewServeMux()
	p.Register(mux)
	post := func(body string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("POST", "/apps", strings.NewReader(body)))
		return w
	}
	w := post(`{"keys":[{}],"channels":[{"name":"persisted:presence_fixtures","presence":[
		{"clientId":"client_string","data":"true"},
		{"clientId":"client_json","data":"{\"test\":1}","encoding":"json"}]}]}`)
	testutil.Equal(t, "create status", http.StatusCreated, w.Code)
	var app provision.App
	if err := json.Unmarshal(w.Body.Bytes(), &app); err != nil {
		t.Fatal(err)
	}
	channel := app.AppID + "@persisted:presence_fixtures"
	members, err := reg.Members(context.Background(), channel)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "members", 2, len(members))
	testutil.Equal(t, "json member", `{"test":1}`, string(members[0].Data))
	testutil.Equal(t, "string member", `"true"`, string(members[1].Data))

	bad := post(`{"channels":[{"name":"c","presence":[{"clientId":"b","data":"AQI=","encoding":"base64"}]}]}`)
	testutil.Equal(t, "base64 fixture status", http.StatusBadRequest, bad.Code)
	testutil.Equal(t, "apps after a refused fixture", 1, p.Apps())

	req := httptest.NewRequest("DELETE", "/apps/"+app.AppID, nil)
	req.SetBasicAuth(app.Keys[0].KeyName, app.Keys[0].Value)
	del := httptest.NewRecorder()
	mux.ServeHTTP(del, req)
	testutil.Equal(t, "delete status", http.StatusNoContent, del.Code)
	members, err = reg.Members(context.Background(), channel)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "members after delete", 0, len(members))
}
