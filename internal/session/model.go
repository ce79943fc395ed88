package session

import (
	"slices"
	"strings"
	"time"
)

// Status is the life stage of a capture session.
type Status string

const (
	// StatusOpen accepts uploads; it is the only status the facility +
	// encounter index points at.
	StatusOpen Status = "open"
	// StatusCommitted is set by the committer once a session is filed; it
	// accepts no more uploads, and a new create for the encounter starts a
	// fresh session.
	StatusCommitted Status = "committed"
	// StatusExpired is set by the sweeper just before it removes a session.
	StatusExpired Status = "expired"
)

// CommitStatus is where one image is in being filed to ALEX.
type CommitStatus string

const (
	CommitPending   CommitStatus = "pending"
	CommitCommitted CommitStatus = "committed"
	// CommitCommitting marks an image a commit request has claimed and is
	// filing now; ClaimedAt says since when. Edits and deletes are refused
	// meanwhile, so what reaches the record is what the GP saw.
	CommitCommitting CommitStatus = "committing"
	CommitFailed     CommitStatus = "failed"
)

// MaxPhones bounds the phones connected to one session at once. Every new
// QR code adds a phone rather than replacing one (a photo in flight from
// the first phone must not be lost), so the list needs a bound; a GP uses
// one phone, rarely two, and ten leaves room for a dead battery or two.
const MaxPhones = 10

// DefaultTTL is how long a session lives after its last write (create,
// claim, upload, register, edit, delete, commit). It matches the hub's
// history TTL: nobody resumes a channel whose session is gone.
const DefaultTTL = 2 * time.Hour

