package capture

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/blob"
	"github.com/handoff-health/handoff/internal/session"
)

// Defaults of the capture API, gathered in one place with the reason for each.
const (
	// DefaultMaxImages caps one session: a wound series is a handful of
	// photos, and the cap bounds what one phone can make the server store.
	DefaultMaxImages = 20

	// DefaultMaxImageBytes caps one image. Phone cameras produce 2-12 MB
	// JPEG/HEIC files; 20 MiB leaves headroom and stays under the blob
	// store's own default limit (blob.DefaultMaxBytes, 25 MiB).
	DefaultMaxImageBytes int64 = 20 << 20

	// DefaultMaxImagePixels caps the width × height an image's header may
	// declare. The largest phone photos are 48-50 MP (a 50 MP sensor's
	// full-resolution mode); anything larger is not a clinical phone photo
	// and would cost any viewer that decodes it over 200 MB of memory.
	DefaultMaxImagePixels int64 = 50_000_000

	// DefaultQRTokenTTL is how long a QR code can be claimed: long enough to
	// find the phone and scan, short enough that a photo of the screen taken
	// later is useless.
	DefaultQRTokenTTL = 10 * time.Minute

	// DefaultSessionTTL is how long a session lives after its last write:
	// session.DefaultTTL, which says why.
	DefaultSessionTTL = session.DefaultTTL

	// DefaultUploadURLTTL bounds a signed upload URL: a phone starts the
	// upload right after asking, so a leaked URL is soon useless.
	DefaultUploadURLTTL = 5 * time.Minute

	// DefaultDownloadURLTTL bounds a signed image URL in a snapshot or event:
	// long enough for the desktop to show and review a session.
	DefaultDownloadURLTTL = time.Hour

	// DefaultClaimsPerMinute and DefaultClaimBurst limit QR claims per client
	// address. A clinic's phones may share one NAT address, so the limit is
	// generous for people and useless for guessing 128-bit tokens anyway; it
	// mainly bounds the work a hostile client can cause.
	DefaultClaimsPerMinute = 10
	DefaultClaimBurst      = 5

	// DefaultSweepInterval is how often expired sessions are looked for.
	DefaultSweepInterval = time.Minute

	// DefaultMaxSessionBytes is a session's byte quota: its images plus its
	// uploads not yet registered, until the sweeper deletes them. The phone
	// page re-encodes each photo to at most 2048 px JPEG (0.3-2 MB), so a
	// full series of DefaultMaxImages stays under 40 MB; 100 MiB leaves room
	// for a few full-size originals, and bounds what one stolen mobile token
	// can make the server store to a quarter of MaxImages × MaxImageBytes.
	DefaultMaxSessionBytes int64 = 100 << 20

	// DefaultMaxSessionLifetime is the absolute end of a session, counted
	// from its creation, however often it is written to. A capture session
	// serves one consultation; 12 h outlasts the longest clinic day, so no
	// session in use is cut off, while a leaked mobile token is dead by the
	// evening even if it keeps presigning.
	DefaultMaxSessionLifetime = 12 * time.Hour

	// DefaultMaxOpenSessionsPerFacility caps a facility's open sessions. A
	// large practice has a few dozen clinicians with a session or two each
	// open at once (sessions close at commit or after DefaultSessionTTL
	// idle); 200 is far above that, and bounds what one facility's JWT or a
	// runaway host integration can make the server hold to 200 ×
	// MaxSessionBytes.
	DefaultMaxOpenSessionsPerFacility = 200

	// maxBody bounds the JSON bodies of this API; they are small metadata
	// (the longest field, notes, is session.MaxNotesLen characters).
	maxBody = 16 << 10

	// sweepBatch and sweepLease: each sweep takes up to sweepBatch sessions
	// and holds them for sweepLease, after which a node that crashed mid-sweep
	// has its sessions picked up again by any node.
	sweepBatch = 100
	sweepLease = 5 * time.Minute

	// uploadSweepGrace is how long after its URL expired an unregistered
	// upload is left alone: the phone registers right after its upload ends,
	// so a register still on its way this late is not one to wait for, and
	// the sweeper never deletes a blob a register is checking.
	uploadSweepGrace = 2 * time.Minute
)

