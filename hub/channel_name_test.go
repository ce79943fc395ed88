package hub

import (
	"context"
	"strings"
	"testing"

	"github.com/handoff-health/handoff/internal/testutil"
)

func TestValidChannel(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"session:abc":                 true,
		"client/0/channel/1":          true,
		"this?is#an?encoding#channel": true,
		"with space":                  true,
		"ünïcødé ✓":                   true,
		"a{b}c":                       true,
		"}{":                          true,
		"a]":                          true,
		strings.Repeat("x", 200):      true,
		"":                            false,
		strings.Repeat("x", 201):      false,
		"[filter=abc]test":            false,
		"[?rewind=1]x":                false,
		":starts-with-colon":          false,
		"new\nline":                   false,
		"tab\there":                   false,
		"nul\x00":                     false,
		"\xff\xfe not UTF-8":          false,
		"c1 control \u0085 (NEL)":     false,
	} {
		testutil.Check(t, "ValidChannel("+strings.ReplaceAll(name, "\n", `\n`)+")", want, ValidChannel(name))
	}
}

// TestBackendChannelNames: names with the characters Ably allows and the
// old alphabet did not (braces among them, which must not split a
// channel's Redis keys across Cluster slots, nor make two channels share
// keys) keep their own histories and live delivery on every backend.
func TestBackendChannelNames(t *testing.T) {
	t.Parallel()
	names := []string{"a", "a}:meta", "a{b}", "{a}", "a}", "client/0/channel/1", "this?is#an?encoding#channel", "ünï cødé"}
	for _, bf := range backends() {
		t.Run(bf.name, func(t *testing.T) {
			t.Parallel()
			b := bf.open(t, backendOpts{})
			rec := &recorder{}
			run(t, b, rec)
			ctx := context.Background()
			for _, n := range names {
				noErr(t, "Subscribe "+n, b.Subscribe(ctx, n))
			}
			for i, n := range names {
				publishN(t, b, n, i+1)
			}
			for i, n := range names {
				evs, _, err := b.History(ctx, n, Cursor{})
				noErr(t, "History "+n, err)
				offsets(t, evs, 1, uint64(i+1))
				testutil.Eventually(t, "live events of "+n, func() bool { return len(rec.of(n)) >= i+1 })
				offsets(t, rec.of(n), 1, uint64(i+1))
			}
		})
	}
}
