package protocol_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/handoff-health/handoff/internal/testutil"
)

// protocolMD is the protocol's description for client authors.
const protocolMD = "../docs/protocol.md"

// TestDocsTablesMatchProtocol: the tables of docs/protocol.md list
// exactly the protocol's ops, frame types, close codes and error codes.
func TestDocsTablesMatchProtocol(t *testing.T) {
	t.Parallel()
	doc := readFile(t, protocolMD)
	decl := declared(t)
	for _, tc := range []struct{ goType, heading string }{
		{"Op", "### Client → server"},
		{"FrameType", "### Server → client"},
		{"CloseCode", "## 4. Close codes"},
		{"ErrorCode", "### Error codes"},
		{"PresenceAction", "### Presence actions"},
	} {
		got := firstColumn(t, doc, tc.heading)
		testutil.Check(t, protocolMD+" table under "+tc.heading, sorted(values(decl[tc.goType])), sorted(got))
	}
}

var backticked = regexp.MustCompile("`([^`]+)`")

// firstColumn returns the names in the first column of the first table
// under heading: each backticked word, or the cell itself when it has
// none (close codes are bare numbers).
func firstColumn(t *testing.T, doc, heading string) []string {
	t.Helper()
	lines := strings.Split(doc, "\n")
	start := -1
	for i, l := range lines {
		if strings.TrimSpace(l) == heading {
			start = i + 1
			break
		}
	}
	if start < 0 {
		t.Fatalf("%s has no heading %q", protocolMD, heading)
	}
	var names []string
	inTable := false
	for _, l := range lines[start:] {
		if strings.HasPrefix(l, "#") {
			break
		}
		if !strings.HasPrefix(l, "|") {
			if inTable {
				break
			}
			continue
		}
		row := inTable
		inTable = true
		cell := strings.TrimSpace(strings.Split(l, "|")[1])
		if !row || strings.HasPrefix(cell, "---") {
			continue // the header row and the separator
		}
		if ms := backticked.FindAllStringSubmatch(cell, -1); ms != nil {
			for _, m := range ms {
				names = append(names, m[1])
			}
		} else {
			names = append(names, cell)
		}
	}
	if len(names) == 0 {
		t.Fatalf("%s: no table under %q", protocolMD, heading)
	}
	return names
}
