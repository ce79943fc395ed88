package capture

import (
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/handoff-health/handoff/internal/testutil"
)

// TestOpenAPIDocumentsRoutes checks the served document names every route
// Register mounts.
func TestOpenAPIDocumentsRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, memoryBackend(), Config{})
	resp, err := http.Get(e.srv.URL + "/api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	doc, _ := io.ReadAll(resp.Body)
	testutil.Equal(t, "status", http.StatusOK, resp.StatusCode)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/yaml") {
		t.Fatalf("Content-Type %q, want application/yaml", ct)
	}
	if !strings.HasPrefix(string(doc), "openapi: 3.") {
		t.Fatalf("document does not start with an OpenAPI 3 version: %.40q", doc)
	}
	src, err := os.ReadFile("api.go")
	if err != nil {
		t.Fatal(err)
	}
	routes := regexp.MustCompile(`HandleFunc\("(\w+) (/[^"]+)"`).FindAllStringSubmatch(string(src), -1)
	if len(routes) < 9 {
		t.Fatalf("found only %d routes in api.go", len(routes))
	}
	for _, r := range routes {
		method, path := strings.ToLower(r[1]), r[2]
		i := strings.Index(string(doc), "\n  "+path+":\n")
		if i < 0 {
			t.Errorf("%s %s is not documented", r[1], path)
			continue
		}
		rest := string(doc[i+len(path)+4:]) // from the newline after "path:"
		if end := regexp.MustCompile(`\n  /`).FindStringIndex(rest); end != nil {
			rest = rest[:end[0]]
		}
		if !strings.Contains(rest, "\n    "+method+":") {
			t.Errorf("%s %s is not documented", r[1], path)
		}
	}
}
