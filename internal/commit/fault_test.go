package commit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/alex/alextest"
	"github.com/handoff-health/handoff/internal/session"
	"github.com/handoff-health/handoff/internal/testutil"
)

// An unreachable token endpoint fails every image with one clear error:
// nothing is sent, nothing is committed, every blob stays, and a commit
// after the outage files everything.
func TestCommitTokenEndpointDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	sd := e.seed(3)
	e.fake.SetTokenFault(alextest.TokenUnavailable)

	reply := e.commit(Request{SessionID: sd.id})
	checkReply(t, "reply", replySummary{StatusFailed, session.StatusOpen, 0, 3, 3}, reply)
	for i, res := range reply.Results {
		checkFailure(t, fmt.Sprintf("result %d", i), session.CommitFailed, "alex_auth_failed", res)
		if res.Error != nil && !strings.Contains(res.Error.Message, "sign in to Medtech ALEX") {
			t.Errorf("result %d: message %q does not say ALEX sign-in failed", i, res.Error.Message)
		}
	}
	if n := e.fake.MediaRequests(); n != 0 {
		t.Errorf("%d Media requests without a token", n)
	}
	for _, img := range e.session(sd.id).Images {
		testutil.Check(t, "stored commit status of "+img.ID, session.CommitFailed, img.Commit.Status)
		testutil.Check(t, "stored ALEX id of "+img.ID, "", img.Commit.AlexID)
		if e.read(img.Key) == nil {
			t.Errorf("blob of %s deleted", img.ID)
		}
	}
	want := []string{EventImageCommitFailed, EventImageCommitFailed, EventImageCommitFailed}
	if got := eventTypes(e.events(sd.id)); !slices.Equal(got, want) {
		t.Errorf("events %v", got)
	}

	e.fake.SetTokenFault(alextest.TokenOK)
	again := e.commit(Request{SessionID: sd.id})
	testutil.Check(t, "after recovery: status", StatusCommitted, again.Status)
	testutil.Check(t, "after recovery: Media at ALEX", 3, len(e.fake.Media()))
	checkAudit(t, e, []map[string]any{
		{"result": "failed", "failed": 3.0, "committed": 0.0},
		{"result": "committed", "failed": 0.0, "committed": 3.0},
	})
	e.assertNoPHI()
}

// A refusal that concerns the practice, not the image, stops the commit:
// the remaining images are not sent.
func TestCommitForbiddenFacility(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: Config{Concurrency: 1}})
	sd := e.seed(3)
	e.fake.ForbidFacility(facility)
	reply := e.commit(Request{SessionID: sd.id})
	testutil.Check(t, "reply status", StatusFailed, reply.Status)
	testutil.Equal(t, "Media requests (the first 403 stops the rest)", 1, e.fake.MediaRequests())
	for i, res := range reply.Results {
		checkFailure(t, fmt.Sprintf("result %d", i), session.CommitFailed, "alex_forbidden", res)
		if res.Error != nil && (!strings.Contains(res.Error.Details, "not authorised") || strings.Contains(res.Error.Message, "not authorised")) {
			t.Errorf("result %d: ALEX's diagnostics are not in details (only): %+v", i, res.Error)
		}
	}
}

// A 500 is retried and the retry files the image once.
func TestCommitRetries5xx(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	sd := e.seed(3)
	e.fake.FailNext(1, 500)
	reply := e.commit(Request{SessionID: sd.id})
	testutil.Check(t, "reply status", StatusCommitted, reply.Status)
	testutil.Check(t, "Media at ALEX", 3, len(e.fake.Media()))
	testutil.Equal(t, "Media requests (one retried)", 4, e.fake.MediaRequests())
}

// A response lost after ALEX created the Media: the retry finds it (the
// create is conditional on the image id) and creates no duplicate.
func TestCommitLostResponse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	sd := e.seed(3)
	e.fake.LoseNextResponses(1)
	reply := e.commit(Request{SessionID: sd.id})
	media := e.fake.Media()
	testutil.Check(t, "reply status", StatusCommitted, reply.Status)
	testutil.Check(t, "Media at ALEX", 3, len(media))
	testutil.Equal(t, "Media requests (one retried)", 4, e.fake.MediaRequests())
	ids := map[string]bool{}
	for _, res := range reply.Results {
		ids[res.AlexID] = true
	}
	for _, m := range media {
		if !ids[m.ID] {
			t.Errorf("Media %s is not in the reply %+v", m.ID, reply.Results)
		}
	}
}