// Session is one capture session as the store keeps it. Values returned by a
// Store are copies: changing them changes nothing stored.
type Session struct {
	ID             string `json:"id"`
	Facility       string `json:"facility"`
	EncounterID    string `json:"encounterId"`
	PatientID      string `json:"patientId"`
	PatientNHI     string `json:"patientNhi,omitempty"`
	PatientDisplay string `json:"patientDisplay,omitempty"`
	// PatientDOB is the date of birth as the host gave it (YYYY-MM-DD), or
	// empty; the phone shows it beside the name and NHI.
	PatientDOB string `json:"patientDob,omitempty"`
	ProviderID string `json:"providerId,omitempty"`
	MaxImages  int    `json:"maxImages"`
	// MaxBytes is the session's byte quota: the sizes of its images and of
	// its pending uploads (expired or not, until the sweeper deletes their
	// blobs) together. Zero means no quota.
	MaxBytes  int64     `json:"maxBytes,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	// Deadline is the end of the session's life however busy it is: no
	// write moves ExpiresAt past it. Zero means no deadline.
	Deadline time.Time `json:"deadline,omitzero"`

	// The fields below change during the session's life; stores keep them
	// apart from the fixed ones above.
	Status            Status    `json:"-"`
	ExpiresAt         time.Time `json:"-"`
	MobileConnectedAt time.Time `json:"-"` // zero until a phone claims
	// Phones counts the phones whose mobile token still works: claimed and
	// not revoked.
	Phones int `json:"-"`
	// Images are ordered by CreatedAt, then ID.
	Images []Image `json:"-"`
	// Pending holds the uploads presigned but not yet registered, by image id.
	Pending map[string]PendingUpload `json:"-"`
}

// Remaining is how many more images the session can take at now: its
// maximum less its images and the uploads signed and not yet expired.
func (s Session) Remaining(now time.Time) int {
	return max(0, s.MaxImages-liveSlots(len(s.Images), s.Pending, "", now))
}

// Channel returns the session's realtime channel.
func (s Session) Channel() string { return Channel(s.ID) }

// ChannelPrefix starts the name of every capture session's channel.
const ChannelPrefix = "session:"

// Channel returns the realtime channel of the session with this id, where
// the capture API and the committer publish its events.
func Channel(id string) string { return ChannelPrefix + id }

// Image returns the session's image with id imageID.
func (s Session) Image(imageID string) (Image, bool) {
	for _, img := range s.Images {
		if img.ID == imageID {
			return img, true
		}
	}
	return Image{}, false
}

// Image is one registered photo.
type Image struct {
	ID          string `json:"id"`
	Key         string `json:"key"`
	ContentType string `json:"contentType"`
	Size        int64  `json:"size"`
	// SHA256 is the lower-case hex SHA-256 of the bytes register checked and
	// stored under Key; commit files only bytes with this hash. Empty on
	// images registered before it was recorded, which commit refuses.
	SHA256    string    `json:"sha256,omitempty"`
	Metadata  Metadata  `json:"metadata"`
	CreatedAt time.Time `json:"createdAt"`
	Commit    Commit    `json:"commit"`
}

// Metadata is what the GP says about an image; it goes into the FHIR Media.
type Metadata struct {
	Laterality string   `json:"laterality,omitempty"`
	BodySite   BodySite `json:"bodySite,omitzero"`
	Notes      string   `json:"notes,omitempty"`
}

// BodySite is a coded body site, normally SNOMED CT.
type BodySite struct {
	System  string `json:"system"`
	Code    string `json:"code"`
	Display string `json:"display,omitempty"`
}

// Commit is an image's filing state, written by the committer through
// Store.UpdateImage (see SetCommit).
type Commit struct {
	Status      CommitStatus `json:"status"`
	AlexID      string       `json:"alexId,omitempty"`
	Error       string       `json:"error,omitempty"`
	CommittedAt time.Time    `json:"committedAt,omitzero"`
	// ClaimedAt is when a commit request claimed the image (status
	// committing); it names the claim. RenewedAt is when that request last
	// renewed it (zero: not yet). The claim lapses one committer's lease
	// after the later of the two.
	ClaimedAt time.Time `json:"claimedAt,omitzero"`
	RenewedAt time.Time `json:"renewedAt,omitzero"`
}

// Editable refuses changes to an image that is filed or being filed:
// ErrImageCommitted or ErrImageCommitting.
func (c Commit) Editable() error {
	switch c.Status {
	case CommitCommitted:
		return ErrImageCommitted
	case CommitCommitting:
		return ErrImageCommitting
	}
	return nil
}

// PendingUpload is what was signed for an image not yet registered; the
// register step checks the stored object against it.
type PendingUpload struct {
	// Key is the blob key the upload URL writes; the sweeper deletes it if
	// the URL expires without a register.
	Key         string
	ContentType string
	Size        int64
	// ExpiresAt is when the upload URL expires; until then the upload holds
	// one of the session's image slots.
	ExpiresAt time.Time
}

// clampExpiry returns exp, or the deadline if exp would pass it.
func clampExpiry(exp, deadline time.Time) time.Time {
	if !deadline.IsZero() && exp.After(deadline) {
		return deadline
	}
	return exp
}

// usedBytes is what a session stores or may soon store: its images and
// every pending upload other than except (expired ones too: their blobs
// exist until the sweeper deletes them).
func usedBytes(images []Image, pending map[string]PendingUpload, except string) int64 {
	var n int64
	for _, img := range images {
		n += img.Size
	}
	for id, p := range pending {
		if id != except {
			n += p.Size
		}
	}
	return n
}

// StaleUpload is a pending upload whose URL expired without a register: its
// blob, if the phone uploaded one, holds disk and quota for nothing.
type StaleUpload struct {
	SessionID string
	ImageID   string
	PendingUpload
}

// sortImages puts images in the order every store returns them.
func sortImages(imgs []Image) {
	slices.SortFunc(imgs, func(a, b Image) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// liveSlots counts the images and the pending uploads (other than except)
// whose URL has not expired at now: what a new upload competes with.
func liveSlots(images int, pending map[string]PendingUpload, except string, now time.Time) int {
	n := images
	for id, p := range pending {
		if id != except && now.Before(p.ExpiresAt) {
			n++
		}
	}
	return n
}
