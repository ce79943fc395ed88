package client_test

import (
	"testing"

	"github.com/handoff-health/handoff/internal/testutil"
)

// TestMain fails the run if a test or example leaves a goroutine behind:
// the client starts a reader, a watchdog and a token refresher per socket,
// and every one must end when Run returns.
func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }
