package protocol_test

import (
	"os"
	"regexp"
	"testing"

	"github.com/handoff-health/handoff/internal/testutil"
	"github.com/handoff-health/handoff/protocol"
)

// realtimeJS is the browser client, which cannot import Go and so keeps
// copies of the protocol's names in tables at its top.
const realtimeJS = "../webui/static/realtime.js"

// jsTables maps a Go constant type to the name of the table realtime.js
// keeps it in.
var jsTables = map[string]string{"Op": "Op", "FrameType": "Frame", "CloseCode": "Close", "ErrorCode": "ErrorCode",
	"PresenceAction": "PresenceAction"}

var (
	jsTable = regexp.MustCompile(`(?s)export const (\w+) = Object\.freeze\(\{(.*?)\}\);`)
	jsEntry = regexp.MustCompile(`(\w+):\s*(?:'([^']*)'|(\d+))`)
	jsPath  = regexp.MustCompile(`export const PATH = '([^']*)';`)
)

// TestBrowserClientMatchesProtocol: every table of realtime.js holds
// exactly the protocol's constants, by name and value, both ways.
func TestBrowserClientMatchesProtocol(t *testing.T) {
	t.Parallel()
	src := readFile(t, realtimeJS)
	tables := make(map[string]map[string]string)
	for _, m := range jsTable.FindAllStringSubmatch(src, -1) {
		entries := make(map[string]string)
		for _, e := range jsEntry.FindAllStringSubmatch(m[2], -1) {
			entries[e[1]] = e[2] + e[3]
		}
		tables[m[1]] = entries
	}
	decl := declared(t)
	for _, k := range kinds() {
		want := make(map[string]string)
		for name, v := range decl[k.goType] {
			want[jsName(name, k.prefix)] = v
		}
		table := jsTables[k.goType]
		if tables[table] == nil {
			t.Errorf("%s has no %s table (export const %s = Object.freeze({…}))", realtimeJS, table, table)
			continue
		}
		testutil.Check(t, realtimeJS+" "+table+" table", want, tables[table])
	}
	m := jsPath.FindStringSubmatch(src)
	if m == nil {
		t.Fatalf("%s has no PATH constant", realtimeJS)
	}
	testutil.Check(t, realtimeJS+" PATH", protocol.Path, m[1])
}

// TestBrowserClientNamesWireConstants: outside its tables, realtime.js
// names every frame type, op, error code and close code through them, so
// the tables are the only copy to keep in step.
func TestBrowserClientNamesWireConstants(t *testing.T) {
	t.Parallel()
	code := jsTable.ReplaceAllString(readFile(t, realtimeJS), "")
	code = regexp.MustCompile(`(?m)(^|\s)//.*$`).ReplaceAllString(code, "")
	for what, re := range map[string]*regexp.Regexp{
		"a frame type in a case label": regexp.MustCompile(`case\s+'[^']*'\s*:`),
		"an op in a frame":             regexp.MustCompile(`type:\s*'`),
		"a presence action":            regexp.MustCompile(`action(:|\s*[!=]==?)\s*'`),
		"an error code compared":       regexp.MustCompile(`code\s*[!=]==?\s*'`),
		"a close code as a number":     regexp.MustCompile(`code\s*[!=]==?\s*\d|\.close\(\s*\d`),
	} {
		for _, m := range re.FindAllString(code, -1) {
			t.Errorf("%s spells %s literally (%q); use its table", realtimeJS, what, m)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
