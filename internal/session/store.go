package session

import (
	"context"
	"errors"
	"time"
)

// Store keeps capture sessions, their token indexes and their image lists.
// It has no clock and no policy: callers pass the time of each operation and,
// for writes that count as activity, the session's new expiry (Touch).
//
// Expiry is logical: a session whose ExpiresAt is at or before the caller's
// now is treated as gone by every method except Expired and Remove, whether
// or not its records still exist. Implementations may keep records a little
// longer so the sweeper can still clean up after it.
//
// Atomicity: every method is one atomic step with respect to the others on
// the same session, so concurrent registrations from one phone never lose an
// image and never take a session past its MaxImages.
//
// Tokens are passed and stored only as hashes (see HashToken); a Store never
// sees a raw token.
type Store interface {
	// Open stores s as a new open session with QR token qr, unless the
	// facility + encounter already has an open session: then that session
	// gets qr as its QR token (the previous one is superseded), its expiry
	// becomes s.ExpiresAt, and it is returned with created false. If that
	// session belongs to another patient, Open returns ErrPatientMismatch and
	// changes nothing. s.CreatedAt is the time of the operation. Either way
	// the session becomes s.ProviderID's latest (see ProviderSession).
	//
	// A new session is refused with ErrTooManySessions when its facility
	// already has maxOpen open sessions (zero: no cap); reusing the
	// encounter's session is never refused. The count and the admission are
	// one atomic step, so concurrent creates never pass the cap.
	Open(ctx context.Context, s Session, qr QRToken, maxOpen int) (Session, bool, error)

	// Get returns the session, or ErrNotFound if it does not exist or has
	// expired at now.
	Get(ctx context.Context, id string, now time.Time) (Session, error)

	// PeekQR returns the id of the session a QR token belongs to, if the
	// token can still be claimed. Errors: ErrTokenNotFound, ErrTokenExpired,
	// ErrTokenClaimed, ErrTokenSuperseded.
	PeekQR(ctx context.Context, qrHash string, now time.Time) (string, error)

	// Claim marks a QR token claimed, adds mobileHash to the session's
	// phones (phones connected before keep working: a session may have up
	// to MaxPhones at once), records the phone as connected and refreshes
	// the expiry. A token is claimed at most once. Errors as PeekQR, and
	// ErrTooManyPhones (the QR token stays unclaimed).
	Claim(ctx context.Context, qrHash, mobileHash string, at Touch) (Session, error)

	// ByMobile returns the live session of a phone whose mobile token has
	// this hash and has not been revoked. Errors: ErrTokenNotFound (unknown,
	// or session gone), ErrPhoneRevoked.
	ByMobile(ctx context.Context, mobileHash string, now time.Time) (Session, error)

	// Phone is ByMobile for the phone's own status check: it also returns a
	// session that has expired but is not yet removed (with Status
	// StatusExpired) and a phone that was revoked (active false), so the
	// phone can be told why it can no longer send. Errors: ErrTokenNotFound
	// (unknown hash, or session removed).
	Phone(ctx context.Context, mobileHash string, now time.Time) (s Session, active bool, err error)

	// RevokePhone stops one phone's mobile token for good: later calls with
	// it get ErrPhoneRevoked. The session's other phones keep working.
	// Revoking a revoked phone is not an error. Errors: ErrNotFound,
	// ErrTokenNotFound (not a phone of this session).
	RevokePhone(ctx context.Context, id, mobileHash string, now time.Time) error

	// ProviderSession returns the id of the session the facility's provider
	// opened or reopened last (Open records it), or "" if none is known. A
	// phone of any other session of that provider is told the desktop has
	// moved on to another patient.
	ProviderSession(ctx context.Context, facility, provider string) (string, error)

	// Reserve records a presigned upload of imageID, holding one image slot
	// until p.ExpiresAt. Re-reserving a pending image replaces its record.
	// Errors: ErrNotFound, ErrClosed, ErrImageExists (already registered),
	// ErrTooManyImages (images plus live pending uploads would pass
	// MaxImages), ErrQuotaExceeded (images plus every pending upload not yet
	// swept would pass MaxBytes). p.Key is recorded for the sweeper.
	Reserve(ctx context.Context, id, imageID string, p PendingUpload, at Touch) error

	// AddImage registers img and drops its pending record. It is idempotent
	// by img.ID: when the image is already registered it returns the stored
	// one with added false and changes nothing. Errors: ErrNotFound,
	// ErrClosed, ErrTooManyImages.
	AddImage(ctx context.Context, id string, img Image, at Touch) (Image, bool, error)

	// UpdateImage applies update to a copy of the image and stores the
	// result atomically. update may run more than once (optimistic retries),
	// so it must be free of side effects; an error from it aborts the update
	// and is returned as is. The image's ID, Key and SHA256 cannot change: they
	// name the checked bytes. Errors
	// also: ErrNotFound, ErrImageNotFound.
	UpdateImage(ctx context.Context, id, imageID string, at Touch, update func(*Image) error) (Image, error)

	// RemoveImage deletes a registered image that is not committed and
	// returns it. Errors: ErrNotFound, ErrImageNotFound, ErrImageCommitted,
	// ErrImageCommitting.
	RemoveImage(ctx context.Context, id, imageID string, at Touch) (Image, error)

	// SetStatus changes an unexpired session's status. Leaving StatusOpen
	// drops the facility + encounter index, so the next create for that
	// encounter starts a new session. Errors: ErrNotFound.
	SetStatus(ctx context.Context, id string, status Status, now time.Time) error

	// Expired returns up to limit ids of sessions whose expiry has passed at
	// now, each leased to the caller for lease: the caller deletes the
	// session's blobs, announces the expiry and calls Remove. A session not
	// removed when its lease ends is returned again (by any node). Sessions
	// refreshed since they were scheduled are not returned.
	Expired(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]string, error)

	// StaleUploads returns up to limit pending uploads whose URL expired at
	// or before before, each leased to the caller for lease (from now): the
	// caller deletes the blob at its Key and calls DropUpload. One not
	// dropped when its lease ends is returned again (by any node). Uploads
	// registered or re-signed since are not returned.
	StaleUploads(ctx context.Context, before, now time.Time, lease time.Duration, limit int) ([]StaleUpload, error)

	// DropUpload removes the pending upload of imageID if it is still the
	// one that expires at expiresAt (a re-signed upload is kept), freeing
	// its slot and its bytes of the quota. It does not refresh the session;
	// dropping what is gone is not an error.
	DropUpload(ctx context.Context, id, imageID string, expiresAt time.Time) error

	// PendingKeys returns the blob keys of a session's pending uploads
	// whether or not the session has expired, for the sweeper that removes
	// it; a removed session has none.
	PendingKeys(ctx context.Context, id string) ([]string, error)

	// Remove deletes a session and its indexes; removing a missing session
	// is not an error.
	Remove(ctx context.Context, id string) error

	// Ping reports whether the store is reachable, for /readyz.
	Ping(ctx context.Context) error
}

