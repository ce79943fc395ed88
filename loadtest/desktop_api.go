package loadtest

import (
	"context"
	"fmt"
	"net/http"
)

// deskAPI is a desktop's HTTP side: the calls the widget makes with the
// GP's JWT.
type deskAPI struct {
	hc    *http.Client
	base  string
	rec   *recorder
	token func(context.Context) (string, error)
}

type created struct {
	SessionID string `json:"sessionId"`
	Token     string `json:"token"`
	Channel   string `json:"channel"`
}

// create opens a capture session for a fresh encounter and mints its QR
// token.
func (d *deskAPI) create(ctx context.Context, encounterID, patientID string) (created, error) {
	var reply created
	err := d.do(ctx, StepCreate, "create", http.MethodPost, "/api/medtech/session/tokens", map[string]any{
		// A fictional patient: the API requires a name and an NHI, and
		// Z-prefixed NHIs are never issued to a real person.
		"encounterId": encounterID, "patientId": patientID,
		"patientDisplay": "Load Test", "patientNhi": "ZZZ0024", "patientDob": "1970-01-01",
	}, http.StatusCreated, &reply)
	if err == nil && reply.Channel == "" {
		reply.Channel = "session:" + reply.SessionID
	}
	return reply, err
}

type snapshot struct {
	Status string `json:"status"`
	Images []struct {
		ID string `json:"id"`
	} `json:"images"`
}

// snapshot fetches the session and checks it holds exactly the images the
// phone registered, still open for commit.
func (d *deskAPI) snapshot(ctx context.Context, sessionID string, registered []string) error {
	var s snapshot
	if err := d.do(ctx, StepSnapshot, "snapshot", http.MethodGet, "/api/medtech/session/"+sessionID, nil, http.StatusOK, &s); err != nil {
		return err
	}
	have := make(map[string]bool, len(s.Images))
	for _, img := range s.Images {
		have[img.ID] = true
	}
	missing := 0
	for _, id := range registered {
		if !have[id] {
			missing++
		}
	}
	if missing > 0 || len(s.Images) != len(registered) || s.Status != "open" {
		return &stepError{"snapshot: mismatch", fmt.Errorf("status %q, %d images, %d registered images missing", s.Status, len(s.Images), missing)}
	}
	return nil
}

type commitReply struct {
	Status        string `json:"status"`
	SessionStatus string `json:"sessionStatus"`
	Results       []struct {
		ImageID string `json:"imageId"`
		Status  string `json:"status"`
	} `json:"results"`
	Committed int `json:"committed"`
	Failed    int `json:"failed"`
}

// commit files every image of the session and returns the reply.
func (d *deskAPI) commit(ctx context.Context, sessionID string) (commitReply, error) {
	var reply commitReply
	err := d.do(ctx, StepCommit, "commit", http.MethodPost, "/api/medtech/session/commit",
		map[string]any{"sessionId": sessionID}, http.StatusOK, &reply)
	return reply, err
}

// sessionClosed reports whether the commit closed the session, so
// session.committed is owed. Replies without sessionStatus (the contract
// as first announced) say so by an all-committed status.
func (c commitReply) sessionClosed() bool {
	if c.SessionStatus != "" {
		return c.SessionStatus == "committed"
	}
	return c.Status == "committed"
}

func (d *deskAPI) do(ctx context.Context, s Step, step, method, path string, body any, want int, out any) error {
	jwt, err := d.token(ctx)
	if err != nil {
		return &stepError{step + ": token", err}
	}
	return timed(d.rec, s, func() error {
		return call(ctx, d.hc, step, method, d.base+path, jwt, body, want, out)
	})
}
