package blob

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestLocalHandlerRefusals covers what only Local's own handler decides; the
// refusals both stores share are in TestStoreContract.
func TestLocalHandlerRefusals(t *testing.T) {
	t.Parallel()
	key := UploadKey("sess1", "img1")
	body := testutil.JPEGPrefixed(100, 0)
	cases := []struct {
		name   string
		method string
		url    func(up Upload, get string) string
		chunk  bool // send without Content-Length
		want   refusal
	}{
		{"tampered upload signature", "PUT", func(up Upload, _ string) string { return tamper(up.URL, "sig") }, false, refusal{403, "signature_invalid"}},
		{"upload with extended expiry", "PUT", func(up Upload, _ string) string { return tamper(up.URL, "exp") }, false, refusal{403, "signature_invalid"}},
		{"upload with bigger signed size", "PUT", func(up Upload, _ string) string { return strings.Replace(up.URL, "size=100", "size=101", 1) }, false, refusal{403, "signature_invalid"}},
		{"upload without signature", "PUT", func(up Upload, _ string) string { return strings.Split(up.URL, "?")[0] }, false, refusal{403, "signature_invalid"}},
		{"download URL used to upload", "PUT", func(_ Upload, get string) string { return get }, false, refusal{403, "signature_invalid"}},
		{"upload URL used to download", "GET", func(up Upload, _ string) string { return up.URL }, false, refusal{403, "signature_invalid"}},
		{"tampered download signature", "GET", func(_ Upload, get string) string { return tamper(get, "sig") }, false, refusal{403, "signature_invalid"}},
		{"no content length", "PUT", func(up Upload, _ string) string { return up.URL }, true, refusal{411, "length_required"}},
		{"unsupported method", "DELETE", func(up Upload, _ string) string { return up.URL }, false, refusal{405, "method_not_allowed"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l, srv := newLocalServer(t, nil)
			up, err := l.PresignUpload(context.Background(), key, "image/jpeg", int64(len(body)), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			get := mustPresignGet(t, l, key)
			req, _ := http.NewRequest(tc.method, tc.url(up, get), bytes.NewReader(body))
			req.Header.Set("Content-Type", "image/jpeg")
			if tc.chunk {
				req.ContentLength = -1
				req.Body = io.NopCloser(bytes.NewReader(body)) // unknown length: Go sends chunked
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if got := (refusal{resp.StatusCode, errorCode(readAll(t, resp))}); got != tc.want {
				t.Fatalf("got %+v; want %+v", got, tc.want)
			}
			assertNoObjects(t, l, key)
			assertNoFiles(t, l.dir)
		})
	}
}

// TestLocalHandlerRefusesStoredKeys: a PUT to a stored key is refused even
// with a valid signature (as an older version, which signed stored keys, made
// with the same secret), so no URL can overwrite what register checked.
func TestLocalHandlerRefusesStoredKeys(t *testing.T) {
	t.Parallel()
	l, srv := newLocalServer(t, nil)
	key, body := Key("s", "i"), testutil.JPEG(t, 1)
	signed := l.signedURL(grant{method: "PUT", key: key, contentType: "image/jpeg", size: int64(len(body)), exp: time.Now().Add(time.Minute).Unix()})
	req, _ := http.NewRequest("PUT", signed, bytes.NewReader(body))
	req.Header.Set("Content-Type", "image/jpeg")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "refusal", refusal{403, "key_not_writable"}, refusal{resp.StatusCode, errorCode(readAll(t, resp))}, cmp.AllowUnexported(refusal{}))
	assertNoFiles(t, l.dir)
}

func TestLocalHandlerBadKeys(t *testing.T) {
	t.Parallel()
	l, _ := newLocalServer(t, nil)
	for _, path := range []string{
		"/blob/sessions/%2e%2e/%2e%2e/etc/passwd",
		"/blob/sessions/a/..%2F..%2Fx",
		"/blob/etc/passwd",
		"/blob/sessions/a/.b.meta",
		"/blob/sessions/a/.upload-1",
		"/blob/sessions/a",
		"/blob/sessions/a/b/c",
		"/blob/",
	} {
		for _, method := range []string{"PUT", "GET"} {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(method, path+"?exp=1&sig=x", strings.NewReader("x"))
			l.Handler().ServeHTTP(rec, req)
			if got := (refusal{rec.Code, errorCode(rec.Body.String())}); got != (refusal{400, "invalid_key"}) {
				t.Errorf("%s %s: %+v; want 400 invalid_key", method, path, got)
			}
		}
	}
	assertNoFiles(t, l.dir)
}

func TestLocalDownload(t *testing.T) {
	t.Parallel()
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	l, srv := newLocalServer(t, func() time.Time { return time.Unix(0, now.Load()) })
	key := UploadKey("sess1", "img1")
	body := testutil.JPEGPrefixed(2000, 0)
	put(t, l, key, body)
	get := mustPresignGet(t, l, key)

	req, _ := http.NewRequest("GET", get, nil)
	req.Header.Set("Range", "bytes=0-9")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	part := readAll(t, resp)
	testutil.Equal(t, "range status", http.StatusPartialContent, resp.StatusCode)
	testutil.Equal(t, "range body", string(body[:10]), part)
	testutil.Check(t, "X-Content-Type-Options", "nosniff", resp.Header.Get("X-Content-Type-Options"))
	testutil.Check(t, "Content-Type", "image/jpeg", resp.Header.Get("Content-Type"))

	resp, err = srv.Client().Head(get)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	testutil.Check(t, "HEAD status", 200, resp.StatusCode)
	testutil.Check(t, "HEAD Content-Length", int64(2000), resp.ContentLength)

	now.Add(int64(2 * time.Minute)) // past the minute mustPresignGet signs for
	got := httpGet(t, get)
	testutil.Equal(t, "expired GET", refusal{403, "url_expired"}, refusal{got.status, errorCode(string(got.body))}, cmp.AllowUnexported(refusal{}))
}

func TestLocalOverwriteKeepsLatest(t *testing.T) {
	t.Parallel()
	l, _ := newLocalServer(t, nil)
	ctx := context.Background()
	key := UploadKey("s", "i")
	put(t, l, key, testutil.JPEGPrefixed(50, 0))
	png := []byte("\x89PNG\r\n\x1a\n-------")
	up, err := l.PresignUpload(ctx, key, "image/png", int64(len(png)), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if status, msg := doUpload(t, up, "image/png", png); status != 200 {
		t.Fatalf("%d %s", status, msg)
	}
	info, err := l.Stat(ctx, key)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	testutil.Equal(t, "Stat", Info{int64(len(png)), "image/png"}, info)
	assertNoFiles(t, l.dir, key)
}

// TestLocalCopyUploadMoves checks the local store's CopyUpload is a move:
// the stored key holds the upload's file and its sidecar, and the upload,
// its sidecar and no temp file are left.
func TestLocalCopyUploadMoves(t *testing.T) {
	t.Parallel()
	l, _ := newLocalServer(t, nil)
	ctx := context.Background()
	up, key := UploadKey("s", "i"), Key("s", "i")
	body := testutil.JPEGPrefixed(50, 0)
	put(t, l, up, body)
	before, err := os.Stat(l.path(up))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CopyUpload(ctx, up, key, TypeJPEG); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(l.path(key))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Error("the stored key is not the upload's file: CopyUpload copied instead of moving")
	}
	if _, err := l.Stat(ctx, up); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat of the moved upload: %v; want ErrNotFound", err)
	}
	testutil.Equal(t, "stored", Info{int64(len(body)), TypeJPEG}, mustStat(t, l, key))
	assertNoFiles(t, l.dir, key)
}

