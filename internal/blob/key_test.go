package blob

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckKey(t *testing.T) {
	t.Parallel()
	cases := []struct {
		key string
		ok  bool
	}{
		{"sessions/abc/img-1", true},
		{Key("0b7f9c2e-5a1d-4c3b-9e8f-1a2b3c4d5e6f", "A_b.c-9"), true},
		{"sessions/" + strings.Repeat("a", maxSegment) + "/x", true},
		{"sessions/" + strings.Repeat("a", maxSegment+1) + "/x", false},
		{"", false},
		{"sessions/", false},
		{"sessions/abc", false},
		{"sessions/abc/", false},
		{"sessions//img", false},
		{"sessions/abc/img/extra", false},
		{"other/abc/img", false},
		{"/sessions/abc/img", false},
		{"sessions/../img", false},
		{"sessions/abc/..", false},
		{"sessions/./img", false},
		{"sessions/abc/.img.meta", false},
		{"sessions/abc/.upload-123", false},
		{"sessions/abc/img%2F", false},
		{"sessions/abc/img name", false},
		{"sessions/abc/img\n", false},
		{`sessions/abc\..\img`, false},
		{"sessions/abc/ïmg", false},
	}
	for _, tc := range cases {
		err := CheckKey(tc.key)
		if (err == nil) != tc.ok {
			t.Errorf("CheckKey(%q) = %v; want ok=%v", tc.key, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidKey) {
			t.Errorf("CheckKey(%q) = %v; want ErrInvalidKey", tc.key, err)
		}
	}
}

func TestCheckPrefix(t *testing.T) {
	t.Parallel()
	cases := []struct {
		prefix string
		ok     bool
	}{
		{SessionPrefix("abc"), true},
		{"sessions/ab", true},
		{"sessions/abc/im", true},
		{"", false},
		{"sessions/", false},
		{"sessions", false},
		{"sessions/abc/img/", false},
		{"sessions/../", false},
		{"sessions/.", false},
		{"sessions//", false},
		{"other/abc/", false},
	}
	for _, tc := range cases {
		err := checkPrefix(tc.prefix)
		if (err == nil) != tc.ok {
			t.Errorf("checkPrefix(%q) = %v; want ok=%v", tc.prefix, err, tc.ok)
		}
	}
}
