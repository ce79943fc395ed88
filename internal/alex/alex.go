// Package alex files capture images into a patient's Medtech record as FHIR
// R4 Media resources, through Medtech's ALEX API (Client) or, in the
// embedded default, into a directory of JSON files (Outbox).
//
// Nothing in this package logs. Errors it returns carry HTTP statuses,
// FHIR issue codes and ALEX's own diagnostics, never a patient id, a
// token, a client secret or image bytes, so callers may log them.
package alex

import (
	"context"
	"errors"
)

// Committer files one image into a patient's record. Client (ALEX) and
// Outbox (local files) implement it.
//
// Idempotency: CreateMedia is keyed by IdentifierValue (session and image
// id). Calling it again
// for the same image, after a success, a failure or a lost response, never
// files a second copy; it returns the Result of the first success. That is
// what lets the commit flow retry freely. A Media found that way counts as
// this image's only if it names the same patient and identifier; anything
// else is ErrIdentifierConflict and nothing is filed.
//
// Errors: an invalid MediaInput wraps ErrInvalidInput; ALEX's refusals are
// *Error. IsPermanent tells whether retrying the same input can help.
type Committer interface {
	CreateMedia(ctx context.Context, in MediaInput) (Result, error)
}

var (
	_ Committer = (*Client)(nil)
	_ Committer = (*Outbox)(nil)
)

// Result identifies the filed Media.
type Result struct {
	// ID is the Media's logical id: ALEX's id, or "outbox-<sessionId>.<imageId>".
	ID string
	// Location is where the Media lives: ALEX's Location header (versioned
	// URL) when it sent one, or the Outbox file's path.
	Location string
}

// ErrInvalidInput is wrapped by errors about a MediaInput that can never be
// filed as given (missing patient id, unsupported content type, …).
var ErrInvalidInput = errors.New("invalid media input")

// ErrOutboxWrite is matched (errors.Is) by an Outbox that could not write
// a Media file: a disk problem of this server, not ALEX's. Nothing was
// sent anywhere. Its text names the failed operation and the OS error
// (e.g. "write: no space left on device"), never the file's path, which
// holds the session and image ids.
var ErrOutboxWrite = errors.New("alex: outbox write failed")

// ErrIdentifierConflict is wrapped by errors about a conditional create that
// matched a Media which is not this image's: another patient's, or one
// without this image's identifier. Nothing was filed, and retrying would
// match it again. The error names neither patient.
var ErrIdentifierConflict = errors.New("alex: an existing Media matched this image's identifier but is not its filing")

// IsPermanent reports whether retrying the same input cannot succeed: the
// input is invalid, or ALEX refused it with a status that is not worth
// retrying (a 4xx other than 408/429). Network failures, timeouts, 5xx, 429
// and access-token failures are not permanent: a later retry may work.
func IsPermanent(err error) bool {
	if errors.Is(err, ErrInvalidInput) || errors.Is(err, ErrIdentifierConflict) {
		return true
	}
	var e *Error
	return errors.As(err, &e) && !e.Retryable
}
