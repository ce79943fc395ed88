package commit

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/session"
	"github.com/handoff-health/handoff/internal/testutil"
)

// failedEvent returns the image.commit_failed event of an image, if any.
func (e *env) failedEvent(sessionID, imageID string) (imageCommitFailedEvent, bool) {
	for _, ev := range e.events(sessionID) {
		if ev.Type != EventImageCommitFailed {
			continue
		}
		var d imageCommitFailedEvent
		if json.Unmarshal(ev.Data, &d) == nil && d.ImageID == imageID {
			return d, true
		}
	}
	return imageCommitFailedEvent{}, false
}

func (e *env) committedEvent(sessionID, imageID string) bool {
	for _, ev := range e.events(sessionID) {
		var d imageCommittedEvent
		if ev.Type == EventImageCommitted && json.Unmarshal(ev.Data, &d) == nil && d.ImageID == imageID {
			return true
		}
	}
	return false
}

// cancel posts a commit cancel and decodes the 200 reply.
func (e *env) cancel(req CancelRequest) CancelReply {
	e.t.Helper()
	status, body := e.postTo("/api/medtech/session/commit/cancel", e.jwt, req)
	if status != http.StatusOK {
		e.t.Fatalf("cancel: %d %s", status, body)
	}
	var r CancelReply
	if err := json.Unmarshal(body, &r); err != nil {
		e.t.Fatal(err)
	}
	return r
}

// Issue 15: a hanging ALEX held the commit request (and the GP) for two
// minutes. Now the request answers within Wait with the hanging photo
// "committing"; another photo files meanwhile; Cancel stops the hanging
// one, which reports commit_cancelled by event; Retry then files it.
func TestCommitHangingALEXIsBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: Config{Wait: 300 * time.Millisecond}, alexTimeout: time.Minute})
	sd := e.seed(2)
	hanging, other := sd.images[0], sd.images[1]
	e.fake.StallNext(1)

	first := e.commit(Request{SessionID: sd.id, ImageIDs: []string{hanging.ID}})
	testutil.Check(t, "first: result status", CommitCommitting, first.Results[0].Status)
	testutil.Check(t, "first: committing count", 1, first.Committing)
	testutil.Check(t, "first: reply status", StatusPartial, first.Status)
	if img, _ := e.session(sd.id).Image(hanging.ID); img.Commit.Status != CommitCommitting {
		t.Errorf("stored status of the hanging photo %q, want committing", img.Commit.Status)
	}

	second := e.commit(Request{SessionID: sd.id, ImageIDs: []string{other.ID}})
	testutil.Check(t, "second photo filed meanwhile", session.CommitCommitted, second.Results[0].Status)

	got := e.cancel(CancelRequest{SessionID: sd.id, ImageIDs: []string{hanging.ID}})
	testutil.Equal(t, "cancel reply", CancelReply{SessionID: sd.id, Cancelled: []string{hanging.ID}, NotRunning: []string{}}, got)
	var failed imageCommitFailedEvent
	testutil.Eventually(t, "image.commit_failed of the cancelled photo", func() bool {
		var ok bool
		failed, ok = e.failedEvent(sd.id, hanging.ID)
		return ok
	})
	testutil.Check(t, "cancelled: code", "commit_cancelled", failed.Error.Code)
	if !strings.Contains(failed.Error.NextStep, "Retry") {
		t.Errorf("cancelled: next step %q does not say Retry", failed.Error.NextStep)
	}
	testutil.Check(t, "Media at ALEX after cancel", 1, len(e.fake.Media()))
	img, _ := e.session(sd.id).Image(hanging.ID)
	testutil.Check(t, "stored status after cancel", session.CommitFailed, img.Commit.Status)

	again := e.commit(Request{SessionID: sd.id, ImageIDs: []string{hanging.ID}})
	testutil.Check(t, "retry: status", session.CommitCommitted, again.Results[0].Status)
	testutil.Check(t, "retry: session closed", session.StatusCommitted, again.SessionStatus)

	if n := len(e.auditLinesOf("commit_cancel")); n != 1 {
		t.Errorf("%d cancel audit lines, want 1", n)
	}
	e.assertNoPHI()
}

