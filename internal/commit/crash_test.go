package commit

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/alex"
	"github.com/handoff-health/handoff/internal/session"
	"github.com/handoff-health/handoff/internal/testutil"
)

// A request renews its claims while it files: an image whose ALEX call
// hangs for many leases stays claimed (no other request takes it over),
// and its RenewedAt moves on.
func TestCommitRenewsItsClaims(t *testing.T) {
	t.Parallel()
	const lease = 150 * time.Millisecond
	e := newEnv(t, envOptions{cfg: Config{Wait: 50 * time.Millisecond, ClaimLease: lease}, alexTimeout: time.Minute})
	sd := e.seed(1)
	img := sd.images[0]
	e.fake.StallNext(1)
	first := e.commit(Request{SessionID: sd.id})
	testutil.Check(t, "first: result status", CommitCommitting, first.Results[0].Status)
	testutil.Eventually(t, "claim renewed past three leases", func() bool {
		c := e.storedCommit(sd.id, img.ID)
		return c.Status == CommitCommitting && c.RenewedAt.Sub(c.ClaimedAt) > 3*lease
	})
	// A retry finds the claim live (renewed), reports it committing and
	// sends nothing.
	again := e.commit(Request{SessionID: sd.id})
	testutil.Check(t, "retry: result status", CommitCommitting, again.Results[0].Status)
	testutil.Check(t, "retry: Media requests", 1, e.fake.MediaRequests())
	e.cancel(CancelRequest{SessionID: sd.id, ImageIDs: []string{img.ID}})
	testutil.Eventually(t, "claim ended", func() bool { return e.storedCommit(sd.id, img.ID).Status == session.CommitFailed })
}

// A node that died mid-commit left a claim it no longer renews, and had
// already written the image's file to the outbox the nodes share. With the
// default lease the claim lapses in seconds, not minutes: a retried commit
// on another node takes the image over at once and re-files it, which the
// outbox recognises, so the image is in the outbox once.
func TestCommitAfterCrashRefilesOnce(t *testing.T) {
	t.Parallel()
	for _, sk := range storeKinds(t) {
		t.Run(sk.name, func(t *testing.T) {
			t.Parallel()
			outbox := t.TempDir()
			dead := newEnv(t, envOptions{store: sk.make(t), outbox: outbox})
			sd := dead.seed(2)
			crashed := sd.images[0]
			s := dead.session(sd.id)
			ob, err := alex.NewOutbox(outbox)
			if err != nil {
				t.Fatal(err)
			}
			in := alex.MediaInput{FacilityID: facility, PatientID: patientID, EncounterID: s.EncounterID, ProviderID: provider,
				SessionID: sd.id, ImageID: crashed.ID, ContentType: crashed.ContentType, Data: sd.data[crashed.ID], CreatedAt: crashed.CreatedAt}
			if _, err := ob.CreateMedia(context.Background(), in); err != nil {
				t.Fatal(err)
			}
			files := mediaFiles(t, outbox)
			before := readFile(t, filepath.Join(outbox, files[0]))
			claimedAt := time.Now().Add(-DefaultClaimLease - time.Second)
			dead.setCommit(sd.id, crashed.ID, session.Commit{Status: CommitCommitting, ClaimedAt: claimedAt, RenewedAt: claimedAt})

			other := newEnv(t, envOptions{store: dead.store, blobs: dead.blobs, outbox: outbox})
			reply := other.commit(Request{SessionID: sd.id})
			testutil.Check(t, "reply status", StatusCommitted, reply.Status)
			testutil.Check(t, "reply committed", 2, reply.Committed)
			after := mediaFiles(t, outbox)
			testutil.Check(t, "outbox files", 2, len(after))
			testutil.Check(t, "the crashed node's file is kept as it was", before, readFile(t, filepath.Join(outbox, files[0])))
			testutil.Check(t, "no temp files", 0, countTemp(t, outbox))
		})
	}
}

// A claim that is live (taken or renewed within the lease) belongs to a
// node that is working on it: a retry reports it committing within its
// Wait and does not file it.
func TestCommitLiveClaimOfAnotherNode(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{outbox: t.TempDir(), cfg: Config{Wait: 100 * time.Millisecond, Timeout: 200 * time.Millisecond}})
	sd := e.seed(1)
	now := time.Now()
	e.setCommit(sd.id, sd.images[0].ID, session.Commit{Status: CommitCommitting, ClaimedAt: now.Add(-time.Minute), RenewedAt: now})
	reply := e.commit(Request{SessionID: sd.id})
	testutil.Check(t, "result status", CommitCommitting, reply.Results[0].Status)
}

// Two nodes commit one session at once, sharing the session store and the
// outbox directory: every image is filed once, and both replies report
// every image committed.
func TestCommitTwoNodesOneOutbox(t *testing.T) {
	t.Parallel()
	for _, sk := range storeKinds(t) {
		t.Run(sk.name, func(t *testing.T) {
			t.Parallel()
			outbox := t.TempDir()
			a := newEnv(t, envOptions{store: sk.make(t), outbox: outbox})
			b := newEnv(t, envOptions{store: a.store, blobs: a.blobs, outbox: outbox})
			sd := a.seed(4)
			var wg sync.WaitGroup
			replies := make([]Reply, 2)
			for i, n := range []*env{a, b} {
				wg.Go(func() {
					status, body := n.post(Request{SessionID: sd.id})
					if status != http.StatusOK {
						t.Errorf("node %d: %d %s", i, status, body)
						return
					}
					_ = json.Unmarshal(body, &replies[i])
				})
			}
			wg.Wait()
			for _, r := range replies {
				testutil.Check(t, "node reply status", StatusCommitted, r.Status)
				testutil.Check(t, "node reply committed", 4, r.Committed)
			}
			testutil.Check(t, "outbox files", 4, len(mediaFiles(t, outbox)))
			testutil.Check(t, "no temp files", 0, countTemp(t, outbox))
		})
	}
}

// storedCommit reads an image's commit state from the store.
func (e *env) storedCommit(sessionID, imageID string) session.Commit {
	img, _ := e.session(sessionID).Image(imageID)
	return img.Commit
}

func mediaFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "media-") {
			out = append(out, e.Name())
		}
	}
	return out
}

func countTemp(t *testing.T, dir string) int {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			n++
		}
	}
	return n
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
