//go:build integration

package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// handoffBin is the handoff binary TestMain builds once for every
// scenario's nodes.
var handoffBin string

// TestMain builds the real binary (without -race: the nodes are the system
// under test, the test process keeps the race detector) into a temp dir.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "handoff-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos: temp dir:", err)
		os.Exit(1)
	}
	handoffBin = filepath.Join(dir, "handoff")
	goTool, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos: the go tool is needed to build the handoff binary:", err)
		os.Exit(1)
	}
	build := exec.Command(goTool, "build", "-o", handoffBin, "github.com/handoff-health/handoff/cmd/handoff")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "chaos: go build handoff: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