// ALEX refusing one image (400 OperationOutcome) fails only that image,
// with a plain message and next step for its issue code and ALEX's
// diagnostics as details, never as the message; the others are filed; its
// blob and the session stay for a later commit.
func TestCommitOneRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	sd := e.seed(3)
	bad := sd.images[1]
	diag := "Patient " + patientID + " is not accepting images"
	e.fake.RejectIdentifier(sd.id+"."+bad.ID, diag)

	reply := e.commit(Request{SessionID: sd.id})
	checkReply(t, "reply", replySummary{StatusPartial, session.StatusOpen, 2, 1, 3}, reply)
	res := reply.Results[1]
	want := ErrorInfo{Code: "alex_rejected",
		Message:  "Medtech ALEX refused to add this photo to the patient's record because of a record rule.",
		NextStep: "Check the patient's record in Medtech (for example that it is active), then press Retry. If it is refused again, give the details below to your IT person.",
		Details:  "HTTP 400, issue business-rule: " + diag}
	testutil.Check(t, "rejected result", Result{ImageID: bad.ID, Status: session.CommitFailed, Error: &want}, res)
	stored, _ := e.session(sd.id).Image(bad.ID)
	testutil.Check(t, "stored commit", session.Commit{Status: session.CommitFailed, Error: want.Message + " " + want.NextStep}, stored.Commit)
	if e.read(bad.Key) == nil {
		t.Error("the rejected image's blob was deleted")
	}
	var failed imageCommitFailedEvent
	for _, ev := range e.events(sd.id) {
		if ev.Type == EventImageCommitFailed {
			_ = json.Unmarshal(ev.Data, &failed)
		}
	}
	testutil.Check(t, "image.commit_failed: imageId", bad.ID, failed.ImageID)
	testutil.Check(t, "image.commit_failed: error", want, failed.Error)
	if failed.Image == nil {
		t.Error("image.commit_failed has no image")
	} else {
		testutil.Check(t, "image.commit_failed: image commit status", session.CommitFailed, failed.Image.Commit.Status)
	}

	// A re-commit sends only the failed image.
	before := e.fake.MediaRequests()
	again := e.commit(Request{SessionID: sd.id})
	testutil.Check(t, "Media requests of the re-commit", 1, e.fake.MediaRequests()-before)
	testutil.Check(t, "re-commit: committed", 2, again.Committed)
	testutil.Check(t, "re-commit: failed", 1, again.Failed)
	e.assertNoPHI(diag)
}

// After a partial failure, a re-commit sends only what is not committed,
// and completing it closes the session.
func TestCommitPartialThenRecommit(t *testing.T) {
	t.Parallel()
	for _, sk := range storeKinds(t) {
		t.Run(sk.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{store: sk.make(t), cfg: Config{Concurrency: 1}})
			sd := e.seed(3)
			e.fake.FailNext(4, 503) // every attempt of the first image

			first := e.commit(Request{SessionID: sd.id})
			testutil.Check(t, "first: status", StatusPartial, first.Status)
			testutil.Check(t, "first: committed", 2, first.Committed)
			checkFailure(t, "first: result 0", session.CommitFailed, "alex_unavailable", first.Results[0])
			testutil.Check(t, "Media at ALEX after the first", 2, len(e.fake.Media()))
			testutil.Check(t, "Media requests of the first", 6, e.fake.MediaRequests())
			if t.Failed() {
				t.FailNow()
			}

			second := e.commit(Request{SessionID: sd.id})
			testutil.Check(t, "second: status", StatusCommitted, second.Status)
			testutil.Equal(t, "second: sessionStatus", session.StatusCommitted, second.SessionStatus)
			if n := e.fake.MediaRequests(); n != 7 {
				t.Errorf("re-commit made %d Media requests, want 1", n-6)
			}
			for _, img := range sd.images {
				if e.read(img.Key) != nil {
					t.Errorf("blob %s kept after the session was committed", img.ID)
				}
			}
			checkAudit(t, e, []map[string]any{
				{"result": "partial", "committed": 2.0, "failed": 1.0, "skipped": 0.0},
				{"result": "committed", "committed": 1.0, "failed": 0.0, "skipped": 2.0},
			})
		})
	}
}

// An image whose blob is gone fails on its own, without a call to ALEX.
func TestCommitMissingBlob(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	sd := e.seed(2)
	if err := e.blobs.Delete(context.Background(), sd.images[0].Key); err != nil {
		t.Fatal(err)
	}
	reply := e.commit(Request{SessionID: sd.id})
	checkFailure(t, "result 0 (blob gone)", session.CommitFailed, "image_missing", reply.Results[0])
	testutil.Check(t, "result 1 status", session.CommitCommitted, reply.Results[1].Status)
	testutil.Check(t, "Media requests", 1, e.fake.MediaRequests())
}

