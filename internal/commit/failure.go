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
// the widget to act on; messages and next steps are for the GP, in plain
// words, and use the desktop's own button names ("Retry"). None quotes what
// we sent (patient id, notes). ALEX's own text is never the message: it
// goes, as ALEX wrote it, into Details, which the desktop shows collapsed
// for the practice's IT person.
var (
	errTokenEndpoint = ErrorInfo{Code: "alex_auth_failed",
		Message:  "Could not sign in to Medtech ALEX (its token service failed), so nothing was filed.",
		NextStep: "Retry in a few minutes. If it keeps failing, ask your IT person to check the ALEX credentials."}
	errTimedOut = ErrorInfo{Code: "commit_timeout",
		Message:  "Filing ran out of time before this photo was sent.",
		NextStep: nextRetry}
	errInProgress = ErrorInfo{Code: "commit_in_progress",
		Message:  "Another filing of this session is still sending this photo; its result will appear here.",
		NextStep: "Wait for the result."}
	errCancelled = ErrorInfo{Code: "commit_cancelled",
		Message:  "Filing was cancelled before this photo was sent to Medtech.",
		NextStep: "The photo is kept. Press Retry to file it."}
	errCancelledInFlight = ErrorInfo{Code: "commit_cancelled",
		Message: "Filing was cancelled while Medtech ALEX was being asked. If ALEX had already received the photo, " +
			"it may be in the record.",
		NextStep: "The photo is kept. Press Retry: it checks the record first and never files the photo twice."}
	errImageRemoved = ErrorInfo{Code: "image_not_found",
		Message:  "The photo was removed from the session before it could be filed.",
		NextStep: "Nothing to do; take it again if it is needed."}
	errSessionEnded = ErrorInfo{Code: "session_not_found",
		Message:  "The capture session ended before this photo could be filed.",
		NextStep: "Start a new session and take the photo again."}
	errStore = ErrorInfo{Code: "store_unavailable",
		Message:  "Could not record the filing on this server, so this photo was not sent.",
		NextStep: nextRetry}
	errImageMissing = ErrorInfo{Code: "image_missing",
		Message:  "The uploaded photo is no longer stored, so it cannot be filed.",
		NextStep: "Remove it and take it again."}
	errImageChanged = ErrorInfo{Code: "image_changed",
		Message: "The stored photo is not the one checked when the phone sent it (its fingerprint differs), " +
			"so it was not filed.",
		NextStep: "Remove it and take it again. Tell your IT person: someone changed the photo store."}
	errImageUnverified = ErrorInfo{Code: "image_unverified",
		Message: "This photo was sent before handoff recorded a fingerprint of each photo, so it cannot be shown " +
			"to be the one checked, and it was not filed.",
		NextStep: "Remove it and take it again."}
	errBlobRead = ErrorInfo{Code: "storage_unavailable",
		Message:  "Could not read the photo from this server's storage.",
		NextStep: nextRetry}
	// errIdentifierConflict: the record already holds a Media under this
	// image's identifier that is not this image's (another patient's), so
	// counting it as filed would lose this photo silently.
	errIdentifierConflict = ErrorInfo{Code: "alex_identifier_conflict",
		Message:  "Medtech ALEX already holds a different photo under this photo's identifier, so this photo was not filed.",
		NextStep: "The photo is kept. Do not retry; contact your IT person or handoff support."}
	// errOutboxWrite: the embedded outbox (no ALEX configured) could not
	// write the Media file. The server log names the OS error.
	errOutboxWrite = ErrorInfo{Code: "outbox_write_failed",
		Message:  "Could not save the filing on this server (disk error). Nothing was sent to Medtech.",
		NextStep: "Ask your IT person to check the server's disk (free space and permissions), then Retry."}
)

// nextRetry is the next step after a transient failure: safe because ALEX
// creates are conditional on the image's identifier (session and image id).
const nextRetry = "Press Retry; the photo will not be filed twice."

