package alextest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/handoff-health/handoff/internal/testutil"
)

// token fetches an access token with form credentials.
func token(t *testing.T, s *Server) string {
	t.Helper()
	resp, err := http.PostForm(s.TokenURL(), url.Values{
		"grant_type": {"client_credentials"}, "scope": {s.Scope()},
		"client_id": {s.ClientID()}, "client_secret": {s.ClientSecret()},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != 200 {
		t.Fatalf("token: status %d, err %v", resp.StatusCode, err)
	}
	testutil.Equal(t, "token_type", "Bearer", tok.TokenType)
	testutil.Equal(t, "expires_in", 3600, tok.ExpiresIn)
	if tok.AccessToken == "" {
		t.Fatal("token response has no access_token")
	}
	return tok.AccessToken
}

func TestTokenEndpointIsStrict(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{})
	good := url.Values{"grant_type": {"client_credentials"}, "scope": {s.Scope()}}
	cases := []struct {
		name   string
		form   url.Values
		basic  bool
		status int
	}{
		{"basic auth", good, true, 200},
		{"wrong grant", url.Values{"grant_type": {"password"}, "scope": {s.Scope()}}, true, 400},
		{"wrong scope", url.Values{"grant_type": {"client_credentials"}, "scope": {"api://x/.default"}}, true, 400},
		{"no credentials", good, false, 401},
		{"credentials twice", url.Values{"grant_type": {"client_credentials"}, "scope": {s.Scope()},
			"client_id": {s.ClientID()}, "client_secret": {s.ClientSecret()}}, true, 400},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest("POST", s.TokenURL(), strings.NewReader(tc.form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if tc.basic {
			req.SetBasicAuth(s.ClientID(), s.ClientSecret())
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.status)
		}
	}
	token(t, s)
}

const validMedia = `{"resourceType":"Media","identifier":[{"system":"urn:x","value":"img-1"}],
"status":"completed","type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/media-type","code":"image"}]},
"subject":{"reference":"Patient/p1"},"createdDateTime":"2025-01-02T03:04:05Z",
"content":{"contentType":"image/jpeg","data":"aGVsbG8=","size":5}}`

func post(t *testing.T, s *Server, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", s.URL()+"/Media", strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestMediaValidation(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{Facilities: []string{"F1"}})
	ok := map[string]string{"Authorization": "Bearer " + token(t, s), "mt-facilityid": "F1",
		"Content-Type": "application/fhir+json"}
	with := func(k, v string) map[string]string {
		h := map[string]string{}
		for a, b := range ok {
			h[a] = b
		}
		h[k] = v
		return h
	}
	edit := func(old, new string) string { return strings.Replace(validMedia, old, new, 1) }
	cases := []struct {
		name, body string
		hdr        map[string]string
		status     int
		want       string
	}{
		{"bad token", validMedia, with("Authorization", "Bearer nope"), 401, `"statusCode":401`},
		{"no facility", validMedia, with("mt-facilityid", ""), 400, "mt-facilityid"},
		{"other facility", validMedia, with("mt-facilityid", "F2"), 403, "forbidden"},
		{"json content type", validMedia, with("Content-Type", "application/json"), 415, "fhir+json"},
		{"no identifier", edit(`"value":"img-1"`, `"use":"usual"`), ok, 400, "The mandatory Identifier.value"},
		{"unknown element", edit(`"status"`, `"colour":"red","status"`), ok, 400, "unknown field"},
		{"unknown nested", edit(`"size":5`, `"size":5,"bytes":5`), ok, 400, "unknown field"},
		{"bad status", edit(`"completed"`, `"done"`), ok, 400, "EventStatus"},
		{"bad subject", edit(`Patient/p1`, `Practitioner/p1`), ok, 400, "subject"},
		{"bad type", edit(`"code":"image"`, `"code":"photo"`), ok, 400, "Media.type"},
		{"bad base64", edit(`aGVsbG8=`, `***`), ok, 400, "base64"},
		{"wrong size", edit(`"size":5`, `"size":6`), ok, 400, "size"},
		{"resource type", edit(`"Media"`, `"Binary"`), ok, 400, "resourceType"},
		{"bad encounter", edit(`"createdDateTime"`, `"encounter":{"reference":"Patient/p1"},"createdDateTime"`), ok, 400, "Media.encounter"},
		{"bad operator", edit(`"createdDateTime"`, `"operator":{"reference":"Location/l1"},"createdDateTime"`), ok, 400, "Media.operator"},
		{"valid", validMedia, ok, 201, `"id":"media-1"`},
		{"valid with encounter and operator", strings.Replace(edit(`"createdDateTime"`,
			`"encounter":{"reference":"Encounter/e1"},"createdDateTime"`), `"content"`,
			`"operator":{"reference":"Practitioner/d1"},"content"`, 1), ok, 201, `"id":"media-2"`},
	}
	for _, tc := range cases {
		resp, body := post(t, s, tc.body, tc.hdr)
		testutil.Check(t, tc.name+": status", tc.status, resp.StatusCode)
		if !strings.Contains(body, tc.want) {
			t.Errorf("%s: body %s, want it to contain %q", tc.name, body, tc.want)
		}
	}
	got := s.Media()
	if len(got) != 2 {
		t.Fatalf("%d Media stored, want 2", len(got))
	}
	testutil.Check(t, "stored data", "hello", string(got[0].Data))
	testutil.Check(t, "stored facility", "F1", got[0].FacilityID)
}

func TestConditionalCreate(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{})
	hdr := map[string]string{"Authorization": "Bearer " + token(t, s), "mt-facilityid": "F1",
		"Content-Type": "application/fhir+json", "If-None-Exist": "identifier=urn:x|img-1"}
	resp, _ := post(t, s, validMedia, hdr)
	testutil.Equal(t, "first create status", 201, resp.StatusCode)
	testutil.Equal(t, "first create Location", s.URL()+"/Media/media-1/_history/1", resp.Header.Get("Location"))
	resp, body := post(t, s, validMedia, hdr)
	testutil.Equal(t, "second create status", 200, resp.StatusCode)
	if !strings.Contains(body, `"id":"media-1"`) {
		t.Fatalf("second create body %s lacks the id", body)
	}
	if n := len(s.Media()); n != 1 {
		t.Fatalf("%d Media stored, want 1", n)
	}
}
