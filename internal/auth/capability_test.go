package auth_test

import (
	"strings"
	"testing"

	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestCapabilityGlobs: Ably's resource rules, from its documentation's own
// examples, and the edges around them.
func TestCapabilityGlobs(t *testing.T) {
	t.Parallel()
	cases := []struct {
		resource, channel string
		want              bool
	}{
		// "*" matches any channel, whatever its segments.
		{"*", "a", true},
		{"*", "session:abc", true},
		{"*", "a:b:c:d", true},
		// "namespace:*" matches every channel in the namespace, however deep.
		{"namespace:*", "namespace:channel", true},
		{"namespace:*", "namespace:channel:other", true},
		{"namespace:*", "namespace", false},
		{"namespace:*", "namespacex:channel", false},
		{"namespace:*", "other:namespace:channel", false},
		{"session:*", "session:7c1e0a4e-0000-4000-8000-000000000001", true},
		{"session:*", "sessions:x", false},
		// A wildcard inside the name stands for exactly one segment.
		{"foo:*:baz", "foo:bar:baz", true},
		{"foo:*:baz", "foo:bar:bam:baz", false},
		{"foo:*:baz", "foo:baz", false},
		{"foo:*:baz", "foo:bar:bax", false},
		{"*:baz", "foo:baz", true},
		{"*:baz", "baz", false},
		// "*" inside a segment is a literal.
		{"foo*", "foo*", true},
		{"foo*", "foobar", false},
		{"foo*", "foo", false},
		{"foo:b*", "foo:bar", false},
		// Exact names match only themselves, case-sensitively.
		{"bench:1", "bench:1", true},
		{"bench:1", "bench:10", false},
		{"bench:1", "bench:1:x", false},
		{"bench:1", "Bench:1", false},
		{"bench", "bench:1", false},
		// Qualifiers: "[*]" covers plain channels too; others never do.
		{"[*]*", "session:abc", true},
		{"[*]bench:*", "bench:1", true},
		{"[*]bench:*", "session:1", false},
		{"[meta]*", "session:abc", false},
		{"[queue]*", "bench", false},
		{"*", "[meta]log", false},
		{"[meta]*", "[meta]log", true},
		{"[meta*", "bench", false},
	}
	for _, tc := range cases {
		c, err := auth.ParseCapability(`{"` + tc.resource + `":["publish"]}`)
		if err != nil {
			t.Fatalf("ParseCapability(%q): %v", tc.resource, err)
		}
		testutil.Check(t, tc.resource+" allows publish on "+tc.channel, tc.want, c.Allows(tc.channel, auth.OpPublish))
	}
}

// TestCapabilityOperations: a rule grants its operations only; "*" grants
// every one; several rules add up.
func TestCapabilityOperations(t *testing.T) {
	t.Parallel()
	c, err := auth.ParseCapability(`{"bench:*":["publish","subscribe"],"session:*":["subscribe"],"ops":["*"],"audit:*":["history","history"]}`)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		channel, op string
		want        bool
	}{
		{"bench:1", auth.OpPublish, true},
		{"bench:1", auth.OpSubscribe, true},
		{"bench:1", auth.OpHistory, false},
		{"bench:1", auth.OpPresence, false},
		{"session:abc", auth.OpSubscribe, true},
		{"session:abc", auth.OpPublish, false},
		{"ops", auth.OpPublish, true},
		{"ops", auth.OpPresence, true},
		{"ops", "stats", true},
		{"ops", auth.OpAll, true},
		{"bench:1", auth.OpAll, false}, // asking for everything needs "*"
		{"audit:x", auth.OpHistory, true},
		{"audit:x", auth.OpPublish, false},
		{"elsewhere", auth.OpSubscribe, false},
		{"", auth.OpPublish, false},
		{"bench:1", "", false},
	}
	for _, tc := range cases {
		testutil.Check(t, tc.op+" on "+tc.channel, tc.want, c.Allows(tc.channel, tc.op))
	}
	// Canonical form: sorted resources, sorted and deduplicated operations.
	testutil.Equal(t, "String",
		`{"audit:*":["history"],"bench:*":["publish","subscribe"],"ops":["*"],"session:*":["subscribe"]}`, c.String())
	again, err := auth.ParseCapability(c.String())
	if err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "String after a round trip", c.String(), again.String())
}

func TestCapabilityAllowAllAndZero(t *testing.T) {
	t.Parallel()
	testutil.Equal(t, "AllowAll", `{"*":["*"]}`, auth.AllowAll.String())
	for _, op := range []string{auth.OpPublish, auth.OpSubscribe, auth.OpHistory, auth.OpPresence, auth.OpAll} {
		testutil.Check(t, "AllowAll allows "+op, true, auth.AllowAll.Allows("session:abc", op))
	}
	var zero auth.Capability
	testutil.Check(t, "zero IsZero", true, zero.IsZero())
	testutil.Check(t, "zero allows publish", false, zero.Allows("session:abc", auth.OpPublish))
	testutil.Equal(t, "zero String", `{}`, zero.String())
}