// alexFailure turns an error of alex.Committer.CreateMedia into what the GP
// sees: a plain sentence and next step, with ALEX's own text as Details.
func alexFailure(err error) ErrorInfo {
	var ae *alex.Error
	switch {
	case errors.Is(err, alex.ErrAccessToken):
		return errTokenEndpoint
	case errors.Is(err, alex.ErrIdentifierConflict):
		return errIdentifierConflict
	case errors.Is(err, alex.ErrOutboxWrite):
		return errOutboxWrite
	case errors.Is(err, alex.ErrInvalidInput):
		// alex writes these without values ("patient id is not a valid
		// FHIR id"), so the problem part can be shown.
		_, problem, _ := strings.Cut(err.Error(), alex.ErrInvalidInput.Error()+": ")
		return ErrorInfo{Code: "invalid_image", Message: "This photo cannot be filed as it is: " + problem + ".",
			NextStep: "Tell your IT person; retrying will not help."}
	case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized:
		return withDetails(ErrorInfo{Code: "alex_unauthorized",
			Message:  "Medtech ALEX did not accept handoff's credentials, so nothing was filed.",
			NextStep: "Ask your IT person to check the ALEX client id, secret and scope, then Retry."}, ae)
	case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
		return withDetails(ErrorInfo{Code: "alex_forbidden",
			Message:  "Medtech ALEX refused access for this practice, so nothing was filed.",
			NextStep: "Ask your IT person to check that handoff is authorised for this practice in ALEX, then Retry."}, ae)
	case errors.As(err, &ae) && !ae.Retryable:
		return withDetails(rejection(ae), ae)
	case errors.As(err, &ae):
		return withDetails(ErrorInfo{Code: "alex_unavailable",
			Message:  "Medtech ALEX is unavailable or busy at the moment.",
			NextStep: nextRetry}, ae)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return ErrorInfo{Code: "alex_timeout", Message: "Medtech ALEX did not answer in time.", NextStep: nextRetry}
	default:
		return ErrorInfo{Code: "alex_unreachable", Message: "Could not reach Medtech ALEX.",
			NextStep: "Check this computer's network, then press Retry; the photo will not be filed twice."}
	}
}

// rejection explains a permanent refusal (a 4xx) by ALEX's FHIR issue
// code, in words a GP can act on. The codes are FHIR R4's IssueType.
func rejection(ae *alex.Error) ErrorInfo {
	f := ErrorInfo{Code: "alex_rejected"}
	switch ae.Code {
	case "invalid", "structure", "required", "value", "invariant", "code-invalid":
		f.Message = "Medtech ALEX did not accept the photo's details."
		f.NextStep = "Check the side, body site and notes, then press Retry. If it is refused again, give the details below to your IT person."
	case "business-rule":
		f.Message = "Medtech ALEX refused to add this photo to the patient's record because of a record rule."
		f.NextStep = "Check the patient's record in Medtech (for example that it is active), then press Retry. If it is refused again, give the details below to your IT person."
	case "not-found":
		f.Message = "Medtech ALEX could not find this patient's record."
		f.NextStep = "Check the widget was opened from the right patient's record. The photo is kept; give the details below to your IT person."
	case "duplicate", "conflict":
		f.Message = "Medtech ALEX says this photo conflicts with something already in the record."
		f.NextStep = "Check the patient's record in Medtech before filing again, and give the details below to your IT person."
	case "too-costly", "too-long":
		f.Message = "The photo is too large for Medtech ALEX."
		f.NextStep = "Remove it and take it again at a lower resolution."
	case "not-supported":
		f.Message = "Medtech ALEX does not accept this kind of photo."
		f.NextStep = "Remove it and take it again as a JPEG photo."
	case "security", "forbidden", "suppressed":
		f.Message = "Medtech ALEX refused this photo for access reasons."
		f.NextStep = "Give the details below to your IT person."
	default:
		f.Message = fmt.Sprintf("Medtech ALEX refused this photo (HTTP %d).", ae.Status)
		f.NextStep = "Give the details below to your IT person; retrying the same photo is unlikely to help."
	}
	return f
}

// withDetails adds ALEX's answer, for the IT person: the HTTP status, the
// FHIR issue code and ALEX's diagnostics as it wrote them.
func withDetails(f ErrorInfo, ae *alex.Error) ErrorInfo {
	d := fmt.Sprintf("HTTP %d", ae.Status)
	if ae.Code != "" {
		d += ", issue " + ae.Code
	}
	if ae.Diagnostics != "" {
		d += ": " + ae.Diagnostics
	}
	f.Details = d
	return f
}

// abortsAll reports whether a failure concerns the deployment or the
// practice rather than the image (no token, credentials refused, facility
// not authorised, the outbox disk failing): every other image would meet
// it too, so none is sent.
func abortsAll(f ErrorInfo) bool {
	switch f.Code {
	case errTokenEndpoint.Code, "alex_unauthorized", "alex_forbidden", errOutboxWrite.Code:
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
// error as one string, so the message and next step are kept (what a
// snapshot should show the GP); the code and details travel only in the
// reply and the event.
func failedCommit(f ErrorInfo) session.Commit {
	msg := f.Message
	if f.NextStep != "" {
		msg += " " + f.NextStep
	}
	return session.Commit{Status: session.CommitFailed, Error: msg}
}

// storedFailure reads back a failure another request recorded.
func storedFailure(c session.Commit) ErrorInfo {
	msg := c.Error
	if msg == "" {
		msg = "Filing this photo failed."
	}
	return ErrorInfo{Code: "commit_failed", Message: msg}
}
