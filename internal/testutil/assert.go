package testutil

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Equal fails the test when got differs from want, naming what was
// compared and showing a field-by-field diff (-want +got), so a failure
// says which field was wrong instead of dumping two structs.
func Equal[T any](t testing.TB, what string, want, got T, opts ...cmp.Option) {
	t.Helper()
	if diff := cmp.Diff(want, got, opts...); diff != "" {
		t.Fatalf("%s mismatch (-want +got):\n%s", what, diff)
	}
}

// Check is Equal that records the failure and lets the test go on.
func Check[T any](t testing.TB, what string, want, got T, opts ...cmp.Option) bool {
	t.Helper()
	if diff := cmp.Diff(want, got, opts...); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, diff)
		return false
	}
	return true
}
