package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/commit"
	"github.com/handoff-health/handoff/internal/testutil"
)

// --commit-wait (issue 15): its default is commit's, the variable sets it,
// and a value out of range stops the start naming the flag and variable.
func TestCommitWait(t *testing.T) {
	cleanEnv(t)
	testutil.Check(t, "default", commit.DefaultWait, mustLoad(t).CommitWait)
	testutil.Check(t, "flag", 10*time.Second, mustLoad(t, "--commit-wait", "10s").CommitWait)
	t.Setenv("HANDOFF_COMMIT_WAIT", "12s")
	testutil.Check(t, "variable", 12*time.Second, mustLoad(t).CommitWait)
	for _, v := range []string{"0s", "500ms", "10m"} {
		c := mustLoad(t, "--commit-wait", v, "--dev")
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "--commit-wait") || !strings.Contains(err.Error(), "HANDOFF_COMMIT_WAIT") {
			t.Errorf("--commit-wait %s: error %v does not name the flag and its variable", v, err)
		}
	}
	t.Setenv("HANDOFF_COMMIT_WAIT", "soon")
	c, _, _ := load(t)
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "HANDOFF_COMMIT_WAIT") {
		t.Errorf("malformed HANDOFF_COMMIT_WAIT: error %v", err)
	}
}