// Bytes changed in the store after registration are refused, whether the
// size or only the content changed; nothing reaches ALEX for that image and
// its blob is kept. No URL can write a stored key (see integrity_test.go for
// the upload URL), so this is someone with access to the store itself.
func TestCommitReplacedBytes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	sd := e.seed(4)
	replace := func(img session.Image, data []byte) {
		if err := e.blobs.Put(context.Background(), img.Key, bytes.NewReader(data), int64(len(data)), "image/jpeg"); err != nil {
			t.Fatal(err)
		}
	}
	sameSize := append([]byte{0xFF, 0xD8, 0xFF}, bytes.Repeat([]byte{'x'}, int(sd.images[0].Size)-3)...)
	replace(sd.images[0], sameSize)
	replace(sd.images[1], append(e.read(sd.images[1].Key), 0))
	// An image registered by a version that recorded no hash.
	noHash := sd.images[2]
	noHash.SHA256 = ""
	if _, err := e.store.RemoveImage(context.Background(), sd.id, noHash.ID, e.api.touch()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.store.AddImage(context.Background(), sd.id, noHash, e.api.touch()); err != nil {
		t.Fatal(err)
	}
	reply := e.commit(Request{SessionID: sd.id})
	byID := map[string]Result{}
	for _, r := range reply.Results {
		byID[r.ImageID] = r
	}
	checkFailure(t, "same size, other bytes", session.CommitFailed, "image_changed", byID[sd.images[0].ID])
	checkFailure(t, "one byte longer", session.CommitFailed, "image_changed", byID[sd.images[1].ID])
	checkFailure(t, "no recorded hash", session.CommitFailed, "image_unverified", byID[sd.images[2].ID])
	testutil.Check(t, "untouched image", session.CommitCommitted, byID[sd.images[3].ID].Status)
	testutil.Check(t, "Media requests", 1, e.fake.MediaRequests())
	for _, img := range sd.images[:3] {
		if e.read(img.Key) == nil {
			t.Errorf("blob of refused image %s deleted; want it kept", img.ID)
		}
	}
}

// A claim left by a crashed node lapses, and the next commit takes it over.
func TestCommitTakesOverLapsedClaim(t *testing.T) {
	t.Parallel()
	for _, sk := range storeKinds(t) {
		t.Run(sk.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{store: sk.make(t)})
			sd := e.seed(2)
			e.setCommit(sd.id, sd.images[0].ID, session.Commit{Status: CommitCommitting, ClaimedAt: time.Now().Add(-time.Hour)})
			reply := e.commit(Request{SessionID: sd.id})
			testutil.Check(t, "reply status", StatusCommitted, reply.Status)
			testutil.Check(t, "Media at ALEX", 2, len(e.fake.Media()))
		})
	}
}

// A live claim of another request is left alone: this request waits for
// its outcome, and reports it in progress if it does not come in time.
func TestCommitLiveClaimElsewhere(t *testing.T) {
	t.Parallel()
	for _, sk := range storeKinds(t) {
		t.Run(sk.name+"/times out", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{store: sk.make(t), cfg: Config{Timeout: 300 * time.Millisecond, ClaimLease: time.Hour}})
			sd := e.seed(2)
			e.setCommit(sd.id, sd.images[0].ID, session.Commit{Status: CommitCommitting, ClaimedAt: time.Now()})
			reply := e.commit(Request{SessionID: sd.id})
			res := reply.Results[0]
			checkFailure(t, "result 0 (claimed elsewhere)", CommitCommitting, "commit_in_progress", res)
			testutil.Check(t, "reply status", StatusPartial, reply.Status)
			testutil.Check(t, "reply committed", 1, reply.Committed)
			testutil.Check(t, "reply failed", 0, reply.Failed)
			testutil.Check(t, "Media requests", 1, e.fake.MediaRequests())
			if t.Failed() {
				t.FailNow()
			}
			if img, _ := e.session(sd.id).Image(sd.images[0].ID); img.Commit.Status != CommitCommitting {
				t.Errorf("another request's claim was changed: %+v", img.Commit)
			}
			checkAudit(t, e, []map[string]any{{"result": "partial", "committed": 1.0, "in_progress": 1.0}})
		})
		t.Run(sk.name+"/other request finishes", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{store: sk.make(t)})
			sd := e.seed(2)
			e.setCommit(sd.id, sd.images[0].ID, session.Commit{Status: CommitCommitting, ClaimedAt: time.Now()})
			go func() {
				time.Sleep(3 * pollInterval)
				e.setCommit(sd.id, sd.images[0].ID, session.Commit{
					Status: session.CommitCommitted, AlexID: "media-elsewhere", CommittedAt: time.Now()})
			}()
			reply := e.commit(Request{SessionID: sd.id})
			testutil.Check(t, "reply status", StatusCommitted, reply.Status)
			testutil.Check(t, "result 0 alexId", "media-elsewhere", reply.Results[0].AlexID)
			testutil.Check(t, "reply sessionStatus", session.StatusCommitted, reply.SessionStatus)
			testutil.Check(t, "Media requests", 1, e.fake.MediaRequests())
		})
	}
}

// setCommit writes an image's commit state directly, as another request
// or node would have.
func (e *env) setCommit(sessionID, imageID string, c session.Commit) {
	e.t.Helper()
	_, err := e.store.UpdateImage(context.Background(), sessionID, imageID, e.api.touch(), func(img *session.Image) error {
		img.Commit = c
		return nil
	})
	if err != nil {
		e.t.Errorf("set commit: %v", err) // may run on another goroutine: no Fatal
	}
}
