package testutil

import (
	"os/exec"
	"testing"
)

// Chromium finds the headless browser the webui tests drive, or fails the
// test with how to install it: a browser test that skips would pass
// without ever running the pages' code.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found: `make test` installs it (scripts/install-test-deps.sh runs " +
		"apt-get install -y chromium); tests never skip for a missing dependency")
	return ""
}
