package protocol_test

import (
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/handoff-health/handoff/internal/testutil"
	"github.com/handoff-health/handoff/protocol"
)

// kind is one group of wire constants: its Go type, the prefix its
// constant names share, and the values the package's list function gives.
type kind struct {
	goType, prefix string
	listed         []string
}

func kinds() []kind {
	return []kind{
		{"Op", "Op", strs(protocol.Ops())},
		{"FrameType", "Frame", strs(protocol.FrameTypes())},
		{"CloseCode", "Close", ints(protocol.CloseCodes())},
		{"ErrorCode", "Code", strs(protocol.ErrorCodes())},
		{"PresenceAction", "Presence", strs(protocol.PresenceActions())},
	}
}

// declared parses protocol.go and returns, per Go type, every constant of
// that type as name → value. Reading the source rather than a hand-made
// list means a constant added to protocol.go is checked everywhere at once.
func declared(t *testing.T) map[string]map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "protocol.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]map[string]string)
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			typ, ok := vs.Type.(*ast.Ident)
			if !ok || len(vs.Values) != len(vs.Names) {
				continue
			}
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok {
					t.Fatalf("%s: value is not a literal", name.Name)
				}
				if out[typ.Name] == nil {
					out[typ.Name] = make(map[string]string)
				}
				v := constant.MakeFromLiteral(lit.Value, lit.Kind, 0)
				if v.Kind() == constant.String {
					out[typ.Name][name.Name] = constant.StringVal(v)
				} else {
					out[typ.Name][name.Name] = v.ExactString()
				}
			}
		}
	}
	return out
}

// TestListsHoldEveryConstant: Ops, FrameTypes, CloseCodes, ErrorCodes and
// PresenceActions
// (which the server uses for metrics labels and the tests below use as the
// truth) list every constant declared of their type, once.
func TestListsHoldEveryConstant(t *testing.T) {
	t.Parallel()
	decl := declared(t)
	for _, k := range kinds() {
		testutil.Check(t, k.goType+" constants listed", sorted(values(decl[k.goType])), sorted(k.listed))
	}
}

// jsName is the browser's name for a Go constant: CloseInternalError is
// INTERNAL_ERROR, CodeInvalidJSON is INVALID_JSON.
func jsName(goName, prefix string) string {
	rs := []rune(strings.TrimPrefix(goName, prefix))
	var b strings.Builder
	for i, r := range rs {
		if i > 0 && unicode.IsUpper(r) && unicode.IsLower(rs[i-1]) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

func values(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func strs[T ~string](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = string(x)
	}
	return out
}

func ints[T ~int](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = strconv.Itoa(int(x))
	}
	return out
}
