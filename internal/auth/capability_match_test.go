package auth

import (
	"strings"
	"testing"
)

// TestMatchSegmentsAsSplit: the walking matcher agrees with the glob rule
// written over strings.Split, on every pair of short names built from a
// few segments.
func TestMatchSegmentsAsSplit(t *testing.T) {
	t.Parallel()
	bySplit := func(res, ch []string) bool {
		for i, seg := range res {
			last := i == len(res)-1
			switch {
			case seg == "*" && last:
				return len(ch) >= len(res)
			case i >= len(ch):
				return false
			case seg != "*" && seg != ch[i]:
				return false
			}
		}
		return len(ch) == len(res)
	}
	var names []string
	var build func(prefix string, depth int)
	build = func(prefix string, depth int) {
		names = append(names, prefix)
		if depth == 3 {
			return
		}
		for _, seg := range []string{"", "*", "a", "b", "a*"} {
			build(prefix+":"+seg, depth+1)
			if depth == 0 {
				build(seg, depth+1)
			}
		}
	}
	build("", 0)
	for _, res := range names {
		for _, ch := range names {
			want := bySplit(strings.Split(res, ":"), strings.Split(ch, ":"))
			if got := matchSegments(res, ch); got != want {
				t.Errorf("matchSegments(%q, %q) = %v, want %v", res, ch, got, want)
			}
		}
	}
}
