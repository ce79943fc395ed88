package capture

import (
	"context"
	"time"

	"github.com/handoff-health/handoff/internal/session"
)

// ImageView is session.ImageView, the shape of an image in snapshots and
// events; the alias keeps this package's handlers and tests short.
type ImageView = session.ImageView

// ImageView signs a download URL for img; the committer uses it (through
// its ImageViewer) for the data of its events.
func (a *API) ImageView(ctx context.Context, img session.Image) (ImageView, error) {
	now := a.now().UTC()
	url, err := a.blobs.PresignGet(ctx, img.Key, a.cfg.DownloadURLTTL)
	if err != nil {
		return ImageView{}, err
	}
	return ImageView{
		ID:           img.ID,
		ContentType:  img.ContentType,
		Size:         img.Size,
		Metadata:     img.Metadata,
		URL:          url,
		URLExpiresAt: now.Add(a.cfg.DownloadURLTTL).Truncate(time.Second),
		CreatedAt:    img.CreatedAt.UTC(),
		Commit:       img.Commit,
	}, nil
}

func (a *API) imageViews(ctx context.Context, imgs []session.Image) ([]ImageView, error) {
	out := make([]ImageView, 0, len(imgs))
	for _, img := range imgs {
		v, err := a.ImageView(ctx, img)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// snapshotReply is GET /api/medtech/session/{sessionId}.
type snapshotReply struct {
	SessionID       string         `json:"sessionId"`
	Status          session.Status `json:"status"`
	EncounterID     string         `json:"encounterId"`
	PatientDisplay  string         `json:"patientDisplay,omitempty"`
	PatientNHI      string         `json:"patientNhi,omitempty"`
	PatientDOB      string         `json:"patientDob,omitempty"`
	MaxImages       int            `json:"maxImages"`
	Images          []ImageView    `json:"images"`
	MobileConnected bool           `json:"mobileConnected"`
	// Phones counts the phones connected now (claimed, not revoked).
	Phones    int       `json:"phones"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt"`
	// DeleteAt is when the session's unfiled photos will be deleted: its
	// expiry, capped by its absolute lifetime. Activity moves it later,
	// up to the lifetime; the desktop counts down to it (issue 15).
	DeleteAt time.Time `json:"deleteAt"`
	Channel  string    `json:"channel"`
	Cursor   string    `json:"cursor"`
}

// createReply is POST /api/medtech/session/tokens.
type createReply struct {
	SessionID        string    `json:"sessionId"`
	Token            string    `json:"token"`
	MobileURL        string    `json:"mobileUrl"`
	QRURL            string    `json:"qrUrl"`
	ExpiresAt        time.Time `json:"expiresAt"`
	SessionExpiresAt time.Time `json:"sessionExpiresAt"`
	Channel          string    `json:"channel"`
	Created          bool      `json:"created"`
}

// claimReply is GET /api/medtech/session/tokens/{token}.
type claimReply struct {
	SessionID      string    `json:"sessionId"`
	PatientDisplay string    `json:"patientDisplay,omitempty"`
	PatientNHI     string    `json:"patientNhi,omitempty"`
	PatientDOB     string    `json:"patientDob,omitempty"`
	MaxImages      int       `json:"maxImages"`
	MaxImageBytes  int64     `json:"maxImageBytes"`
	ImageCount     int       `json:"imageCount"`
	Remaining      int       `json:"remaining"`
	ExpiresAt      time.Time `json:"expiresAt"`
	MobileToken    string    `json:"mobileToken"`
}

// mobileViewReply is GET /api/medtech/session/mobile: the phone's view of
// its session, which it checks before each photo and while it is open.
type mobileViewReply struct {
	SessionID      string    `json:"sessionId"`
	Status         string    `json:"status"`
	PatientDisplay string    `json:"patientDisplay,omitempty"`
	PatientNHI     string    `json:"patientNhi,omitempty"`
	PatientDOB     string    `json:"patientDob,omitempty"`
	ImageCount     int       `json:"imageCount"`
	MaxImages      int       `json:"maxImages"`
	Remaining      int       `json:"remaining"`
	ExpiresAt      time.Time `json:"expiresAt"`
	PhoneActive    bool      `json:"phoneActive"`
}

// Event payloads other than image.added (which carries an ImageView).
type (
	mobileConnectedEvent struct {
		SessionID   string    `json:"sessionId"`
		ConnectedAt time.Time `json:"connectedAt"`
	}
	mobileRejectedEvent struct {
		SessionID string    `json:"sessionId"`
		At        time.Time `json:"at"`
	}
	imageRemovedEvent struct {
		SessionID string `json:"sessionId"`
		ImageID   string `json:"imageId"`
	}
	sessionExpiredEvent struct {
		SessionID string `json:"sessionId"`
	}
)

// deleteAt is when the sweeper may delete s and its photos: its expiry,
// never later than its deadline (stores already clamp ExpiresAt to it;
// this keeps the snapshot honest should one not).
func deleteAt(s session.Session) time.Time {
	if !s.Deadline.IsZero() && s.Deadline.Before(s.ExpiresAt) {
		return s.Deadline
	}
	return s.ExpiresAt
}
