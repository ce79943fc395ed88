package archtest

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// TestDocLinksResolve checks every relative link in README.md and docs/*.md:
// the file it names exists, and an anchor names a heading of that file, by
// GitHub's rule for heading anchors. A renamed heading or file breaks a link
// silently on GitHub; here it fails.
func TestDocLinksResolve(t *testing.T) {
	root := filepath.Join("..", "..")
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join(root, "README.md"))
	anchors := map[string]map[string]bool{}
	for _, f := range files {
		anchors[filepath.Clean(f)] = headingAnchors(t, f)
	}
	checked := 0
	for _, f := range files {
		for _, l := range links(t, f) {
			target, anchor, _ := strings.Cut(l.dest, "#")
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path := filepath.Clean(f)
			if target != "" {
				path = filepath.Clean(filepath.Join(filepath.Dir(f), target))
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s:%d: link to %s: no such file", rel(root, f), l.line, target)
					continue
				}
			}
			checked++
			if anchor == "" || !strings.HasSuffix(path, ".md") {
				continue
			}
			heads, ok := anchors[path]
			if !ok {
				heads = headingAnchors(t, path)
				anchors[path] = heads
			}
			if !heads[anchor] {
				t.Errorf("%s:%d: link to %s#%s: no heading of %s has that anchor", rel(root, f), l.line, target, anchor, rel(root, path))
			}
		}
	}
	if checked == 0 {
		t.Fatal("no relative links found: the test is not reading the docs")
	}
}

// TestHeadingAnchor pins the anchor rule the link check relies on.
func TestHeadingAnchor(t *testing.T) {
	for in, want := range map[string]string{
		"The MESSAGE frame written directly (2026-12-03, 10:40–10:48 UTC)": "the-message-frame-written-directly-2026-12-03-10401048-utc",
		"Why 2× on case C cannot be reached on this machine (2026-12-03)":  "why-2-on-case-c-cannot-be-reached-on-this-machine-2026-12-03",
		"Realtime: the Ably WebSocket at `/`":                              "realtime-the-ably-websocket-at-",
		"Register moves the upload, and where the event's tail really is":  "register-moves-the-upload-and-where-the-events-tail-really-is",
		"snake_case and  two spaces":                                       "snake_case-and--two-spaces",
	} {
		if got := anchorOf(in); got != want {
			t.Errorf("anchorOf(%q) = %q; want %q", in, got, want)
		}
	}
}

type link struct {
	dest string
	line int
}

var (
	linkRe    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	headingRe = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
)

// links returns the destinations of the inline links of a markdown file,
// outside fenced code blocks.
func links(t *testing.T, path string) []link {
	var out []link
	eachLine(t, path, func(n int, line string) {
		for _, m := range linkRe.FindAllStringSubmatch(line, -1) {
			out = append(out, link{dest: m[1], line: n})
		}
	})
	return out
}

// headingAnchors returns the anchors of a markdown file's headings, with
// GitHub's "-1", "-2" suffixes for repeats.
func headingAnchors(t *testing.T, path string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	eachLine(t, path, func(_ int, line string) {
		m := headingRe.FindStringSubmatch(line)
		if m == nil {
			return
		}
		a := anchorOf(m[1])
		if n, ok := seen[a]; ok {
			seen[a] = n + 1
			a += "-" + strconv.Itoa(n+1)
		} else {
			seen[a] = 0
		}
		out[a] = true
	})
	return out
}

// anchorOf is GitHub's heading anchor: lower case, letters, marks, numbers,
// connector punctuation, spaces and hyphens kept, spaces made hyphens,
// everything else (other punctuation, symbols, backticks) dropped.
func anchorOf(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-', unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.Pc):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// eachLine calls fn with every line of path outside fenced code blocks.
func eachLine(t *testing.T, path string, fn func(n int, line string)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	fenced := false
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if !fenced {
			fn(n, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

func rel(root, path string) string {
	if r, err := filepath.Rel(root, path); err == nil {
		return r
	}
	return path
}
