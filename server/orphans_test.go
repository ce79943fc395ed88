package server_test

import (
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/handoff-health/handoff/internal/testutil"
)

// Issue 15: a restart on embedded defaults (memory sessions, local images)
// lost every session and left its photos in data/blobs/sessions/<id>/ for
// good. The next run deletes them at start and logs how many, never which;
// the desktop page says sessions are kept in memory; the snapshot says
// when unfiled photos will be deleted.
func TestMemoryModeRestartSweepsOrphans(t *testing.T) {
	t.Parallel()
	cfg := devConfig(t)
	first := startNode(t, cfg)
	jwt := first.devToken()
	c := first.createSession(jwt, "enc-orphan")
	mobile := first.claim(c.Token)
	imageID := uuid.NewString()
	first.addImage(mobile, imageID, testutil.JPEG(t, 3))

	var snap struct {
		ExpiresAt time.Time `json:"expiresAt"`
		DeleteAt  time.Time `json:"deleteAt"`
	}
	must(t, first.do("GET", "/api/medtech/session/"+c.SessionID, jwt, nil), http.StatusOK, &snap)
	if snap.DeleteAt.IsZero() || snap.DeleteAt.After(snap.ExpiresAt) {
		t.Errorf("snapshot deleteAt %v, expiresAt %v: want a deleteAt no later than the expiry", snap.DeleteAt, snap.ExpiresAt)
	}
	page := first.do("GET", "/desktop", "", nil)
	if !strings.Contains(string(page.body), `data-volatile-sessions="true"`) {
		t.Error("the desktop page does not say sessions are kept in memory")
	}
	if files := blobFiles(t, cfg.DataDir); len(files) == 0 {
		t.Fatal("no photo under the data dir after register; the test sees nothing")
	}
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}

	second := startNode(t, cfg)
	if files := blobFiles(t, cfg.DataDir); len(files) != 0 {
		t.Errorf("photos of the lost sessions still on disk after the restart: %v", files)
	}
	log := second.log.String()
	if !strings.Contains(log, `"photos":1`) {
		t.Errorf("start log does not count the deleted photos:\n%s", log)
	}
	for _, leak := range []string{c.SessionID, imageID, testPatientID, testNHI} {
		if strings.Contains(log, leak) {
			t.Errorf("start log names %q", leak)
		}
	}
}

// blobFiles lists the objects under the data dir's blob roots (sidecars
// and temp files left out).
func blobFiles(t *testing.T, dataDir string) []string {
	t.Helper()
	var out []string
	for _, root := range []string{"sessions", "uploads"} {
		_ = filepath.WalkDir(filepath.Join(dataDir, "blobs", root), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
				out = append(out, p)
			}
			return nil
		})
	}
	return out
}