// Touch is the time of a write and the expiry it gives the session. An
// expiry only moves forward: a write stamped by a node whose clock lags
// never shortens a session. It never passes the session's Deadline either:
// stores clamp it, so no writer can keep a session alive forever.
type Touch struct {
	Now     time.Time
	Expires time.Time
}

// QRToken is a QR token as stored: its hash and when it stops being
// claimable.
type QRToken struct {
	Hash      string
	ExpiresAt time.Time
}

// Errors of Store methods. Their text never names a token or patient.
var (
	ErrNotFound        = errors.New("session: session not found")
	ErrClosed          = errors.New("session: session no longer accepts images")
	ErrPatientMismatch = errors.New("session: encounter already has a session for another patient")
	ErrTokenNotFound   = errors.New("session: token not found")
	ErrTokenExpired    = errors.New("session: token expired")
	ErrTokenClaimed    = errors.New("session: token already claimed")
	ErrTokenSuperseded = errors.New("session: token replaced by a newer QR code")
	ErrPhoneRevoked    = errors.New("session: phone disconnected from the session")
	ErrTooManyPhones   = errors.New("session: session has its maximum number of phones")
	ErrImageExists     = errors.New("session: image already registered")
	ErrImageNotFound   = errors.New("session: image not found")
	ErrTooManyImages   = errors.New("session: session has its maximum number of images")
	ErrImageCommitted  = errors.New("session: image already committed")
	ErrImageCommitting = errors.New("session: image is being filed now")
	ErrQuotaExceeded   = errors.New("session: session has used its storage quota")
	ErrTooManySessions = errors.New("session: facility has its maximum number of open sessions")
)

// SetCommit records an image's filing result atomically. A committed image
// stays committed: recording anything else over it returns
// ErrImageCommitted, so a retried or concurrent commit cannot file it twice
// or hide that it was filed. It does not refresh the session's expiry
// beyond at.Expires.
func SetCommit(ctx context.Context, st Store, sessionID, imageID string, c Commit, at Touch) (Image, error) {
	return st.UpdateImage(ctx, sessionID, imageID, at, func(img *Image) error {
		if img.Commit.Status == CommitCommitted {
			return ErrImageCommitted
		}
		img.Commit = c
		return nil
	})
}
