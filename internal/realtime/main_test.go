package realtime

import (
	"os"
	"strconv"
	"testing"

	"github.com/handoff-health/handoff/internal/testutil"
)

// TestMain fails the run if a test leaves a goroutine behind: the
// transport starts goroutines per socket, per writer and per frame, and
// each must end with its socket. The same binary, re-executed with the
// idle-benchmark environment, is that benchmark's client process instead.
func TestMain(m *testing.M) {
	if url := os.Getenv(envIdleURL); url != "" {
		n, _ := strconv.Atoi(os.Getenv(envIdleCount))
		os.Exit(idleClients(url, os.Getenv(envIdleToken), n))
	}
	testutil.VerifyNoLeaks(m)
}