// Config configures the capture API. Every field's zero value is a sound
// default except PublicURL, which is required.
type Config struct {
	// PublicURL is the server's base URL as phones and desktops reach it,
	// e.g. "https://handoff.clinic.example". The QR code encodes
	// PublicURL + "/m/{token}", so it must be absolute and reachable from the
	// phone. Required: New fails without it.
	PublicURL string
	// MaxImages caps the images of one session. Zero means DefaultMaxImages.
	MaxImages int
	// MaxImageBytes caps one image. Zero means DefaultMaxImageBytes. It must
	// not exceed the blob store's own limit.
	MaxImageBytes int64
	// MaxImagePixels caps the pixels (width × height) an image's header may
	// declare; register refuses larger ones. Zero means DefaultMaxImagePixels.
	MaxImagePixels int64
	// QRTokenTTL is how long a QR token can be claimed. Zero means
	// DefaultQRTokenTTL.
	QRTokenTTL time.Duration
	// SessionTTL is how long a session lives after its last write. Zero
	// means DefaultSessionTTL.
	SessionTTL time.Duration
	// UploadURLTTL bounds signed upload URLs. Zero means DefaultUploadURLTTL.
	UploadURLTTL time.Duration
	// DownloadURLTTL bounds signed image URLs. Zero means
	// DefaultDownloadURLTTL.
	DownloadURLTTL time.Duration
	// ClaimsPerMinute is the steady rate of QR claims allowed per client
	// address (this node only). Zero means DefaultClaimsPerMinute; a negative
	// value turns the limit off.
	ClaimsPerMinute float64
	// ClaimBurst is how many claims an address may make at once. Zero means
	// DefaultClaimBurst.
	ClaimBurst int
	// SweepInterval is how often RunSweeper looks for expired sessions. Zero
	// means DefaultSweepInterval.
	SweepInterval time.Duration

	// MaxSessionBytes is a session's byte quota, registered and pending
	// uploads together. Zero means DefaultMaxSessionBytes, or MaxImageBytes
	// if that is larger; set, it must be at least MaxImageBytes.
	MaxSessionBytes int64
	// MaxSessionLifetime is how long after its creation a session ends,
	// however active. Zero means DefaultMaxSessionLifetime; it must not be
	// shorter than SessionTTL.
	MaxSessionLifetime time.Duration
	// MaxOpenSessionsPerFacility caps the open sessions of one facility.
	// Zero means DefaultMaxOpenSessionsPerFacility.
	MaxOpenSessionsPerFacility int
}

// Deps are the collaborators of the capture API. All are required except
// Log (zero value: a disabled logger) and Now (nil: time.Now).
type Deps struct {
	Hub      *hub.Hub
	Sessions session.Store
	Blobs    blob.Store
	Verifier *auth.Verifier
	Log      zerolog.Logger
	Now      func() time.Time
}

// withDefaults returns cfg with zero values replaced and checks the rest.
func (cfg Config) withDefaults() (Config, error) {
	u, err := url.Parse(cfg.PublicURL)
	if cfg.PublicURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" {
		return cfg, fmt.Errorf("capture: PublicURL %q must be an absolute http(s) URL the phone can reach", cfg.PublicURL)
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	setDefault(&cfg.MaxImages, DefaultMaxImages)
	setDefault(&cfg.MaxImageBytes, DefaultMaxImageBytes)
	setDefault(&cfg.MaxImagePixels, DefaultMaxImagePixels)
	setDefault(&cfg.QRTokenTTL, DefaultQRTokenTTL)
	setDefault(&cfg.SessionTTL, DefaultSessionTTL)
	setDefault(&cfg.UploadURLTTL, DefaultUploadURLTTL)
	setDefault(&cfg.DownloadURLTTL, DefaultDownloadURLTTL)
	setDefault(&cfg.ClaimsPerMinute, DefaultClaimsPerMinute)
	setDefault(&cfg.ClaimBurst, DefaultClaimBurst)
	setDefault(&cfg.SweepInterval, DefaultSweepInterval)
	if err := cfg.storageDefaults(); err != nil {
		return cfg, err
	}
	switch {
	case cfg.MaxImages < 0, cfg.MaxImageBytes < 0, cfg.ClaimBurst < 0, cfg.MaxImagePixels < 0:
		return cfg, errors.New("capture: MaxImages, MaxImageBytes, MaxImagePixels and ClaimBurst must not be negative")
	case cfg.QRTokenTTL < 0, cfg.SessionTTL < 0, cfg.UploadURLTTL < 0, cfg.DownloadURLTTL < 0, cfg.SweepInterval < 0:
		return cfg, errors.New("capture: durations must not be negative")
	case cfg.QRTokenTTL > cfg.SessionTTL:
		return cfg, errors.New("capture: QRTokenTTL must not exceed SessionTTL")
	}
	return cfg, nil
}

// storageDefaults fills and checks the storage bounds.
func (cfg *Config) storageDefaults() error {
	setDefault(&cfg.MaxSessionBytes, max(DefaultMaxSessionBytes, cfg.MaxImageBytes))
	setDefault(&cfg.MaxSessionLifetime, DefaultMaxSessionLifetime)
	setDefault(&cfg.MaxOpenSessionsPerFacility, DefaultMaxOpenSessionsPerFacility)
	switch {
	case cfg.MaxSessionBytes < 0, cfg.MaxSessionLifetime < 0, cfg.MaxOpenSessionsPerFacility < 0:
		return errors.New("capture: MaxSessionBytes, MaxSessionLifetime and MaxOpenSessionsPerFacility must not be negative")
	case cfg.MaxSessionBytes < cfg.MaxImageBytes:
		return fmt.Errorf("capture: MaxSessionBytes (%d) is below MaxImageBytes (%d): no image would fit", cfg.MaxSessionBytes, cfg.MaxImageBytes)
	case cfg.MaxSessionLifetime < cfg.SessionTTL:
		return fmt.Errorf("capture: MaxSessionLifetime (%s) is shorter than SessionTTL (%s)", cfg.MaxSessionLifetime, cfg.SessionTTL)
	}
	return nil
}

func setDefault[T int | int64 | float64 | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

func (d Deps) check() error {
	switch {
	case d.Hub == nil:
		return errors.New("capture: Deps.Hub is required")
	case d.Sessions == nil:
		return errors.New("capture: Deps.Sessions is required")
	case d.Blobs == nil:
		return errors.New("capture: Deps.Blobs is required")
	case d.Verifier == nil:
		return errors.New("capture: Deps.Verifier is required")
	}
	return nil
}
