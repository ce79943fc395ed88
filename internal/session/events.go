package session

import "strings"

// ServerEventNamespaces are the event-type namespaces the server itself
// publishes on a session's channel: the capture API (mobile.connected,
// image.added, image.removed, session.expired) and the committer
// (image.committed, image.commit_failed, session.committed). The desktop
// acts on them, so no outside credential may publish a name in them; the
// REST publish API, and any later transport that lets a client publish,
// refuses them through ServerEvent.
var ServerEventNamespaces = []string{"image.", "mobile.", "session."}

// ServerEvent reports whether eventType belongs to a namespace only the
// server publishes. The match is exact and case-sensitive, as the desktop's
// is: "Image.added" is not the server's, and no desktop acts on it.
func ServerEvent(eventType string) bool {
	for _, ns := range ServerEventNamespaces {
		if strings.HasPrefix(eventType, ns) {
			return true
		}
	}
	return false
}
