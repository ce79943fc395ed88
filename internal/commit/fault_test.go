package commit

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/alex/alextest"
	"github.com/handoff-health/handoff/internal/capture"
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
	if reply.Status != StatusFailed || reply.Failed != 3 || reply.SessionStatus != capture.StatusOpen {
		t.Fatalf("reply %+v", reply)
	}
	for _, res := range reply.Results {
		if res.Status != capture.CommitFailed || res.Error == nil || res.Error.Code != "alex_auth_failed" ||
			!strings.Contains(res.Error.Message, "sign in to Medtech ALEX") {
			t.Errorf("result %+v", res)
		}
	}
	if n := e.fake.MediaRequests(); n != 0 {
		t.Errorf("%d Media requests without a token", n)
	}
	for _, img := range e.session(sd.id).Images {
		if img.Commit.Status != capture.CommitFailed || img.Commit.AlexID != "" {
			t.Errorf("stored commit %+v", img.Commit)
		}
		if e.read(img.Key) == nil {
			t.Errorf("blob of %s deleted", img.ID)
		}
	}
	want := []string{EventImageCommitFailed, EventImageCommitFailed, EventImageCommitFailed}
	if got := eventTypes(e.events(sd.id)); !slices.Equal(got, want) {
		t.Errorf("events %v", got)
	}

	e.fake.SetTokenFault(alextest.TokenOK)
	if again := e.commit(Request{SessionID: sd.id}); again.Status != StatusCommitted || len(e.fake.Media()) != 3 {
		t.Errorf("after recovery: %+v", again)
	}
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
	if reply.Status != StatusFailed || e.fake.MediaRequests() != 1 {
		t.Fatalf("reply %+v, %d Media requests", reply, e.fake.MediaRequests())
	}
	for _, res := range reply.Results {
		if res.Error == nil || res.Error.Code != "alex_forbidden" || !strings.Contains(res.Error.Message, "not authorised") {
			t.Errorf("result %+v", res)
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
	if reply.Status != StatusCommitted || len(e.fake.Media()) != 3 || e.fake.MediaRequests() != 4 {
		t.Fatalf("reply %+v, %d Media, %d requests", reply, len(e.fake.Media()), e.fake.MediaRequests())
	}
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
	if reply.Status != StatusCommitted || len(media) != 3 || e.fake.MediaRequests() != 4 {
		t.Fatalf("reply %+v, %d Media, %d requests", reply, len(media), e.fake.MediaRequests())
	}
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
// with ALEX's diagnostics; the others are filed; its blob and the session
// stay for a later commit.
func TestCommitOneRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	sd := e.seed(3)
	bad := sd.images[1]
	diag := "Patient " + patientID + " is not accepting images"
	e.fake.RejectIdentifier(bad.ID, diag)

	reply := e.commit(Request{SessionID: sd.id})
	if reply.Status != StatusPartial || reply.Committed != 2 || reply.Failed != 1 || reply.SessionStatus != capture.StatusOpen {
		t.Fatalf("reply %+v", reply)
	}
	res := reply.Results[1]
	if res.ImageID != bad.ID || res.Status != capture.CommitFailed || res.Error == nil ||
		res.Error.Code != "alex_rejected" || res.Error.Message != diag || res.AlexID != "" {
		t.Errorf("rejected result %+v", res)
	}
	stored, _ := e.session(sd.id).Image(bad.ID)
	if stored.Commit.Status != capture.CommitFailed || stored.Commit.Error != diag {
		t.Errorf("stored commit %+v", stored.Commit)
	}
	if e.read(bad.Key) == nil {
		t.Error("the rejected image's blob was deleted")
	}
	var failed imageCommitFailedEvent
	for _, ev := range e.events(sd.id) {
		if ev.Type == EventImageCommitFailed {
			_ = json.Unmarshal(ev.Data, &failed)
		}
	}
	if failed.ImageID != bad.ID || failed.Error != *res.Error || failed.Image == nil ||
		failed.Image.Commit.Status != capture.CommitFailed {
		t.Errorf("image.commit_failed %+v", failed)
	}

	// A re-commit sends only the failed image.
	before := e.fake.MediaRequests()
	again := e.commit(Request{SessionID: sd.id})
	if e.fake.MediaRequests() != before+1 || again.Committed != 2 || again.Failed != 1 {
		t.Errorf("re-commit sent %d, reply %+v", e.fake.MediaRequests()-before, again)
	}
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
			if first.Status != StatusPartial || first.Results[0].Status != capture.CommitFailed ||
				first.Results[0].Error.Code != "alex_unavailable" || first.Committed != 2 {
				t.Fatalf("first %+v", first)
			}
			if len(e.fake.Media()) != 2 || e.fake.MediaRequests() != 6 {
				t.Fatalf("%d Media, %d requests", len(e.fake.Media()), e.fake.MediaRequests())
			}

			second := e.commit(Request{SessionID: sd.id})
			if second.Status != StatusCommitted || second.SessionStatus != capture.StatusCommitted {
				t.Fatalf("second %+v", second)
			}
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
	if reply.Results[0].Error == nil || reply.Results[0].Error.Code != "image_missing" ||
		reply.Results[1].Status != capture.CommitCommitted || e.fake.MediaRequests() != 1 {
		t.Fatalf("reply %+v, %d requests", reply, e.fake.MediaRequests())
	}
}

// Bytes replaced after registration (an upload URL cannot be revoked) are
// refused, whether the size or only the type changed; nothing reaches ALEX
// for that image.
func TestCommitReplacedBytes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	sd := e.seed(3)
	replace := func(img capture.Image, data []byte) {
		ctx := context.Background()
		up, err := e.blobs.PresignUpload(ctx, img.Key, "image/jpeg", int64(len(data)), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(up.Method, up.URL, bytes.NewReader(data))
		for k, v := range up.Headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode/100 != 2 {
			t.Fatalf("replace upload: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	sameSize := bytes.Repeat([]byte{'x'}, int(sd.images[0].Size))
	replace(sd.images[0], sameSize)
	replace(sd.images[1], append(e.read(sd.images[1].Key), 0))
	reply := e.commit(Request{SessionID: sd.id})
	for i, want := range []capture.CommitStatus{capture.CommitFailed, capture.CommitFailed, capture.CommitCommitted} {
		r := reply.Results[i]
		if r.Status != want || (want == capture.CommitFailed && (r.Error == nil || r.Error.Code != "image_changed")) {
			t.Fatalf("result %d = %+v, want %s", i, r, want)
		}
	}
	if e.fake.MediaRequests() != 1 {
		t.Fatalf("ALEX saw %d Media requests, want 1", e.fake.MediaRequests())
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
			e.setCommit(sd.id, sd.images[0].ID, capture.Commit{Status: CommitCommitting, ClaimedAt: time.Now().Add(-time.Hour)})
			reply := e.commit(Request{SessionID: sd.id})
			if reply.Status != StatusCommitted || len(e.fake.Media()) != 2 {
				t.Fatalf("reply %+v", reply)
			}
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
			e.setCommit(sd.id, sd.images[0].ID, capture.Commit{Status: CommitCommitting, ClaimedAt: time.Now()})
			reply := e.commit(Request{SessionID: sd.id})
			res := reply.Results[0]
			if res.Status != CommitCommitting || res.Error == nil || res.Error.Code != "commit_in_progress" ||
				reply.Status != StatusPartial || reply.Committed != 1 || reply.Failed != 0 || e.fake.MediaRequests() != 1 {
				t.Fatalf("reply %+v, %d requests", reply, e.fake.MediaRequests())
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
			e.setCommit(sd.id, sd.images[0].ID, capture.Commit{Status: CommitCommitting, ClaimedAt: time.Now()})
			go func() {
				time.Sleep(3 * pollInterval)
				e.setCommit(sd.id, sd.images[0].ID, capture.Commit{
					Status: capture.CommitCommitted, AlexID: "media-elsewhere", CommittedAt: time.Now()})
			}()
			reply := e.commit(Request{SessionID: sd.id})
			if reply.Status != StatusCommitted || reply.Results[0].AlexID != "media-elsewhere" ||
				reply.SessionStatus != capture.StatusCommitted || e.fake.MediaRequests() != 1 {
				t.Fatalf("reply %+v, %d requests", reply, e.fake.MediaRequests())
			}
		})
	}
}

// setCommit writes an image's commit state directly, as another request
// or node would have.
func (e *env) setCommit(sessionID, imageID string, c capture.Commit) {
	e.t.Helper()
	_, err := e.store.UpdateImage(context.Background(), sessionID, imageID, e.api.touch(), func(img *capture.Image) error {
		img.Commit = c
		return nil
	})
	if err != nil {
		e.t.Errorf("set commit: %v", err) // may run on another goroutine: no Fatal
	}
}
