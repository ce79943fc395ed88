package session_test

import (
	"testing"

	"github.com/handoff-health/handoff/internal/session"
	"github.com/handoff-health/handoff/internal/testutil"
)

func TestServerEvent(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		want bool
	}{
		// Every type the capture API and the committer publish.
		{"mobile.connected", true},
		{"image.added", true},
		{"image.removed", true},
		{"image.committed", true},
		{"image.commit_failed", true},
		{"session.committed", true},
		{"session.expired", true},
		// Future types in the same namespaces are the server's too.
		{"image.updated", true},
		{"session.anything", true},
		// Everything else is free for integrators.
		{"bench", false},
		{"note", false},
		{"image", false},
		{"images.added", false},
		{"Image.added", false},
		{"x.image.added", false},
		{"", false},
	}
	for _, tc := range cases {
		testutil.Check(t, "ServerEvent("+tc.name+")", tc.want, session.ServerEvent(tc.name))
	}
}
