package commit

import (
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/alex"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/blob"
	"github.com/handoff-health/handoff/internal/session"
)

// Defaults and limits of the commit endpoint, gathered in one place with the
// reason for each.
const (
	// DefaultConcurrency is how many images one request files at once. Each
	// Media carries a photo of several MB; three in flight fill a clinic's
	// uplink and finish a 20-photo series quickly without provoking ALEX's
	// rate limits (429) for the whole practice.
	DefaultConcurrency = 3

	// DefaultNodeConcurrency bounds the images a node files at once across
	// all requests. An image in flight holds its bytes, their base64 and the
	// Media JSON (about 3.7× the photo); without a node-wide bound, 100 GPs
	// committing together held ~800 MB in the load test.
	DefaultNodeConcurrency = 8

	// DefaultTimeout bounds one commit request. The ALEX client tries an
	// image up to 4 times of up to 30 s each (alex.DefaultMaxAttempts,
	// alex.DefaultTimeout), about 2 minutes at worst; 3 minutes lets the
	// slowest image of a batch finish its retries.
	DefaultTimeout = 3 * time.Minute

	// DefaultWait is how long a commit request keeps the GP waiting before
	// it answers with the images still being filed as "committing" and
	// goes on with them in the background (issue 15: a hanging ALEX held
	// the desktop for over two minutes). 25 s covers a normal 20-photo
	// series on a slow uplink and stays under the 30 s a person waits for
	// a button before deciding it is broken, and under common proxies'
	// 30-60 s read timeouts.
	DefaultWait = 25 * time.Second

	// DefaultClaimLease is how long a claim lives without renewal. The
	// request holding it renews it every ClaimLease/3 while it files
	// (claimRenewals), so only a dead node's claim lapses, and then within
	// 15 s rather than the 3.5 minutes of a fixed lease covering a whole
	// request: a commit retried after a crash takes its images over while
	// the GP still waits for it (DefaultWait). Three renewals per lease let
	// two in a row fail (a Redis failover) before the claim lapses.
	DefaultClaimLease = 15 * time.Second

	// claimRenewals is how many times per lease a claim is renewed.
	claimRenewals = 3

	// pollInterval is how often a request that found images claimed by a
	// concurrent request rereads the session to learn their outcome.
	pollInterval = 100 * time.Millisecond

	// recordTimeout bounds the store writes, publishes and blob deletions
	// that record an outcome. They run detached from the request's deadline:
	// an image ALEX has just filed must be recorded even if the request's
	// time ran out a moment later.
	recordTimeout = 10 * time.Second

	// maxBody bounds the request body: a session holds at most a few dozen
	// images and each override is at most ~9 KB (2000 characters of notes
	// of up to 4 bytes, plus a body site).
	maxBody = 256 << 10
)

// Config configures the commit endpoint. Every zero value is a sound default.
type Config struct {
	// SessionTTL is the expiry each commit write gives the session, counted
	// from the write: committing is activity. Zero means
	// session.DefaultTTL; set it to the capture API's SessionTTL.
	SessionTTL time.Duration
	// Concurrency is how many images one request files in parallel. Zero
	// means DefaultConcurrency.
	Concurrency int
	// NodeConcurrency is how many images this node files at once across all
	// requests. Zero means DefaultNodeConcurrency.
	NodeConcurrency int
	// Timeout bounds one commit request, including waiting for images a
	// concurrent request is filing. Zero means DefaultTimeout. It should
	// exceed the ALEX client's worst case for one image (attempts × attempt
	// timeout plus backoff).
	Timeout time.Duration
	// Wait is how long a request waits for its images before it answers;
	// images still in flight are reported committing and go on in the
	// background, bounded by Timeout, reporting by events. Zero means
	// DefaultWait; a Wait longer than Timeout waits for the whole commit.
	Wait time.Duration
	// ClaimLease is how long an image marked "committing" is left alone by
	// other requests after its claim was taken or last renewed; the request
	// filing it renews it every ClaimLease/3. A node that crashes
	// mid-commit leaves its claims behind; they lapse after ClaimLease and
	// the next commit takes them over. Zero means DefaultClaimLease.
	ClaimLease time.Duration
}

// Deps are the collaborators of the commit endpoint. All are required except
// Images (nil: events carry no image view), Log (zero value: a disabled
// logger) and Now (nil: time.Now).
type Deps struct {
	Sessions session.Store
	Blobs    blob.Store
	Hub      *hub.Hub
	ALEX     alex.Committer
	Verifier *auth.Verifier
	// Images renders an image the way the session snapshot shows it, for the
	// data of image.committed and image.commit_failed. *capture.API
	// implements it.
	Images ImageViewer
	Log    zerolog.Logger
	Now    func() time.Time
}

// ImageViewer renders a stored image as clients see it (with a signed
// download URL). *capture.API implements it; commit does not import
// capture, which is an HTTP API of its own.
type ImageViewer interface {
	ImageView(ctx context.Context, img session.Image) (session.ImageView, error)
}

func (cfg Config) withDefaults() (Config, error) {
	if cfg.SessionTTL < 0 || cfg.Concurrency < 0 || cfg.Timeout < 0 || cfg.ClaimLease < 0 || cfg.Wait < 0 {
		return cfg, errors.New("commit: SessionTTL, Concurrency, Timeout, Wait and ClaimLease must not be negative")
	}
	if cfg.Wait == 0 {
		cfg.Wait = DefaultWait
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = session.DefaultTTL
	}
	if cfg.NodeConcurrency <= 0 {
		cfg.NodeConcurrency = DefaultNodeConcurrency
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.ClaimLease == 0 {
		cfg.ClaimLease = DefaultClaimLease
	}
	return cfg, nil
}

func (d Deps) check() error {
	switch {
	case d.Sessions == nil:
		return errors.New("commit: Deps.Sessions is required")
	case d.Blobs == nil:
		return errors.New("commit: Deps.Blobs is required")
	case d.Hub == nil:
		return errors.New("commit: Deps.Hub is required")
	case d.ALEX == nil:
		return errors.New("commit: Deps.ALEX is required")
	case d.Verifier == nil:
		return errors.New("commit: Deps.Verifier is required")
	}
	return nil
}
