package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// AblyJSVersions are the released ably-js packages the compatibility tests
// run, one per Ably protocol version from 3 to 6. scripts/ablyjs pins them.
var AblyJSVersions = []string{"2.12.0", "2.16.0", "2.19.0", "2.28.0"}

// AblyJSDir returns the directory holding the node_modules that `make test`
// (scripts/install-test-deps.sh) installed with npm ci: $HANDOFF_ABLYJS_DIR,
// or ~/.cache/handoff/ablyjs. A missing install fails the test and says how
// to get it.
func AblyJSDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("HANDOFF_ABLYJS_DIR")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatalf("ably-js packages: no home directory (%v); set HANDOFF_ABLYJS_DIR or run `make deps`", err)
		}
		dir = filepath.Join(home, ".cache", "handoff", "ablyjs")
	}
	for _, v := range AblyJSVersions {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "ably-"+v, "package.json")); err != nil {
			t.Fatalf("ably-js %s is not installed under %s: `make test` (or `make deps`) installs it with npm ci from scripts/ablyjs", v, dir)
		}
	}
	return dir
}

// AblyJS returns the directory of one installed ably-js version.
func AblyJS(t testing.TB, version string) string {
	t.Helper()
	return filepath.Join(AblyJSDir(t), "node_modules", "ably-"+version)
}

// Node returns the path of the node binary, failing the test with the way
// to install it when there is none.
func Node(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed: `make test` (or `make deps`) installs nodejs and npm with apt-get")
	}
	return p
}