func TestParseCapabilityRefuses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in, wantErr string
	}{
		{"empty", ``, "not a JSON object"},
		{"not JSON", `{`, "not a JSON object"},
		{"array", `["*"]`, "not a JSON object"},
		{"ops not a list", `{"*":"publish"}`, "not a JSON object"},
		{"op not a string", `{"*":[1]}`, "not a JSON object"},
		{"trailing data", `{"*":["*"]} {}`, "trailing"},
		{"grants nothing", `{}`, "grants nothing"},
		{"null", `null`, "grants nothing"},
		{"no operations", `{"bench:*":[]}`, `"bench:*" lists no operations`},
		{"empty resource", `{"":["publish"]}`, "empty channel"},
		{"typo", `{"bench:*":["pubish"]}`, `unknown operation "pubish"`},
		{"upper case", `{"bench:*":["Publish"]}`, `unknown operation "Publish"`},
	}
	for _, tc := range cases {
		_, err := auth.ParseCapability(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: err = %v, want one containing %q", tc.name, err, tc.wantErr)
		}
	}
	// Every operation Ably defines parses, so an Ably capability works here.
	if _, err := auth.ParseCapability(`{"*":["publish","subscribe","presence","history","stats","channel-metadata","push-subscribe","push-admin","privileged-headers","object-subscribe","object-publish","annotation-subscribe","annotation-publish"]}`); err != nil {
		t.Errorf("Ably's operations: %v", err)
	}
}

// TestAPIKeyCapabilities: a key without a capability of its own may do
// everything; one given a capability gets exactly that; a capability for
// an unknown key, or a bad one, refuses the whole configuration.
func TestAPIKeyCapabilities(t *testing.T) {
	t.Parallel()
	const list = "ops.key1:0123456789abcdef,bench:fedcba9876543210fe"
	k, err := auth.ParseAPIKeys(list, `{"bench":{"bench:*":["publish"]}}`)
	if err != nil {
		t.Fatal(err)
	}
	ops, ok := k.Authenticate("ops.key1", "0123456789abcdef")
	testutil.Check(t, "ops.key1 authenticates", true, ok)
	testutil.Check(t, "ops.key1 capability", auth.AllowAll.String(), ops.String())
	bench, ok := k.Authenticate("bench", "fedcba9876543210fe")
	testutil.Check(t, "bench authenticates", true, ok)
	testutil.Check(t, "bench may publish on bench:1", true, bench.Allows("bench:1", auth.OpPublish))
	testutil.Check(t, "bench may publish on session:x", false, bench.Allows("session:x", auth.OpPublish))
	wrong, ok := k.Authenticate("bench", "0123456789abcdef")
	testutil.Check(t, "bench with another key's secret authenticates", false, ok)
	testutil.Check(t, "capability of a failed authentication is zero", true, wrong.IsZero())

	for _, tc := range []struct{ name, caps, wantErr string }{
		{"unknown key", `{"ghost":{"*":["*"]}}`, `"ghost", which is not a configured API key`},
		{"bad capability", `{"bench":{"*":["pubish"]}}`, `API key "bench": capability for "*": unknown operation`},
		{"not an object", `[1]`, "JSON object of keyName"},
		{"capability grants nothing", `{"bench":{}}`, "grants nothing"},
	} {
		_, err := auth.ParseAPIKeys(list, tc.caps)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: err = %v, want one containing %q", tc.name, err, tc.wantErr)
			continue
		}
		for _, secret := range []string{"0123456789abcdef", "fedcba9876543210fe"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: error shows a secret: %v", tc.name, err)
			}
		}
	}
}

func TestCapabilityIntersect(t *testing.T) {
	t.Parallel()
	cases := []struct{ a, b, want string }{
		{`{"*":["*"]}`, `{"bench:*":["publish"]}`, `{"bench:*":["publish"]}`},
		{`{"bench:*":["publish","history"]}`, `{"bench:1":["*"]}`, `{"bench:1":["history","publish"]}`},
		{`{"*":["subscribe","history"]}`, `{"*":["publish","history"]}`, `{"*":["history"]}`},
		{`{"a":["publish"]}`, `{"b":["publish"]}`, `{}`},
		{`{"a":["publish"]}`, `{"a":["subscribe"]}`, `{}`},
		{`{"session:*":["*"],"bench:*":["publish"]}`, `{"*":["history"]}`, `{"session:*":["history"]}`},
	}
	for _, tc := range cases {
		a, err := auth.ParseCapability(tc.a)
		if err != nil {
			t.Fatal(err)
		}
		b, err := auth.ParseCapability(tc.b)
		if err != nil {
			t.Fatal(err)
		}
		testutil.Check(t, tc.a+" ∩ "+tc.b, tc.want, a.Intersect(b).String())
		testutil.Check(t, tc.b+" ∩ "+tc.a, tc.want, b.Intersect(a).String())
	}
}
