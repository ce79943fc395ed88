package archtest

import (
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/handoff-health/handoff/"

// allowed lists, for every package of the module, the module packages its
// non-test code may import. It is the table in docs/architecture.md; a new
// package or a new edge must be added to both, on purpose.
var allowed = map[string][]string{
	// Public API: the wire protocols, the hub and the Go client.
	"protocol":  nil,
	"ablyproto": nil,
	"hub":       {"internal/backoff"},
	"presence":  {"hub"},
	"client":    {"protocol", "internal/backoff"},

	// Leaves.
	"internal/backoff":       nil,
	"internal/httpx":         nil,
	"internal/session":       nil,
	"internal/alex/alextest": nil,
	"internal/archtest":      nil,
	"internal/chaos":         nil, // tests only: its non-test code is the package doc
	"webui":                  nil,
	"internal/auth":          {"internal/httpx"},
	"internal/blob":          {"internal/httpx"},
	"internal/alex":          {"internal/backoff", "internal/blob"},
	"internal/testutil":      {"client"},
	"internal/fanout":        {"protocol", "ablyproto", "internal/auth"},

	// Features over the hub.
	"internal/realtime":   {"hub", "protocol", "presence", "internal/auth", "internal/backoff", "internal/httpx"},
	"internal/publish":    {"hub", "presence", "ablyproto", "internal/session", "internal/auth", "internal/httpx"},
	"internal/ablyrt":     {"hub", "presence", "ablyproto", "internal/session", "internal/auth", "internal/backoff", "internal/httpx"},
	"internal/capture":    {"hub", "internal/session", "internal/blob", "internal/auth", "internal/httpx"},
	"internal/commit":     {"hub", "internal/session", "internal/blob", "internal/alex", "internal/auth", "internal/httpx"},
	"internal/ablybridge": {"hub", "internal/session", "internal/auth", "internal/backoff", "internal/httpx"},
	// The test-app provisioner (make conformance) adds keys and enters
	// presence fixtures.
	"internal/provision": {"internal/auth", "presence", "ablyproto"},
	// Config takes its defaults from the packages that own them, checks
	// --trusted-proxies with the parser the edge uses (httpx) and the Ably
	// template with the bridge's own check.
	"internal/config": {"hub", "presence", "internal/capture", "internal/ablybridge", "internal/auth", "internal/blob", "internal/commit", "internal/realtime", "internal/httpx"},

	// Composition roots.
	"server": {"hub", "webui", "internal/ablybridge", "internal/alex", "internal/auth", "internal/blob",
		"internal/capture", "internal/commit", "internal/config", "internal/httpx", "internal/publish", "internal/ablyrt",
		"internal/provision", "internal/realtime", "internal/session", "presence"},
	"loadtest":    {"client", "protocol", "server", "internal/auth", "internal/config"},
	"cmd/handoff": {"server", "loadtest", "internal/config", "internal/fanout"},
}

// noHTTP lists packages that must stay free of HTTP: the hub is the
// transport-agnostic core, and the session domain is reached by HTTP
// packages, never the other way round.
var noHTTP = []string{"hub", "presence", "internal/session", "protocol", "ablyproto"}

func TestImportsFollowTheArchitecture(t *testing.T) {
	root := filepath.Join("..", "..")
	seen := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
			return filepath.SkipDir
		}
		pkg, err := build.ImportDir(path, 0)
		if _, none := err.(*build.NoGoError); none {
			return nil
		}
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		seen[rel] = true
		checkPackage(t, rel, pkg.Imports)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for pkg := range allowed {
		if !seen[pkg] {
			t.Errorf("allowed names %s, which no longer exists: remove it here and in docs/architecture.md", pkg)
		}
	}
}

func checkPackage(t *testing.T, pkg string, imports []string) {
	t.Helper()
	may, known := allowed[pkg]
	if !known {
		t.Errorf("package %s is not in the import table: add it to docs/architecture.md and to allowed", pkg)
		return
	}
	for _, imp := range imports {
		if slices.Contains(noHTTP, pkg) && (imp == "net/http" || strings.HasPrefix(imp, "net/http/")) {
			t.Errorf("%s imports %s; it must stay free of HTTP", pkg, imp)
		}
		dep, ok := strings.CutPrefix(imp, module)
		if !ok {
			continue
		}
		if !slices.Contains(may, dep) {
			t.Errorf("%s imports %s, which docs/architecture.md does not allow", pkg, dep)
		}
	}
}

func TestArchitectureDocListsEveryPackage(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	for pkg := range allowed {
		if !strings.Contains(string(doc), "`"+pkg+"`") {
			t.Errorf("docs/architecture.md does not name `%s`", pkg)
		}
	}
}
