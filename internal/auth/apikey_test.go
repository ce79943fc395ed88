package auth_test

import (
	"strings"
	"testing"

	"github.com/handoff-health/handoff/internal/auth"
)

func TestParseAPIKeys(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		list    string
		wantLen int
		wantErr string // "" means no error; otherwise a substring
	}{
		{"empty accepts nothing", "", 0, ""},
		{"only separators and spaces", " , ,", 0, ""},
		{"one key", "tools:0123456789abcdef", 1, ""},
		{"two keys with spaces", " tools:0123456789abcdef , bench:fedcba9876543210fe ", 2, ""},
		{"secret may contain colons", "tools:0123:4567:89ab:cdef", 1, ""},
		{"missing colon", "tools0123456789abcdef", 0, "API key 1"},
		{"empty name", ":0123456789abcdef", 0, "API key 1"},
		{"short secret", "tools:short", 0, "at least 16"},
		{"secret of 15 characters", "tools:" + strings.Repeat("s", 15), 0, "at least 16"},
		{"second key bad", "tools:0123456789abcdef,bench", 0, "API key 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k, err := auth.ParseAPIKeys(tc.list, "")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				// The error names the key's position, never its secret.
				for _, part := range strings.Split(tc.list, ",") {
					if _, s, ok := strings.Cut(part, ":"); ok && s != "" && strings.Contains(err.Error(), s) {
						t.Errorf("error shows a secret: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAPIKeys: %v", err)
			}
			if k.Len() != tc.wantLen {
				t.Fatalf("Len = %d, want %d", k.Len(), tc.wantLen)
			}
		})
	}
}

func TestAPIKeysCheck(t *testing.T) {
	t.Parallel()
	k, err := auth.ParseAPIKeys("tools:0123456789abcdef,bench:fedcba9876543210fe", "")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, key, secret string
		want              bool
	}{
		{"first key", "tools", "0123456789abcdef", true},
		{"second key", "bench", "fedcba9876543210fe", true},
		{"wrong secret", "tools", "0123456789abcdeX", false},
		{"another key's secret", "tools", "fedcba9876543210fe", false},
		{"secret prefix", "tools", "0123456789abcde", false},
		{"secret with suffix", "tools", "0123456789abcdef0", false},
		{"unknown name", "ghost", "0123456789abcdef", false},
		{"name case matters", "Tools", "0123456789abcdef", false},
		{"empty", "", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := k.Check(tc.key, tc.secret); got != tc.want {
				t.Fatalf("Check(%q, …) = %v, want %v", tc.key, got, tc.want)
			}
		})
	}

	empty, err := auth.ParseAPIKeys("", "")
	if err != nil {
		t.Fatal(err)
	}
	if empty.Check("", "") {
		t.Error("an empty key list accepted an empty key")
	}
	if empty.Check("tools", "0123456789abcdef") {
		t.Error("an empty key list accepted tools")
	}
}
