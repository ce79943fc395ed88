package commit

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/uuid"

	"github.com/handoff-health/handoff/internal/blob"
	"github.com/handoff-health/handoff/internal/session"
	"github.com/handoff-health/handoff/internal/testutil"
)

// blobKind makes the blob store of one configuration for newEnv; nil means
// the env's own Local store.
type blobKind struct {
	name string
	make func(t *testing.T) blob.Store
}

// blobKindSetups prepare the blob stores the integrity tests run on. Local
// is always here; s3_integration_test.go adds S3 on a real versitygw under
// the integration tag.
var blobKindSetups = []func(t *testing.T) blobKind{
	func(*testing.T) blobKind { return blobKind{"local", func(*testing.T) blob.Store { return nil }} },
}

// TestCommitFilesWhatRegisterChecked is issue 13's first reproduction: a
// phone registers a photo, then PUTs other bytes of the same size (a JPEG
// magic prefix, then HTML) through its still-valid upload URL, and the desktop
// commits. The record must get the registered bytes. After commit the old URL
// must not bring a blob back under the stored key, and a second commit files
// nothing new.
func TestCommitFilesWhatRegisterChecked(t *testing.T) {
	t.Parallel()
	for _, setup := range blobKindSetups {
		kind := setup(t)
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			outbox := t.TempDir()
			e := newEnv(t, envOptions{outbox: outbox, blobs: kind.make(t)})
			sessionID, mobile := e.phoneSession()
			photo := testutil.JPEG(t, 9)
			imageID := uuid.NewString()
			grant := e.presignPhoto(mobile, imageID, len(photo))
			testutil.Equal(t, "upload status", http.StatusOK, putGrant(t, grant, photo))
			st, body := e.phoneCall(mobile, "/api/medtech/session/images", map[string]any{"imageId": imageID, "key": grant.Key})
			if st != http.StatusCreated {
				t.Fatalf("register: %d %s", st, body)
			}
			evil := append([]byte{0xFF, 0xD8, 0xFF}, bytes.Repeat([]byte("<html>"), len(photo))...)[:len(photo)]
			testutil.Equal(t, "replacing PUT status", http.StatusOK, putGrant(t, grant, evil))

			reply := e.commit(Request{SessionID: sessionID})
			checkReply(t, "commit", replySummary{"committed", session.StatusCommitted, 1, 0, 1}, reply)
			testutil.Check(t, "filed bytes", base64.StdEncoding.EncodeToString(photo), outboxData(t, outbox, imageID))

			testutil.Equal(t, "PUT after commit status", http.StatusOK, putGrant(t, grant, evil))
			if _, err := e.blobs.Stat(context.Background(), blob.Key(sessionID, imageID)); !errors.Is(err, blob.ErrNotFound) {
				t.Errorf("stored key after commit and a PUT through the old URL: %v; want ErrNotFound", err)
			}
			before := outboxStat(t, outbox, imageID)
			if st, body := e.post(Request{SessionID: sessionID}); st >= 500 {
				t.Fatalf("second commit: %d %s", st, body)
			}
			testutil.Check(t, "outbox files", 1, len(outboxFiles(t, outbox)))
			testutil.Check(t, "outbox Media rewritten by the second commit", before, outboxStat(t, outbox, imageID))
			if _, err := e.blobs.Stat(context.Background(), blob.Key(sessionID, imageID)); !errors.Is(err, blob.ErrNotFound) {
				t.Errorf("stored key after the second commit: %v; want ErrNotFound", err)
			}
			testutil.Check(t, "filed bytes after the second commit", base64.StdEncoding.EncodeToString(photo), outboxData(t, outbox, imageID))
		})
	}
}

// outboxStat names the outbox file of imageID by its modification time and
// size, to tell whether a later commit wrote it again.
func outboxStat(t *testing.T, dir, imageID string) string {
	t.Helper()
	fi, err := os.Stat(outboxPath(t, dir, imageID))
	if err != nil {
		t.Fatal(err)
	}
	return fi.ModTime().String() + " " + fi.Name()
}

// phoneSession creates a session as the desktop and claims it as a phone,
// through the capture API.
func (e *env) phoneSession() (sessionID, mobile string) {
	e.t.Helper()
	var created struct{ SessionID, Token string }
	st, body := e.call(http.MethodPost, "/api/medtech/session/tokens", e.jwt,
		map[string]any{"encounterId": "enc-" + uuid.NewString()[:8], "patientId": patientID, "patientNhi": "ZZZ0016", "patientDisplay": "Test Patient"})
	if st != http.StatusCreated || json.Unmarshal(body, &created) != nil {
		e.t.Fatalf("create: %d %s", st, body)
	}
	var claimed struct{ MobileToken string }
	st, body = e.call(http.MethodGet, "/api/medtech/session/tokens/"+created.Token, "", nil)
	if st != http.StatusOK || json.Unmarshal(body, &claimed) != nil {
		e.t.Fatalf("claim: %d %s", st, body)
	}
	return created.SessionID, claimed.MobileToken
}

// photoGrant is the presign reply.
type photoGrant struct {
	Method  string
	URL     string
	Headers map[string]string
	Key     string
}

func (e *env) presignPhoto(mobile, imageID string, size int) photoGrant {
	e.t.Helper()
	var g photoGrant
	st, body := e.phoneCall(mobile, "/api/medtech/session/presigned-url",
		map[string]any{"imageId": imageID, "contentType": "image/jpeg", "size": size})
	if st != http.StatusOK || json.Unmarshal(body, &g) != nil {
		e.t.Fatalf("presign: %d %s", st, body)
	}
	return g
}

func (e *env) phoneCall(mobile, path string, body any) (int, []byte) {
	return e.call(http.MethodPost, path, mobile, body)
}

// call sends a JSON request to the env's server with an optional bearer.
func (e *env) call(method, path, bearer string, body any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// putGrant sends data as the phone does and returns the store's status.
func putGrant(t *testing.T, g photoGrant, data []byte) int {
	t.Helper()
	req, _ := http.NewRequest(g.Method, g.URL, bytes.NewReader(data))
	for k, v := range g.Headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func outboxFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// outboxPath returns the one outbox file whose Media names imageID.
func outboxPath(t *testing.T, dir, imageID string) string {
	t.Helper()
	for _, f := range outboxFiles(t, dir) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(imageID)) {
			return f
		}
	}
	t.Fatalf("no outbox Media names image %s", imageID)
	return ""
}

// outboxData returns content.data of the outbox Media of imageID.
func outboxData(t *testing.T, dir, imageID string) string {
	t.Helper()
	b, err := os.ReadFile(outboxPath(t, dir, imageID))
	if err != nil {
		t.Fatal(err)
	}
	var media struct {
		Content struct{ Data string } `json:"content"`
	}
	if err := json.Unmarshal(b, &media); err != nil {
		t.Fatal(err)
	}
	return media.Content.Data
}
