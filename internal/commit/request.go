package commit

import (
	"net/http"
	"slices"

	"github.com/handoff-health/handoff/internal/httpx"
	"github.com/handoff-health/handoff/internal/session"
)

// Request is the body of POST /api/medtech/session/commit.
type Request struct {
	SessionID string `json:"sessionId"`
	// ImageIDs selects the images to commit; absent or empty means every
	// image of the session. Repeated ids count once.
	ImageIDs []string `json:"imageIds,omitempty"`
	// Metadata holds the desktop's last edits of selected images, by image
	// id, stored on the image (see MetadataOverride) before it is filed. An
	// edit of an image already committed, or being committed by another
	// request, is ignored: the session keeps what the record says.
	Metadata map[string]MetadataOverride `json:"metadata,omitempty"`
}

// Reply is the answer to a commit request.
type Reply struct {
	SessionID string `json:"sessionId"`
	// Status sums up the selected images: "committed" when all are filed,
	// "failed" when none is, "partial" otherwise.
	Status string `json:"status"`
	// SessionStatus is the session's status after the request: "committed"
	// once every image of the session is filed.
	SessionStatus session.Status `json:"sessionStatus"`
	Results       []Result       `json:"results"`
	Committed     int            `json:"committed"`
	Failed        int            `json:"failed"`
	// Committing counts the results still being filed (status committing).
	Committing int `json:"committing"`
}

// Reply.Status values.
const (
	StatusCommitted = "committed"
	StatusPartial   = "partial"
	StatusFailed    = "failed"
)

// Result is the outcome for one selected image.
type Result struct {
	ImageID string `json:"imageId"`
	// Status is session.CommitCommitted or session.CommitFailed, or
	// CommitCommitting when the image was still being filed when the reply
	// was due (Config.Wait): by this request in the background, or by a
	// concurrent one. Its image.committed or image.commit_failed event
	// tells the outcome.
	Status session.CommitStatus `json:"status"`
	AlexID string               `json:"alexId,omitempty"`
	Error  *ErrorInfo           `json:"error,omitempty"`
}

// ErrorInfo says why an image was not filed. Message and NextStep are
// meant for the GP, in plain words; ALEX's own answer (status, FHIR issue
// code, diagnostics) is never the message but Details, which the desktop
// shows collapsed, for the practice's IT person.
type ErrorInfo struct {
	Code     string `json:"code"`
	Message  string `json:"message"`
	NextStep string `json:"nextStep,omitempty"`
	Details  string `json:"details,omitempty"`
}

var (
	errSessionNotFound = httpx.Errorf(http.StatusNotFound, "session_not_found", "no such capture session")
	errImageNotFound   = httpx.Errorf(http.StatusNotFound, "image_not_found", "no such image in this session")
	errNoImages        = httpx.Errorf(http.StatusUnprocessableEntity, "no_images", "the session has no images to commit")
)

// check validates what can be checked without the session. Messages name
// fields and rules, never values: notes and body sites may be PHI.
func (req *Request) check() error {
	if req.SessionID == "" {
		return httpx.Errorf(http.StatusBadRequest, "invalid_field", "sessionId is required")
	}
	for _, m := range req.Metadata {
		if err := m.check(); err != nil {
			return err
		}
	}
	return nil
}

// selectImages returns the images req selects, in session order. Every id
// named in ImageIDs or Metadata must be an image of the session, and
// metadata may only be given for a selected image; otherwise nothing is
// done at all.
func selectImages(s session.Session, req Request) ([]session.Image, error) {
	if len(s.Images) == 0 {
		return nil, errNoImages
	}
	for _, id := range req.ImageIDs {
		if _, ok := s.Image(id); !ok {
			return nil, errImageNotFound
		}
	}
	selected := func(id string) bool { return len(req.ImageIDs) == 0 || slices.Contains(req.ImageIDs, id) }
	for id := range req.Metadata {
		if _, ok := s.Image(id); !ok {
			return nil, errImageNotFound
		}
		if !selected(id) {
			return nil, httpx.Errorf(http.StatusBadRequest, "invalid_field",
				"metadata may only be given for images listed in imageIds")
		}
	}
	var out []session.Image
	for _, img := range s.Images {
		if selected(img.ID) {
			out = append(out, img)
		}
	}
	return out, nil
}

// summarize sets the counts and overall status of r from its results.
func (r *Reply) summarize() {
	r.Committed, r.Failed, r.Committing = 0, 0, 0
	for _, res := range r.Results {
		switch res.Status {
		case session.CommitCommitted:
			r.Committed++
		case session.CommitFailed:
			r.Failed++
		case CommitCommitting:
			r.Committing++
		}
	}
	switch {
	case r.Committed == len(r.Results):
		r.Status = StatusCommitted
	case r.Committed == 0 && r.Failed == len(r.Results):
		r.Status = StatusFailed
	default:
		r.Status = StatusPartial
	}
}