func mustStat(t *testing.T, s Store, key string) Info {
	t.Helper()
	info, err := s.Stat(context.Background(), key)
	if err != nil {
		t.Fatalf("Stat %s: %v", key, err)
	}
	return info
}

// TestLocalSecret checks that URLs survive a restart only when the secret is kept.
func TestLocalSecret(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	secret := []byte("0123456789abcdef0123456789abcdef")
	a, _ := NewLocal(LocalConfig{Dir: dir, Secret: secret})
	b, _ := NewLocal(LocalConfig{Dir: dir, Secret: secret})
	c, _ := NewLocal(LocalConfig{Dir: dir})
	up, err := a.PresignUpload(ctx, UploadKey("s", "i"), "image/jpeg", 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(up.URL, "/blob/uploads/s/i?") {
		t.Fatalf("with no BaseURL the URL should be root-relative: %s", up.URL)
	}
	for _, tc := range []struct {
		name string
		l    *Local
		want int
	}{{"same secret", b, 200}, {"random secret", c, 403}} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("PUT", up.URL, bytes.NewReader(make([]byte, 10)))
		req.Header.Set("Content-Type", "image/jpeg")
		tc.l.Handler().ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%s: %d %s; want %d", tc.name, rec.Code, rec.Body, tc.want)
		}
	}
}

