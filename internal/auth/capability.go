package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Capability is what a credential may do on which channels, in Ably's
// model: a map from channel resources (names, or globs) to operations,
// written as Ably writes it:
//
//	{"*":["subscribe"], "bench:*":["publish","subscribe"]}
//
// Resource globs follow Ably's rules (ably.com/docs/auth/capabilities):
//   - segments are separated by ":"; "*" as a segment matches exactly one
//     segment, and as the last segment matches one or more;
//   - so "*" matches every channel, "foo:*" every channel in namespace foo
//     ("foo:bar", "foo:bar:baz", but not "foo"), and "foo:*:baz" matches
//     "foo:bar:baz" but not "foo:bar:bam:baz";
//   - "*" inside a segment is a literal: "foo*" names one channel;
//   - a leading "[qualifier]" names queues or metachannels; only "[*]"
//     also covers plain channels, which are all handoff has.
//
// The zero Capability grants nothing. It is immutable once parsed, so one
// value may be shared by every request.
type Capability struct {
	rules []capRule
}

type capRule struct {
	resource string
	ops      []string // sorted, deduplicated
}

// Operations handoff checks. Ably defines more (see knownOps); they parse,
// so a capability written for Ably works here, but nothing asks for them.
const (
	OpPublish   = "publish"
	OpSubscribe = "subscribe"
	OpHistory   = "history"
	OpPresence  = "presence"
	// OpAll in a capability grants every operation.
	OpAll = "*"
)

// knownOps are Ably's capability operations. An operation outside this
// list is refused at parse time: it is far more likely a typo ("pubish")
// than an operation, and a typo would silently grant less than intended.
var knownOps = []string{
	OpAll, OpPublish, OpSubscribe, OpHistory, OpPresence,
	"stats", "channel-metadata", "push-subscribe", "push-admin", "privileged-headers",
	"object-subscribe", "object-publish", "annotation-subscribe", "annotation-publish",
}

// AllowAll is the capability {"*":["*"]}: every operation on every channel.
// It is what Ably gives a key configured without restrictions, and what an
// API key without a capability of its own gets.
var AllowAll = Capability{rules: []capRule{{resource: "*", ops: []string{OpAll}}}}

// ParseCapability parses a capability in Ably's JSON form. It refuses what
// would grant nothing or something unintended: an empty object, a
// resource without operations, an empty resource, an unknown operation.
// Errors name the resource or operation, which are never secret.
func ParseCapability(s string) (Capability, error) {
	var m map[string][]string
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(&m); err != nil {
		return Capability{}, fmt.Errorf("capability is not a JSON object of channel → [operations]: %w", err)
	}
	if dec.More() {
		return Capability{}, errors.New("capability has trailing data after its JSON object")
	}
	if len(m) == 0 {
		return Capability{}, errors.New("capability grants nothing: give at least one channel and its operations")
	}
	var c Capability
	for resource, ops := range m {
		r, err := parseRule(resource, ops)
		if err != nil {
			return Capability{}, err
		}
		c.rules = append(c.rules, r)
	}
	sort.Slice(c.rules, func(i, j int) bool { return c.rules[i].resource < c.rules[j].resource })
	return c, nil
}

func parseRule(resource string, ops []string) (capRule, error) {
	if resource == "" {
		return capRule{}, errors.New("capability has an empty channel name")
	}
	if len(ops) == 0 {
		return capRule{}, fmt.Errorf("capability for %q lists no operations", resource)
	}
	r := capRule{resource: resource}
	for _, op := range ops {
		if !slices.Contains(knownOps, op) {
			return capRule{}, fmt.Errorf("capability for %q: unknown operation %q (known: %s)", resource, op, strings.Join(knownOps, ", "))
		}
		if !slices.Contains(r.ops, op) {
			r.ops = append(r.ops, op)
		}
	}
	sort.Strings(r.ops)
	return r, nil
}

