package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/handoff-health/handoff/client"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestAccessLogHasNoSecrets runs the whole flow over HTTP against one node
// (create → QR → claim → presign → upload → register → live event →
// snapshot → download → commit → publish with an API key), plus refused
// requests carrying credentials, with the node's log captured. The log
// names route templates and never a token, key secret or patient datum.
func TestAccessLogHasNoSecrets(t *testing.T) {
	t.Parallel()
	cfg := devConfig(t)
	n := startNode(t, cfg)
	jwt := n.devToken()
	must(t, n.do("GET", "/api/dev/patients", "", nil), http.StatusOK, nil)

	c := n.createSession(jwt, "enc-log")
	desktop := n.realtime(t, jwt)
	if err := desktop.Subscribe(c.Channel, ""); err != nil {
		t.Fatal(err)
	}
	testutil.Next(t, desktop, client.KindSubscribed)

	must(t, n.do("GET", c.MobileURL, "", nil), http.StatusOK, nil)
	must(t, n.do("GET", c.QRURL, "", nil), http.StatusOK, nil)
	mobile := n.claim(c.Token)
	if ev := testutil.NextEvent(t, desktop, c.Channel); ev.Type != "mobile.connected" {
		t.Fatalf("event %s, want mobile.connected", ev.Type)
	}

	imageID := uuid.NewString()
	p := n.addImage(mobile, imageID, testutil.JPEG(t, 0))
	if ev := testutil.NextEvent(t, desktop, c.Channel); ev.Type != "image.added" {
		t.Fatalf("event %s, want image.added", ev.Type)
	}

	var snap struct {
		Images []struct {
			ID  string `json:"id"`
			URL string `json:"url"`
		} `json:"images"`
	}
	must(t, n.do("GET", "/api/medtech/session/"+c.SessionID, jwt, nil), http.StatusOK, &snap)
	if len(snap.Images) != 1 {
		t.Fatalf("snapshot has %d images, want 1", len(snap.Images))
	}
	testutil.Equal(t, "snapshot image id", imageID, snap.Images[0].ID)
	if snap.Images[0].URL == "" {
		t.Fatal("snapshot image has no url")
	}
	must(t, n.do("GET", snap.Images[0].URL, "", nil), http.StatusOK, nil)

	var commit struct {
		Status    string `json:"status"`
		Committed int    `json:"committed"`
	}
	must(t, n.do("POST", "/api/medtech/session/commit", jwt, map[string]any{"sessionId": c.SessionID}), http.StatusOK, &commit)
	testutil.Check(t, "commit status", "committed", commit.Status)
	testutil.Equal(t, "images committed", 1, commit.Committed)

	ch := n.ablyREST(t, apiKeys).Channels.Get(c.Channel)
	if err := ch.Publish(context.Background(), "integrator.note", map[string]any{"patient": testDisplay}); err != nil {
		t.Fatalf("ably-go publish: %v", err)
	}

	// Refused requests that carry credentials and patient data.
	n.do("GET", "/api/medtech/session/tokens/"+c.Token, "", nil) // already claimed: 410
	n.do("GET", "/api/medtech/session/"+c.SessionID, jwt+"x", nil)
	n.do("POST", "/api/medtech/session/tokens", jwt, map[string]any{
		"encounterId": "enc-log-2", "patientId": testPatientID, "patientNhi": "bad-" + testNHI, "patientDisplay": testDisplay})
	n.do("POST", "/api/medtech/session/presigned-url", mobile+"x", `{"imageId":"`+testPatientID+`"}`)
	bad := n.ablyREST(t, apiKeyName+":"+apiKeySecret+"-wrong").Channels.Get(c.Channel)
	_ = bad.Publish(context.Background(), "x", testNHI)
	n.do("GET", "/healthz?nhi="+testNHI+"&token="+c.Token, "", nil)

	if err := n.stop(); err != nil { // every line written
		t.Fatalf("Serve: %v", err)
	}
	log := n.log.String()

	// The flow is in the log, by route template.
	routes := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line is not JSON: %s", sc.Text())
		}
		if line["message"] == "http" {
			routes[line["route"].(string)] = true
		}
	}
	for _, want := range []string{
		"POST /api/dev/token",
		"POST /api/medtech/session/tokens",
		"GET /m/{token}",
		"GET /api/medtech/session/tokens/{token}/qr.svg",
		"GET /api/medtech/session/tokens/{token}",
		"GET /realtime",
		"POST /api/medtech/session/presigned-url",
		"POST /api/medtech/session/images",
		"GET /api/medtech/session/{sessionId}",
		"POST /api/medtech/session/commit",
		"POST /channels/{channel}/messages",
		"GET /healthz",
	} {
		if !routes[want] {
			t.Errorf("no access-log line for %s", want)
		}
	}
	for r := range routes {
		if strings.Contains(r, c.SessionID) || strings.Contains(r, "?") {
			t.Errorf("route %q is a raw path", r)
		}
	}

	secrets := map[string]string{
		"QR token": c.Token, "mobile token": mobile, "JWT": jwt, "JWT signature": jwt[strings.LastIndex(jwt, ".")+1:],
		"API key secret": apiKeySecret, "patient id": testPatientID, "NHI": testNHI, "patient display": testDisplay,
		"upload URL": p.URL, "download URL": snap.Images[0].URL,
	}
	if u := snap.Images[0].URL; strings.Contains(u, "?") {
		secrets["download URL signature"] = u[strings.Index(u, "?")+1:]
	}
	for what, s := range secrets {
		if strings.Contains(log, s) {
			t.Errorf("log contains the %s", what)
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", log)
	}

	// The commit did happen: the outbox holds the Media, patient and all.
	files, err := filepath.Glob(filepath.Join(cfg.DataDir, "alex-outbox", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("outbox: %v %v", files, err)
	}
	found := false
	for _, f := range files {
		b, _ := os.ReadFile(f)
		found = found || strings.Contains(string(b), testPatientID)
	}
	if !found {
		t.Errorf("no outbox file names the patient: %v", files)
	}
}
