//go:build integration

package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/handoff-health/handoff/client"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/blob"
	"github.com/handoff-health/handoff/internal/testutil"
)

type readiness struct {
	Ready  bool              `json:"ready"`
	Checks map[string]string `json:"checks"`
}

// TestProductionNodes runs two production-shaped nodes (not dev) on one
// real redis-server, with images in a real S3-compatible store (versitygw)
// reached through the standard AWS credential chain, and desktop JWTs
// signed by "the host application" with the shared secret.
//
// Not parallel: the AWS credentials are environment variables.
func TestProductionNodes(t *testing.T) {
	r := testutil.StartRedis(t)
	v := testutil.StartVersity(t)
	// Only the environment provides credentials: no profile, no instance role.
	t.Setenv("AWS_ACCESS_KEY_ID", v.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", v.SecretKey)
	t.Setenv("AWS_REGION", v.Region)
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	// The server never creates its bucket (production provisions it), so
	// the test does.
	bucket := "handoff-" + strings.ToLower(rand.Text()[:12])
	if _, err := blob.NewS3(context.Background(), blob.S3Config{
		Endpoint: v.Endpoint, Region: v.Region, Bucket: bucket, PathStyle: true,
		AccessKeyID: v.AccessKey, SecretAccessKey: v.SecretKey, CreateBucket: true,
	}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}

	cfgA := defaults(t)
	cfgA.JWTSecret = testJWTSecret
	cfgA.APIKeys = apiKeys
	cfgA.RedisAddrs = r.Addr
	cfgA.RedisPrefix = "test-" + strings.ToLower(rand.Text()[:8])
	cfgA.S3Bucket, cfgA.S3Endpoint, cfgA.S3Region, cfgA.S3PathStyle = bucket, v.Endpoint, v.Region, true
	cfgB := cfgA // same Redis prefix and bucket: one cluster of two nodes
	cfgB.DataDir = t.TempDir()
	a, b := startNode(t, cfgA), startNode(t, cfgB)

	for name, n := range map[string]*node{"A": a, "B": b} {
		var rd readiness
		must(t, n.do("GET", "/readyz", "", nil), http.StatusOK, &rd)
		testutil.Equal(t, "node "+name+" readyz", readiness{Ready: true, Checks: map[string]string{"hub": "ok", "sessions+blobs": "ok"}}, rd)
		if r := n.do("POST", "/api/dev/token", "", nil); r.status != http.StatusNotFound {
			t.Fatalf("node %s serves dev tokens: %d", name, r.status)
		}
	}

	verifier, err := auth.NewVerifier([]byte(testJWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	jwt, err := verifier.Issue(auth.Claims{Facility: "F-PROD-1", Provider: "gp-7", Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("events cross nodes", func(t *testing.T) {
		s := b.createSession(jwt, "enc-prod")
		desktop := a.realtime(t, jwt)
		if err := desktop.Subscribe(s.Channel, ""); err != nil {
			t.Fatal(err)
		}
		testutil.Next(t, desktop, client.KindSubscribed)

		// Published through node B's publish API, received on node A.
		ch := b.ablyREST(t, apiKeys).Channels.Get(s.Channel)
		res, err := ch.PublishWithResult(context.Background(), "integrator.note", map[string]any{"via": "B"})
		if err != nil {
			t.Fatalf("publish on B: %v", err)
		}
		ev := testutil.NextEvent(t, desktop, s.Channel)
		testutil.Equal(t, "event type on A", "integrator.note", ev.Type)
		if !jsonEqual(ev.Data, `{"via":"B"}`) {
			t.Fatalf("event data on A: %s", ev.Data)
		}
		if res.Serial == nil {
			t.Fatal("publish on B returned no serial")
		}
		testutil.Equal(t, "serial from B = event id on A", *res.Serial, ev.ID)

		// The capture flow across nodes, images in S3: claimed on B, the
		// photo added through A, the snapshot read on B.
		mobile := b.claim(s.Token)
		if ev := testutil.NextEvent(t, desktop, s.Channel); ev.Type != "mobile.connected" {
			t.Fatalf("event %s, want mobile.connected", ev.Type)
		}
		data := testutil.JPEG(t, 0)
		imageID := uuid.NewString()
		p := a.addImage(mobile, imageID, data)
		if !strings.HasPrefix(p.URL, v.Endpoint+"/"+bucket+"/") {
			t.Fatalf("upload URL %q is not the S3 store's", p.URL)
		}
		if ev := testutil.NextEvent(t, desktop, s.Channel); ev.Type != "image.added" {
			t.Fatalf("event %s, want image.added", ev.Type)
		}
		var snap struct {
			Images []struct {
				ID  string `json:"id"`
				URL string `json:"url"`
			} `json:"images"`
		}
		must(t, b.do("GET", "/api/medtech/session/"+s.SessionID, jwt, nil), http.StatusOK, &snap)
		if len(snap.Images) != 1 {
			t.Fatalf("snapshot on B has %d images, want 1", len(snap.Images))
		}
		testutil.Equal(t, "snapshot image id on B", imageID, snap.Images[0].ID)
		got := b.do("GET", snap.Images[0].URL, "", nil)
		testutil.Equal(t, "download status from S3", http.StatusOK, got.status)
		if !bytes.Equal(got.body, data) {
			t.Fatalf("download from S3: %d bytes differ from the %d uploaded", len(got.body), len(data))
		}

		// Another facility sees nothing, on either node.
		other, err := verifier.Issue(auth.Claims{Facility: "F-OTHER", Provider: "gp-9", Expires: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if r := a.do("GET", "/api/medtech/session/"+s.SessionID, other, nil); r.status != http.StatusNotFound {
			t.Fatalf("other facility: %d", r.status)
		}
	})

	t.Run("readyz names the hub when Redis is down", func(t *testing.T) {
		r.Kill()
		var rd readiness
		must(t, a.do("GET", "/readyz", "", nil), http.StatusServiceUnavailable, &rd)
		testutil.Check(t, "ready with Redis down", false, rd.Ready)
		testutil.Equal(t, "hub check with Redis down", "unavailable", rd.Checks["hub"])
		// The process itself is fine: no restart wanted.
		must(t, a.do("GET", "/healthz", "", nil), http.StatusOK, nil)

		// Redis back (empty): the node is ready again without a restart.
		r.Start()
		deadline := time.Now().Add(15 * time.Second)
		for {
			if a.do("GET", "/readyz", "", nil).status == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("node not ready again after Redis came back")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}