// Allows reports whether the capability permits op on channel. An op of
// "*" asks for every operation, so only a rule granting "*" allows it.
func (c Capability) Allows(channel, op string) bool {
	if channel == "" || op == "" {
		return false
	}
	for _, r := range c.rules {
		if (slices.Contains(r.ops, OpAll) || slices.Contains(r.ops, op)) && matchResource(r.resource, channel) {
			return true
		}
	}
	return false
}

// IsZero reports whether c grants nothing.
func (c Capability) IsZero() bool { return len(c.rules) == 0 }

// String is the capability's canonical JSON: resources and operations
// sorted, no spaces. Two capabilities that grant the same rules print the
// same, which a token's signature can rely on.
func (c Capability) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, r := range c.rules {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(r.resource)
		v, _ := json.Marshal(r.ops)
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.String()
}

// matchResource applies Ably's resource glob to a channel name.
func matchResource(resource, channel string) bool {
	rq, rname, ok := splitQualifier(resource)
	if !ok {
		return false
	}
	cq, cname, ok := splitQualifier(channel)
	if !ok {
		return false
	}
	// "[*]" covers every qualifier and none; otherwise they must agree.
	if rq != "*" && rq != cq {
		return false
	}
	return matchSegments(rname, cname)
}

// splitQualifier splits "[meta]name" into "meta" and "name"; a name
// without a qualifier has "". A "[" without its "]" is malformed.
func splitQualifier(s string) (qualifier, name string, ok bool) {
	if !strings.HasPrefix(s, "[") {
		return "", s, true
	}
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return "", "", false
	}
	return s[1:end], s[end+1:], true
}

// matchSegments matches the ":"-separated segments of a resource glob
// against a channel's, walking both strings: it runs for every
// authorized request, and splitting them allocated twice per rule.
func matchSegments(res, ch string) bool {
	chLeft := true // a name always has a segment, even ""
	for {
		seg, resRest, resMore := strings.Cut(res, ":")
		if seg == "*" && !resMore {
			// A trailing wildcard stands for one or more segments.
			return chLeft
		}
		if !chLeft {
			return false
		}
		cseg, chRest, chMore := strings.Cut(ch, ":")
		if seg != "*" && seg != cseg {
			return false
		}
		if !resMore {
			return !chMore
		}
		res, ch, chLeft = resRest, chRest, chMore
	}
}

// Intersect returns what both c and o allow, as Ably computes a token's
// capability from the requested one and the key's: for each pair of rules
// where one resource glob covers the other, the narrower resource gets the
// operations both grant ("*" grants every operation). It is empty when
// nothing overlaps.
func (c Capability) Intersect(o Capability) Capability {
	merged := map[string][]string{}
	for _, a := range c.rules {
		for _, b := range o.rules {
			res, ok := narrower(a.resource, b.resource)
			if !ok {
				continue
			}
			for _, op := range commonOps(a.ops, b.ops) {
				if !slices.Contains(merged[res], op) {
					merged[res] = append(merged[res], op)
				}
			}
		}
	}
	var out Capability
	for res, ops := range merged {
		if slices.Contains(ops, OpAll) {
			ops = []string{OpAll}
		}
		sort.Strings(ops)
		out.rules = append(out.rules, capRule{resource: res, ops: ops})
	}
	sort.Slice(out.rules, func(i, j int) bool { return out.rules[i].resource < out.rules[j].resource })
	return out
}

// narrower returns whichever of two resource globs the other covers.
func narrower(a, b string) (string, bool) {
	switch {
	case matchResource(a, b):
		return b, true
	case matchResource(b, a):
		return a, true
	}
	return "", false
}

// commonOps returns the operations granted by both lists.
func commonOps(a, b []string) []string {
	switch {
	case slices.Contains(a, OpAll):
		return b
	case slices.Contains(b, OpAll):
		return a
	}
	var out []string
	for _, op := range a {
		if slices.Contains(b, op) {
			out = append(out, op)
		}
	}
	return out
}
