// Package session is the capture session's domain: the model (Session,
// Image, their statuses), the Store contract with its memory and Redis
// implementations, the rules an image's metadata must follow, and Lookup,
// the one place that decides who may see a session.
//
// It knows nothing of HTTP. The capture API (package capture) and the
// committer (package commit) are its clients; both reach a session a caller
// names through Lookup, so the tenant rule is written once:
//
//	a session belongs to the facility that created it; to any other
//	facility it does not exist (ErrNotFound, exactly as for a missing one).
package session
