package ablyproto

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Subscription filters: the expression of a "[filter=<base64>]name"
// channel qualifier. Ably documents a JMESPath subset over the message's
// name and extras.headers; this evaluator accepts exactly that subset:
//
//	name, headers.<key> (or headers."<key>")
//	== != < > <= >=
//	`"json string"` `1234` `true` `false` `null`   (JMESPath literals)
//	'raw string'
//	&& || ! ( )
//
// Comparisons follow JMESPath: == and != compare values of any type,
// the ordering operators compare numbers only (anything else is null,
// which is false). A bare operand is tested for truthiness.

// Bounds on a filter expression, so a hostile qualifier cannot cost more
// than a small, fixed amount per delivered message.
const (
	MaxFilterLen   = 1024
	MaxFilterDepth = 32
)

// ErrBadFilter is wrapped by ParseFilter's errors.
var ErrBadFilter = errors.New("invalid filter expression")

// Filter is a parsed subscription filter.
type Filter struct{ root fnode }

// FilterInput is what a filter sees of a message.
type FilterInput struct {
	Name string
	// Headers is extras.headers as a JSON object ("" when absent).
	Headers string
}

type fkind uint8

const (
	fLit fkind = iota
	fName
	fHeader
	fNot
	fAnd
	fOr
	fCmp
)

type fnode struct {
	kind fkind
	op   string
	lit  any // fLit: nil, string, float64, bool
	key  string
	a, b *fnode
}

// ParseFilter parses expr; errors wrap ErrBadFilter.
func ParseFilter(expr string) (*Filter, error) {
	if len(expr) > MaxFilterLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrBadFilter, MaxFilterLen)
	}
	p := &fparser{s: expr}
	n, err := p.or(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.s) {
		return nil, p.errf("unexpected %q", p.rest())
	}
	return &Filter{root: *n}, nil
}

// Match reports whether the message passes the filter. Headers that are
// not a JSON object count as absent.
func (f *Filter) Match(in FilterInput) bool {
	var h map[string]any
	if in.Headers != "" {
		if json.Unmarshal([]byte(in.Headers), &h) != nil {
			h = nil
		}
	}
	return truthy(f.root.eval(in.Name, h))
}

func (n *fnode) eval(name string, h map[string]any) any {
	switch n.kind {
	case fLit:
		return n.lit
	case fName:
		return name
	case fHeader:
		if v, ok := h[n.key]; ok {
			return v
		}
		return nil
	case fNot:
		return !truthy(n.a.eval(name, h))
	case fAnd:
		// JMESPath: a && b is a when a is falsy, else b.
		if l := n.a.eval(name, h); !truthy(l) {
			return l
		}
		return n.b.eval(name, h)
	case fOr:
		if l := n.a.eval(name, h); truthy(l) {
			return l
		}
		return n.b.eval(name, h)
	case fCmp:
		l, r := n.a.eval(name, h), n.b.eval(name, h)
		switch n.op {
		case "==":
			return equal(l, r)
		case "!=":
			return !equal(l, r)
		}
		x, ok1 := l.(float64)
		y, ok2 := r.(float64)
		if !ok1 || !ok2 {
			return nil
		}
		switch n.op {
		case "<":
			return x < y
		case "<=":
			return x <= y
		case ">":
			return x > y
		default:
			return x >= y
		}
	}
	return nil
}

// equal is JMESPath equality of the scalar values headers hold (an object
// or array header value is never equal to a literal, which is a scalar).
func equal(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	}
	return false
}

func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

type fparser struct {
	s string
	i int
}

func (p *fparser) errf(format string, a ...any) error {
	return fmt.Errorf("%w: at %d: %s", ErrBadFilter, p.i, fmt.Sprintf(format, a...))
}

func (p *fparser) rest() string {
	r := p.s[p.i:]
	if len(r) > 16 {
		r = r[:16]
	}
	return r
}

func (p *fparser) space() {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *fparser) eat(tok string) bool {
	p.space()
	if strings.HasPrefix(p.s[p.i:], tok) {
		p.i += len(tok)
		return true
	}
	return false
}