func TestLocalFileWithoutSidecar(t *testing.T) {
	t.Parallel()
	l, _ := newLocalServer(t, nil)
	key := UploadKey("s", "i")
	if err := os.MkdirAll(filepath.Dir(l.path(key)), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.path(key), []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := l.Stat(context.Background(), key)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	testutil.Equal(t, "Stat", Info{3, "application/octet-stream"}, info)
}

func TestNewLocalConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []LocalConfig{
		{},
		{Dir: t.TempDir(), BaseURL: "ftp://example.com"},
		{Dir: t.TempDir(), BaseURL: "http://"},
		{Dir: t.TempDir(), BaseURL: "http://example.com/?a=b"},
		{Dir: t.TempDir(), BaseURL: "example.com:8080"},
	} {
		if _, err := NewLocal(cfg); err == nil {
			t.Errorf("NewLocal(%+v) accepted", cfg)
		}
	}
	dir := filepath.Join(t.TempDir(), "data", "blobs")
	l, err := NewLocal(LocalConfig{Dir: dir, BaseURL: "https://clinic.example/"})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("store directory: %v, %v", fi, err)
	}
	up, err := l.PresignUpload(context.Background(), UploadKey("s", "i"), "image/heic", 10, time.Minute)
	if err != nil || !strings.HasPrefix(up.URL, "https://clinic.example/blob/uploads/s/i?") {
		t.Fatalf("URL %q, %v", up.URL, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := l.Ping(context.Background()); err == nil {
		t.Fatal("Ping with the directory gone succeeded")
	}
}

// assertNoFiles fails if dir holds any regular file other than the objects (and
// their sidecars) of keep: refused or broken uploads must leave no temp files.
func assertNoFiles(t *testing.T, dir string, keep ...string) {
	t.Helper()
	allowed := map[string]bool{}
	for _, k := range keep {
		p := filepath.Join(dir, filepath.FromSlash(k))
		allowed[p], allowed[metaPath(p)] = true, true
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !allowed[p] {
			t.Errorf("leftover file %s", p)
		}
		return nil
	})
}

// tamper changes the last character of one query parameter's value.
func tamper(rawURL, param string) string {
	i := strings.Index(rawURL, param+"=")
	if i < 0 {
		return rawURL
	}
	end := strings.IndexByte(rawURL[i:], '&')
	if end < 0 {
		end = len(rawURL) - i
	}
	j := i + end - 1
	c := byte('A')
	if rawURL[j] == 'A' {
		c = 'B'
	}
	if param == "exp" {
		c = '9'
		if rawURL[j] == '9' {
			c = '8'
		}
	}
	return rawURL[:j] + string(c) + rawURL[j+1:]
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
