package blob

import (
	"errors"
	"strings"
	"testing"

	"github.com/handoff-health/handoff/internal/testutil"
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
		{UploadKey("abc", "img-1"), true},
		{"uploads/abc", false},
		{"uploads/../img", false},
		{"uploads/abc/.img.meta", false},
		{"uploadsabc/img", false},
		{"uploads/abc/img/extra", false},
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
		{UploadPrefix("abc"), true},
		{"uploads/ab", true},
		{"uploads/", false},
		{"uploads/../", false},
	}
	for _, tc := range cases {
		err := checkPrefix(tc.prefix)
		if (err == nil) != tc.ok {
			t.Errorf("checkPrefix(%q) = %v; want ok=%v", tc.prefix, err, tc.ok)
		}
	}
}

// TestKeyRoots checks that each writer has its own root: upload URLs are signed
// only for upload keys, and Put writes only stored keys.
func TestKeyRoots(t *testing.T) {
	t.Parallel()
	stored, upload := Key("s", "i"), UploadKey("s", "i")
	testutil.Check(t, "stored key", "sessions/s/i", stored)
	testutil.Check(t, "upload key", "uploads/s/i", upload)
	for _, tc := range []struct {
		name  string
		check func(string) error
		key   string
		ok    bool
	}{
		{"upload check, upload key", checkUploadKey, upload, true},
		{"upload check, stored key", checkUploadKey, stored, false},
		{"stored check, stored key", checkStoredKey, stored, true},
		{"stored check, upload key", checkStoredKey, upload, false},
	} {
		if err := tc.check(tc.key); (err == nil) != tc.ok {
			t.Errorf("%s: %v; want ok=%v", tc.name, err, tc.ok)
		}
	}
}
