package commit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/handoff-health/handoff/internal/alex"
	"github.com/handoff-health/handoff/internal/blob"
	"github.com/handoff-health/handoff/internal/session"
)

// Why an image was not filed, as the desktop shows it. Codes are stable for
// the widget to act on; messages are for the GP. None quotes what we sent
// (patient id, notes), only what ALEX said back.
var (
	errTokenEndpoint = ErrorInfo{"alex_auth_failed", "Could not sign in to Medtech ALEX (its token service failed), " +
		"so nothing was filed. Try again shortly; if it keeps failing, check the ALEX credentials."}
	errTimedOut = ErrorInfo{"commit_timeout",
		"The commit ran out of time before this image was sent. Commit again to file it."}
	errInProgress = ErrorInfo{"commit_in_progress",
		"Another commit of this session is still filing this image; its result will appear shortly."}
	errImageRemoved = ErrorInfo{"image_not_found", "The image was removed from the session before it could be filed."}
	errSessionEnded = ErrorInfo{"session_not_found", "The capture session ended before this image could be filed."}
	errStore        = ErrorInfo{"store_unavailable",
		"Could not record the commit, so this image was not sent. Commit again to retry."}
	errImageMissing = ErrorInfo{"image_missing",
		"The uploaded photo is no longer stored, so it cannot be filed. Delete it and take it again."}
	errImageChanged = ErrorInfo{"image_changed",
		"The stored photo is not the one checked when the phone sent it (its fingerprint differs), " +
			"so it was not filed. Delete it and take it again."}
	errImageUnverified = ErrorInfo{"image_unverified",
		"This photo was sent before handoff recorded a fingerprint of each photo, so it cannot be shown " +
			"to be the one checked, and it was not filed. Delete it and take it again."}
	errBlobRead = ErrorInfo{"storage_unavailable", "Could not read the photo from storage. Commit again to retry."}
	// errIdentifierConflict: the record already holds a Media under this
	// image's identifier that is not this image's (another patient's), so
	// counting it as filed would lose this photo silently.
	errIdentifierConflict = ErrorInfo{"alex_identifier_conflict",
		"Medtech ALEX already holds a different photo under this image's identifier, so this photo was not filed. " +
			"The photo is kept; contact support before committing it again."}
)

// retryHint ends messages about transient failures: the GP's natural next
// step is safe because ALEX creates are conditional on the image's
// identifier (session and image id).
const retryHint = " Commit again to retry; the image will not be filed twice."

// alexFailure turns an error of alex.Committer.CreateMedia into what the GP
// sees: ALEX's diagnostics when it gave any, else a plain sentence.
func alexFailure(err error) ErrorInfo {
	var ae *alex.Error
	switch {
	case errors.Is(err, alex.ErrAccessToken):
		return errTokenEndpoint
	case errors.Is(err, alex.ErrIdentifierConflict):
		return errIdentifierConflict
	case errors.Is(err, alex.ErrInvalidInput):
		// alex writes these without values ("patient id is not a valid
		// FHIR id"), so the problem part can be shown.
		_, problem, _ := strings.Cut(err.Error(), alex.ErrInvalidInput.Error()+": ")
		return ErrorInfo{"invalid_image", "This image cannot be filed as it is: " + problem + "."}
	case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized:
		return ErrorInfo{"alex_unauthorized", "Medtech ALEX did not accept handoff's credentials, so nothing was filed. " +
			"Check the ALEX client id, secret and scope."}
	case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
		msg := ae.Diagnostics
		if msg == "" {
			msg = "Medtech ALEX refused access for this practice (HTTP 403)."
		}
		return ErrorInfo{"alex_forbidden", msg}
	case errors.As(err, &ae) && !ae.Retryable:
		msg := ae.Diagnostics
		if msg == "" {
			msg = fmt.Sprintf("Medtech ALEX refused the image (HTTP %d).", ae.Status)
		}
		return ErrorInfo{"alex_rejected", msg}
	case errors.As(err, &ae):
		msg := ae.Diagnostics
		if msg == "" {
			msg = fmt.Sprintf("Medtech ALEX is unavailable (HTTP %d).", ae.Status)
		}
		return ErrorInfo{"alex_unavailable", strings.TrimSuffix(msg, ".") + "." + retryHint}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return ErrorInfo{"alex_timeout", "Medtech ALEX did not answer in time." + retryHint}
	default:
		return ErrorInfo{"alex_unreachable", "Could not reach Medtech ALEX." + retryHint}
	}
}

// abortsAll reports whether a failure concerns the deployment or the
// practice rather than the image (no token, credentials refused, facility
// not authorised): every other image would meet it too, so none is sent.
func abortsAll(f ErrorInfo) bool {
	switch f.Code {
	case errTokenEndpoint.Code, "alex_unauthorized", "alex_forbidden":
		return true
	}
	return false
}

// blobFailure explains why an image's bytes could not be read.
func blobFailure(err error) ErrorInfo {
	switch {
	case errors.Is(err, blob.ErrNotFound):
		return errImageMissing
	case errors.Is(err, errBytesChanged):
		return errImageChanged
	case errors.Is(err, errNoHash):
		return errImageUnverified
	default:
		return errBlobRead
	}
}

// storeFailure explains a session store error met while claiming.
func storeFailure(err error) ErrorInfo {
	switch {
	case errors.Is(err, session.ErrImageNotFound):
		return errImageRemoved
	case errors.Is(err, session.ErrNotFound):
		return errSessionEnded
	default:
		return errStore
	}
}

// failedCommit is the stored form of a failure. session.Commit keeps the
// error as one string, so the message is kept (it is what a snapshot should
// show the GP); the code travels only in the reply and the event.
func failedCommit(f ErrorInfo) session.Commit {
	return session.Commit{Status: session.CommitFailed, Error: f.Message}
}

// storedFailure reads back a failure another request recorded.
func storedFailure(c session.Commit) ErrorInfo {
	msg := c.Error
	if msg == "" {
		msg = "Filing this image failed."
	}
	return ErrorInfo{"commit_failed", msg}
}
