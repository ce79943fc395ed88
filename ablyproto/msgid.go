package ablyproto

import (
	"strconv"
	"strings"
)

// ValidMessageIDs reports whether the client-specified ids of messages
// published together (one REST request, one realtime MESSAGE) follow
// Ably's rule (error 40031, spec RSL1k3): either no message has an id, or
// there is one message, or every message has the id "<base>:<index>" with
// one base (up to the last ':') and its own position as index ("foo:0", "foo:1", …), which is
// what the SDKs' idempotent publishing generates. It makes the group's
// idempotency scope unambiguous: a retry repeats every id.
func ValidMessageIDs(ids []string) bool {
	if len(ids) < 2 {
		return true
	}
	none := true
	for _, id := range ids {
		none = none && id == ""
	}
	if none {
		return true
	}
	base, _, _ := cutLast(ids[0])
	for i, id := range ids {
		b, idx, ok := cutLast(id)
		if !ok || b != base || b == "" || idx != strconv.Itoa(i) {
			return false
		}
	}
	return true
}

// cutLast splits id at its last ':' (a base may hold ':' itself).
func cutLast(id string) (base, index string, ok bool) {
	i := strings.LastIndexByte(id, ':')
	if i < 0 {
		return id, "", false
	}
	return id[:i], id[i+1:], true
}