func (p *fparser) or(depth int) (*fnode, error) {
	if depth > MaxFilterDepth {
		return nil, p.errf("nested deeper than %d", MaxFilterDepth)
	}
	l, err := p.and(depth + 1)
	for err == nil && p.eat("||") {
		var r *fnode
		if r, err = p.and(depth + 1); err == nil {
			l = &fnode{kind: fOr, a: l, b: r}
		}
	}
	return l, err
}

func (p *fparser) and(depth int) (*fnode, error) {
	l, err := p.unary(depth + 1)
	for err == nil && p.eat("&&") {
		var r *fnode
		if r, err = p.unary(depth + 1); err == nil {
			l = &fnode{kind: fAnd, a: l, b: r}
		}
	}
	return l, err
}

func (p *fparser) unary(depth int) (*fnode, error) {
	if depth > MaxFilterDepth {
		return nil, p.errf("nested deeper than %d", MaxFilterDepth)
	}
	p.space()
	if strings.HasPrefix(p.s[p.i:], "!") && !strings.HasPrefix(p.s[p.i:], "!=") {
		p.i++
		a, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		return &fnode{kind: fNot, a: a}, nil
	}
	l, err := p.primary(depth + 1)
	if err != nil {
		return nil, err
	}
	for _, op := range []string{"==", "!=", "<=", ">=", "<", ">"} {
		if p.eat(op) {
			r, err := p.primary(depth + 1)
			if err != nil {
				return nil, err
			}
			return &fnode{kind: fCmp, op: op, a: l, b: r}, nil
		}
	}
	return l, nil
}

func (p *fparser) primary(depth int) (*fnode, error) {
	p.space()
	if p.i >= len(p.s) {
		return nil, p.errf("unexpected end")
	}
	switch c := p.s[p.i]; {
	case c == '(':
		p.i++
		n, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if !p.eat(")") {
			return nil, p.errf("missing )")
		}
		return n, nil
	case c == '`':
		end := strings.IndexByte(p.s[p.i+1:], '`')
		if end < 0 {
			return nil, p.errf("unterminated literal")
		}
		raw := p.s[p.i+1 : p.i+1+end]
		var v any
		if err := json.Unmarshal([]byte(raw), &v); err != nil {
			return nil, p.errf("literal is not JSON")
		}
		switch v.(type) {
		case nil, string, float64, bool:
		default:
			return nil, p.errf("only string, number, boolean and null literals are supported")
		}
		p.i += end + 2
		return &fnode{kind: fLit, lit: v}, nil
	case c == '\'':
		s, err := p.quoted('\'')
		if err != nil {
			return nil, err
		}
		return &fnode{kind: fLit, lit: s}, nil
	case isIdentStart(c):
		id := p.ident()
		switch id {
		case "name":
			return &fnode{kind: fName}, nil
		case "headers":
			if !p.eat(".") {
				return nil, p.errf("headers must be followed by .<key>")
			}
			var key string
			if p.i < len(p.s) && p.s[p.i] == '"' {
				k, err := p.quoted('"')
				if err != nil {
					return nil, err
				}
				key = k
			} else if p.i < len(p.s) && isIdentStart(p.s[p.i]) {
				key = p.ident()
			} else {
				return nil, p.errf("missing header key")
			}
			return &fnode{kind: fHeader, key: key}, nil
		}
		return nil, p.errf("unknown field %q: only name and headers.<key>", id)
	}
	return nil, p.errf("unexpected %q", p.rest())
}

// quoted reads a q-delimited string with backslash escapes of q and '\'.
func (p *fparser) quoted(q byte) (string, error) {
	var b strings.Builder
	for i := p.i + 1; i < len(p.s); i++ {
		switch c := p.s[i]; {
		case c == q:
			p.i = i + 1
			return b.String(), nil
		case c == '\\' && i+1 < len(p.s) && (p.s[i+1] == q || p.s[i+1] == '\\'):
			b.WriteByte(p.s[i+1])
			i++
		default:
			b.WriteByte(c)
		}
	}
	return "", p.errf("unterminated string")
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func (p *fparser) ident() string {
	j := p.i
	for j < len(p.s) && (isIdentStart(p.s[j]) || (p.s[j] >= '0' && p.s[j] <= '9')) {
		j++
	}
	id := p.s[p.i:j]
	p.i = j
	return id
}
