package alex

import "time"

// Defaults and limits of the ALEX client, gathered in one place with the
// reason for each.
const (
	// DefaultIdentifierSystem namespaces Media.identifier values (our image
	// ids). It is a URL under the project's own domain, following HL7's
	// "…/sid/…" convention for identifier systems; it is never fetched.
	// Keep it stable: the conditional create that makes retries safe
	// matches on system|value, so changing it mid-flight could duplicate.
	DefaultIdentifierSystem = "https://handoff.health/fhir/sid/image-id"

	// DefaultMaxAttempts bounds tries per Media. Commit is interactive: a
	// GP is waiting, so a few quick retries ride out a blip and anything
	// longer is better surfaced and retried from the desktop.
	DefaultMaxAttempts = 4

	// DefaultBaseBackoff is the wait before the first retry; it doubles per
	// attempt and is jittered so many sessions do not retry in lockstep.
	DefaultBaseBackoff = 500 * time.Millisecond

	// DefaultTimeout bounds one attempt (token fetch plus POST). A Media
	// carries an image of up to several MB; 30 s covers a slow uplink.
	DefaultTimeout = 30 * time.Second

	// staleTempAge is when an outbox temp file counts as a dead writer's.
	// A write is one Media of a few MB to local disk, done in well under a
	// second; a minute leaves a slow disk ample room, and a file that old
	// can only be left by a process that died mid-write. Younger ones may
	// be another live node's (nodes may share the outbox), so they stay.
	staleTempAge = time.Minute

	// maxBackoff caps one computed wait between attempts.
	maxBackoff = 10 * time.Second

	// maxRetryAfter is the longest Retry-After we wait for. A server asking
	// for more is not going to recover while a GP watches; we stop and
	// return a retryable error instead of hammering it early.
	maxRetryAfter = 30 * time.Second

	// maxErrorBody bounds how much of an error response we read: an
	// OperationOutcome is small, and a gateway's HTML page is useless.
	maxErrorBody = 64 << 10

	// maxSuccessBody bounds how much of a 200/201 body we read to find the
	// id when there is no Location: ALEX may echo the whole Media, image
	// included.
	maxSuccessBody = 64 << 20

	// maxDiagnostics bounds the ALEX text kept in an Error, so a verbose
	// server cannot flood logs.
	maxDiagnostics = 1000
)