// An image still in flight at the reply goes on in the background and
// reports by event; the background line of the audit log says how it
// ended, and a filing that ends the session closes it.
func TestCommitFinishesInBackground(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: Config{Wait: 200 * time.Millisecond}, alexTimeout: time.Second})
	sd := e.seed(1)
	e.fake.StallNext(1) // the first attempt times out after 1 s; the retry files it
	reply := e.commit(Request{SessionID: sd.id})
	testutil.Check(t, "reply: result status", CommitCommitting, reply.Results[0].Status)
	testutil.Eventually(t, "image.committed from the background", func() bool { return e.committedEvent(sd.id, sd.images[0].ID) })
	testutil.Eventually(t, "session closed by the background commit", func() bool {
		return e.session(sd.id).Status == session.StatusCommitted
	})
	testutil.Eventually(t, "background audit line", func() bool { return len(e.auditLinesOf("commit_background")) == 1 })
	line := e.auditLinesOf("commit_background")[0]
	testutil.Check(t, "background audit: result", "committed", line["result"])
	testutil.Check(t, "background audit: committed", 1.0, line["committed"])
}

// Cancel: bad input is a clear 4xx, another facility's session is a 404,
// and images nobody is filing come back as not running.
func TestCommitCancelInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	sd := e.seed(1)
	for _, c := range []struct {
		name   string
		jwt    string
		body   any
		status int
	}{
		{"no session id", e.jwt, `{}`, http.StatusBadRequest},
		{"unknown field", e.jwt, `{"sessionId":"` + sd.id + `","x":1}`, http.StatusBadRequest},
		{"unknown session", e.jwt, CancelRequest{SessionID: "9b2f0c0e-0000-4000-8000-000000000000"}, http.StatusNotFound},
		{"unknown image", e.jwt, CancelRequest{SessionID: sd.id, ImageIDs: []string{"nope"}}, http.StatusNotFound},
		{"other facility", e.token("OTHER-FAC"), CancelRequest{SessionID: sd.id}, http.StatusNotFound},
		{"no token", "", CancelRequest{SessionID: sd.id}, http.StatusUnauthorized},
	} {
		if status, body := e.postTo("/api/medtech/session/commit/cancel", c.jwt, c.body); status != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, status, body, c.status)
		}
	}
	got := e.cancel(CancelRequest{SessionID: sd.id})
	testutil.Equal(t, "idle cancel", CancelReply{SessionID: sd.id, Cancelled: []string{}, NotRunning: []string{sd.images[0].ID}}, got)
}

// Issue 15: an outbox write failure was reported as "Could not reach
// Medtech ALEX" and the log had no cause. Now the GP reads it is a disk
// error of this server and nothing was sent, and the log names the OS's
// reason without the Media file's path (which holds the ids).
func TestCommitOutboxWriteFailure(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "alex-outbox")
	e := newEnv(t, envOptions{outbox: dir})
	sd := e.seed(2)
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil { // fails for root too
		t.Fatal(err)
	}
	reply := e.commit(Request{SessionID: sd.id})
	for i, res := range reply.Results {
		checkFailure(t, "result", session.CommitFailed, "outbox_write_failed", res)
		if res.Error != nil && res.Error.Message != "Could not save the filing on this server (disk error). Nothing was sent to Medtech." {
			t.Errorf("result %d: message %q", i, res.Error.Message)
		}
	}
	log := e.log.String()
	if !strings.Contains(log, "ALEX outbox write failed") || !strings.Contains(log, "not a directory") {
		t.Errorf("log does not name the cause:\n%s", log)
	}
	for _, img := range sd.images {
		if strings.Contains(log, img.ID) {
			t.Errorf("log names image id %s (a path leaked)", img.ID)
		}
	}
	e.assertNoPHI()
}

// auditLinesOf returns the decoded log lines with this audit value.
func (e *env) auditLinesOf(audit string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(e.log.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["audit"] == audit {
			out = append(out, m)
		}
	}
	return out
}
