package blob

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/handoff-health/handoff/internal/testutil"
)

// newStoreFunc makes a fresh, empty store owned by one test. clock may be nil.
type newStoreFunc func(t *testing.T, clock func() time.Time) Store

// storeImpl is one Store implementation under the contract. setup runs
// once per contract test and returns how to make fresh stores, so a server
// the implementation needs (versitygw) is shared by its subtests.
type storeImpl struct {
	name  string
	setup func(t *testing.T) newStoreFunc
}

// storeImpls are the implementations TestStoreContract runs against. Local
// needs nothing but Go; store_s3_test.go (integration tag) adds S3 against
// a real versitygw.
var storeImpls = []storeImpl{
	{"local", func(*testing.T) newStoreFunc { return newTestLocal }},
}

// newTestLocal mounts a Local on a test server the way the real server does.
func newTestLocal(t *testing.T, clock func() time.Time) Store {
	l, _ := newLocalServer(t, clock)
	return l
}

func newLocalServer(t *testing.T, clock func() time.Time) (*Local, *httptest.Server) {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	l, err := NewLocal(LocalConfig{Dir: t.TempDir(), BaseURL: srv.URL, MaxBytes: 1 << 20, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/blob/", l.Handler())
	return l, srv
}

// TestStoreContract runs the behaviour both stores promise from one table.
func TestStoreContract(t *testing.T) {
	t.Parallel()
	for _, impl := range storeImpls {
		newStore := impl.setup(t)
		t.Run(impl.name, func(t *testing.T) {
			t.Parallel()
			t.Run("round trip", func(t *testing.T) { t.Parallel(); testRoundTrip(t, newStore(t, nil)) })
			t.Run("refusals", func(t *testing.T) { t.Parallel(); testRefusals(t, impl.name, newStore) })
			t.Run("delete", func(t *testing.T) { t.Parallel(); testDelete(t, newStore(t, nil)) })
			t.Run("put", func(t *testing.T) { t.Parallel(); testPut(t, newStore(t, nil)) })
			t.Run("copy upload", func(t *testing.T) { t.Parallel(); testCopyUpload(t, newStore(t, nil)) })
			t.Run("promote", func(t *testing.T) { t.Parallel(); testPromote(t, newStore) })
			t.Run("invalid input", func(t *testing.T) { t.Parallel(); testInvalidInput(t, newStore(t, nil)) })
		})
	}
}

func testRoundTrip(t *testing.T, s Store) {
	ctx := context.Background()
	key := UploadKey("sess1", "img1")
	body := testutil.JPEGPrefixed(64<<10, 0)
	up, err := s.PresignUpload(ctx, key, "image/jpeg", int64(len(body)), 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "upload method", http.MethodPut, up.Method)
	testutil.Equal(t, "upload Content-Type header", "image/jpeg", up.Headers["Content-Type"])
	testutil.Equal(t, "upload form fields", 0, len(up.Fields))
	if d := time.Until(up.ExpiresAt); d < 4*time.Minute || d > 5*time.Minute {
		t.Fatalf("ExpiresAt is %s away; want about 5m", d)
	}
	if status, msg := doUpload(t, up, up.Headers["Content-Type"], body); status != http.StatusOK {
		t.Fatalf("upload: %d %s", status, msg)
	}
	info, err := s.Stat(ctx, key)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	testutil.Equal(t, "Stat", Info{Size: int64(len(body)), ContentType: "image/jpeg"}, info)
	rc, err := s.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("Open read %d bytes (err %v); want the %d uploaded", len(got), err, len(body))
	}
	getURL, err := s.PresignGet(ctx, key, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	resp := httpGet(t, getURL)
	testutil.Equal(t, "GET status", http.StatusOK, resp.status)
	if !bytes.Equal(resp.body, body) {
		t.Fatalf("GET read %d bytes that differ from the %d uploaded", len(resp.body), len(body))
	}
	testutil.Check(t, "GET Content-Type", "image/jpeg", resp.header.Get("Content-Type"))
	testutil.Check(t, "GET Cache-Control", "private, no-store", resp.header.Get("Cache-Control"))
	ct, _ := SniffImage(got[:SniffLen])
	testutil.Check(t, "sniffed content type", "image/jpeg", ct)
}

// testRefusals checks that the store itself, not the API server, refuses uploads
// that break what was signed, and keeps nothing of them.
func testRefusals(t *testing.T, impl string, newStore newStoreFunc) {
	const size = 1000
	body := testutil.JPEGPrefixed(size, 0)
	// Local answers the API's JSON error codes; S3 stores answer XML ones, and a
	// changed signed header shows there as a signature mismatch.
	const badSig, expired = "SignatureDoesNotMatch", "AccessDenied"
	cases := []struct {
		name        string
		expired     bool // sign an hour ago, send now
		contentType string
		body        []byte
		otherKey    bool // send to another key than the one signed
		local, s3   refusal
	}{
		{"oversize body", false, "image/jpeg", append(body, 0), false, refusal{413, "size_mismatch"}, refusal{403, badSig}},
		{"undersize body", false, "image/jpeg", body[:size-1], false, refusal{400, "size_mismatch"}, refusal{403, badSig}},
		{"wrong content type", false, "image/png", body, false, refusal{415, "content_type_mismatch"}, refusal{403, badSig}},
		{"no content type", false, "", body, false, refusal{415, "content_type_mismatch"}, refusal{403, badSig}},
		{"expired", true, "image/jpeg", body, false, refusal{403, "url_expired"}, refusal{403, expired}},
		{"other key", false, "image/jpeg", body, true, refusal{403, "signature_invalid"}, refusal{403, badSig}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var signedAgo atomic.Int64 // Local also checks expiry with this clock
			if tc.expired {
				signedAgo.Store(int64(time.Hour))
			}
			s := newStore(t, func() time.Time { return time.Now().Add(-time.Duration(signedAgo.Load())) })
			up, err := s.PresignUpload(context.Background(), UploadKey("sess1", "img1"), "image/jpeg", size, 5*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			signedAgo.Store(0)
			if tc.otherKey {
				up.URL = strings.Replace(up.URL, "/img1?", "/img2?", 1)
			}
			want := map[string]refusal{"local": tc.local, "s3": tc.s3}[impl]
			status, msg := doUpload(t, up, tc.contentType, tc.body)
			if got := (refusal{status, errorCode(msg)}); got != want {
				t.Fatalf("refused with %+v (%.200s); want %+v", got, msg, want)
			}
			assertNoObjects(t, s, UploadKey("sess1", "img1"), UploadKey("sess1", "img2"))
		})
	}
	t.Run("body cut short", func(t *testing.T) {
		t.Parallel()
		s := newStore(t, nil)
		key := UploadKey("sess1", "img1")
		up, err := s.PresignUpload(context.Background(), key, "image/jpeg", size, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		// versitygw answers 500 as the body breaks off; only Local's answer is ours.
		if status := rawShortUpload(t, up, body, size/2); impl == "local" && status != http.StatusBadRequest {
			t.Fatalf("status %d; want 400", status)
		}
		assertNoObjects(t, s, key)
	})
}

type refusal struct {
	status int
	code   string
}

var xmlCode = regexp.MustCompile(`<Code>([^<]*)</Code>`)

// errorCode reads the error code of Local's JSON or an S3 store's XML error body.
func errorCode(body string) string {
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if json.Unmarshal([]byte(body), &e) == nil {
		return e.Error.Code
	}
	if m := xmlCode.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return ""
}

func testDelete(t *testing.T, s Store) {
	ctx := context.Background()
	keys := []string{Key("s1", "a"), Key("s1", "b"), Key("s12", "a"), Key("s2", "a")}
	for _, k := range keys {
		store(t, s, k, testutil.JPEGPrefixed(100, 0))
	}
	uploads := []string{UploadKey("s1", "a"), UploadKey("s2", "a")}
	for _, k := range uploads {
		put(t, s, k, testutil.JPEGPrefixed(100, 0))
	}
	if err := s.Delete(ctx, keys[0]); err != nil {
		t.Fatal(err)
	}
	assertNoObjects(t, s, keys[0])
	assertObjects(t, s, uploads...) // same ids, other root
	if err := s.Delete(ctx, keys[0]); err != nil {
		t.Fatalf("deleting a missing object: %v", err)
	}
	if err := s.DeletePrefix(ctx, SessionPrefix("s1")); err != nil {
		t.Fatal(err)
	}
	assertNoObjects(t, s, keys[1])
	assertObjects(t, s, keys[2], keys[3]) // "s12" shares the string "s1" but not the prefix "s1/"
	assertObjects(t, s, uploads...)
	if err := s.DeletePrefix(ctx, UploadPrefix("s1")); err != nil {
		t.Fatal(err)
	}
	assertNoObjects(t, s, uploads[0])
	assertObjects(t, s, uploads[1], keys[2], keys[3])
	if err := s.DeletePrefix(ctx, "sessions/s2/a"); err != nil {
		t.Fatal(err)
	}
	assertNoObjects(t, s, keys[3])
	assertObjects(t, s, keys[2])
	if err := s.DeletePrefix(ctx, "sessions/s"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePrefix(ctx, "uploads/s"); err != nil {
		t.Fatal(err)
	}
	assertNoObjects(t, s, append(keys, uploads...)...)
	if l, ok := s.(*Local); ok {
		assertNoFiles(t, l.dir) // sidecars went with their objects
	}
	if err := s.DeletePrefix(ctx, SessionPrefix("never")); err != nil {
		t.Fatalf("deleting a missing prefix: %v", err)
	}
}

// testPut checks that Put stores exactly the bytes it was told, or nothing.
func testPut(t *testing.T, s Store) {
	ctx := context.Background()
	body := testutil.PNG(t, 4)
	key := Key("s", "i")
	if err := s.Put(ctx, key, bytes.NewReader(body), int64(len(body)), TypePNG); err != nil {
		t.Fatal(err)
	}
	info, err := s.Stat(ctx, key)
	testutil.Check(t, "Stat error", nil, err, cmpopts.EquateErrors())
	testutil.Check(t, "Stat", Info{Size: int64(len(body)), ContentType: TypePNG}, info)
	testutil.Check(t, "stored bytes", string(body), string(readObject(t, s, key)))

	short := Key("s", "short")
	if err := s.Put(ctx, short, bytes.NewReader(body[:10]), int64(len(body)), TypePNG); !errors.Is(err, ErrSize) {
		t.Errorf("Put of a short body: %v; want ErrSize", err)
	}
	long := Key("s", "long")
	if err := s.Put(ctx, long, bytes.NewReader(append(body, 0)), int64(len(body)), TypePNG); !errors.Is(err, ErrSize) {
		t.Errorf("Put of a long body: %v; want ErrSize", err)
	}
	assertNoObjects(t, s, short, long)
	if err := s.Put(ctx, UploadKey("s", "i"), bytes.NewReader(body), int64(len(body)), TypePNG); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Put to an upload key: %v; want ErrInvalidKey", err)
	}
	if err := s.Put(ctx, Key("s", "ct"), bytes.NewReader(body), int64(len(body)), "image/png; x=1"); !errors.Is(err, ErrInvalidUpload) {
		t.Errorf("Put with a bad content type: %v; want ErrInvalidUpload", err)
	}
	assertNoObjects(t, s, UploadKey("s", "i"), Key("s", "ct"))
}

func testCopyUpload(t *testing.T, s Store) {
	ctx := context.Background()
	body := testutil.PNG(t, 4)
	up, key := UploadKey("s", "i"), Key("s", "i")
	upload(t, presign(t, s, up, TypePNG, int64(len(body))), body)
	if err := s.CopyUpload(ctx, up, key, TypePNG); err != nil {
		t.Fatal(err)
	}
	info, err := s.Stat(ctx, key)
	testutil.Check(t, "Stat error", nil, err, cmpopts.EquateErrors())
	testutil.Check(t, "Stat", Info{Size: int64(len(body)), ContentType: TypePNG}, info)
	testutil.Check(t, "stored bytes", string(body), string(readObject(t, s, key)))
	// A copy over an existing stored object replaces it whole.
	other := testutil.JPEG(t, 3)
	upload(t, presign(t, s, up, TypeJPEG, int64(len(other))), other)
	if err := s.CopyUpload(ctx, up, key, TypeJPEG); err != nil {
		t.Fatal(err)
	}
	testutil.Check(t, "replaced bytes", string(other), string(readObject(t, s, key)))
	info, _ = s.Stat(ctx, key)
	testutil.Check(t, "replaced content type", TypeJPEG, info.ContentType)

	if err := s.CopyUpload(ctx, UploadKey("s", "none"), Key("s", "none"), TypePNG); !errors.Is(err, ErrNotFound) {
		t.Errorf("CopyUpload of no upload: %v; want ErrNotFound", err)
	}
	assertNoObjects(t, s, Key("s", "none"))
	for _, k := range [][2]string{{Key("s", "i"), Key("s", "j")}, {UploadKey("s", "i"), UploadKey("s", "j")}, {"uploads/../x", Key("s", "j")}} {
		if err := s.CopyUpload(ctx, k[0], k[1], TypePNG); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("CopyUpload(%s, %s): %v; want ErrInvalidKey", k[0], k[1], err)
		}
	}
	if err := s.CopyUpload(ctx, up, Key("s", "ct"), "image/png\r\nX: 1"); !errors.Is(err, ErrInvalidUpload) {
		t.Errorf("CopyUpload with a bad content type: %v; want ErrInvalidUpload", err)
	}
	assertNoObjects(t, s, Key("s", "j"), UploadKey("s", "j"), Key("s", "ct"))
}

// testPromote is the reproduction at the store level: what register
// stored is what it checked, whatever the still-valid upload URL writes next.
func testPromote(t *testing.T, newStore newStoreFunc) {
	ctx := context.Background()
	jpg := testutil.JPEG(t, 5)
	size := int64(len(jpg))
	// Same size, JPEG magic, then HTML: what the reviewer put through the URL.
	evil := append([]byte{0xFF, 0xD8, 0xFF}, bytes.Repeat([]byte("<html>"), len(jpg))...)[:len(jpg)]
	jpegWant := Expect{ContentType: TypeJPEG, Size: size, MaxPixels: 50_000_000}

	t.Run("replaced after promote", func(t *testing.T) {
		t.Parallel()
		s := newStore(t, nil)
		up, stored := UploadKey("s", "i"), Key("s", "i")
		grant := presign(t, s, up, TypeJPEG, size)
		upload(t, grant, jpg)
		got, err := Promote(ctx, s, up, stored, jpegWant)
		if err != nil {
			t.Fatal(err)
		}
		testutil.Check(t, "SHA256", Hash(jpg), got.SHA256)
		testutil.Check(t, "header", ImageHeader{TypeJPEG, 16, 16}, got.Header)
		upload(t, grant, evil) // the URL is still valid and rewrites the upload key...
		testutil.Check(t, "upload key bytes", string(evil), string(readObject(t, s, up)))
		// ...but the stored copy is out of its reach.
		testutil.Check(t, "stored bytes", string(jpg), string(readObject(t, s, stored)))
		info, _ := s.Stat(ctx, stored)
		testutil.Check(t, "stored content type", TypeJPEG, info.ContentType)
	})

	big := handPNG(20000, 20000, 4<<10)
	cases := []struct {
		name     string
		ct       string
		body     []byte
		want     Expect
		wantErr  error
		noUpload bool
	}{
		{"magic then html", TypeJPEG, evil, jpegWant, ErrInvalidImage, false},
		{"png signed as jpeg", TypeJPEG, testutil.PNG(t, 5), Expect{TypeJPEG, int64(len(testutil.PNG(t, 5))), 0}, ErrInvalidImage, false},
		{"20000x20000 png", TypePNG, big, Expect{TypePNG, int64(len(big)), 50_000_000}, ErrTooManyPixels, false},
		{"size differs from signed", TypeJPEG, jpg, Expect{TypeJPEG, size + 1, 0}, ErrSize, false},
		{"no upload", TypeJPEG, nil, jpegWant, ErrNotFound, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t, nil)
			up, stored := UploadKey("s", "i"), Key("s", "i")
			if !tc.noUpload {
				upload(t, presign(t, s, up, tc.ct, int64(len(tc.body))), tc.body)
			}
			if _, err := Promote(ctx, s, up, stored, tc.want); !errors.Is(err, tc.wantErr) {
				t.Fatalf("Promote: %v; want %v", err, tc.wantErr)
			}
			assertNoObjects(t, s, stored)
		})
	}
	// A register that moved the upload (Local) and then failed is retried:
	// the upload is gone, the stored object is checked again.
	t.Run("retry after the upload was moved", func(t *testing.T) {
		t.Parallel()
		s := newStore(t, nil)
		up, stored := UploadKey("s", "i"), Key("s", "i")
		upload(t, presign(t, s, up, TypeJPEG, size), jpg)
		if err := s.CopyUpload(ctx, up, stored, TypeJPEG); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, up); err != nil {
			t.Fatal(err)
		}
		got, err := Promote(ctx, s, up, stored, jpegWant)
		if err != nil {
			t.Fatal(err)
		}
		testutil.Check(t, "SHA256", Hash(jpg), got.SHA256)
	})
	// What is checked is the stored bytes, not the upload's Stat: a stored
	// object of another size (an upload replaced between the Stat and the
	// copy looks the same) is refused and deleted.
	for _, tc := range []struct {
		name string
		body []byte
	}{{"stored shorter than signed", jpg[:len(jpg)-1]}, {"stored longer than signed", append(append([]byte{}, jpg...), 0)}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t, nil)
			stored := Key("s", "i")
			store(t, s, stored, tc.body)
			if _, err := Promote(ctx, s, UploadKey("s", "i"), stored, jpegWant); !errors.Is(err, ErrSize) {
				t.Fatalf("Promote: %v; want ErrSize", err)
			}
			assertNoObjects(t, s, stored)
		})
	}
	t.Run("20000x20000 png without a cap", func(t *testing.T) {
		t.Parallel()
		s := newStore(t, nil)
		upload(t, presign(t, s, UploadKey("s", "i"), TypePNG, int64(len(big))), big)
		got, err := Promote(ctx, s, UploadKey("s", "i"), Key("s", "i"), Expect{TypePNG, int64(len(big)), 0})
		if err != nil {
			t.Fatal(err)
		}
		testutil.Check(t, "pixels", int64(400_000_000), got.Header.Pixels())
	})
	t.Run("keys", func(t *testing.T) {
		t.Parallel()
		s := newStore(t, nil)
		for _, k := range [][2]string{{Key("s", "i"), Key("s", "j")}, {UploadKey("s", "i"), UploadKey("s", "j")}} {
			if _, err := Promote(ctx, s, k[0], k[1], jpegWant); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Promote(%s, %s): %v; want ErrInvalidKey", k[0], k[1], err)
			}
		}
	})
}

func presign(t *testing.T, s Store, key, ct string, size int64) Upload {
	t.Helper()
	up, err := s.PresignUpload(context.Background(), key, ct, size, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return up
}

func upload(t *testing.T, up Upload, body []byte) {
	t.Helper()
	if status, msg := doUpload(t, up, up.Headers["Content-Type"], body); status != http.StatusOK {
		t.Fatalf("upload: %d %s", status, msg)
	}
}

func readObject(t *testing.T, s Store, key string) []byte {
	t.Helper()
	rc, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("Open %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testInvalidInput(t *testing.T, s Store) {
	ctx := context.Background()
	key := UploadKey("s", "i")
	uploads := []struct {
		name, key, ct string
		size          int64
		ttl           time.Duration
		want          error
	}{
		{"traversal key", "uploads/../etc", "image/jpeg", 10, time.Minute, ErrInvalidKey},
		{"stored key", Key("s", "i"), "image/jpeg", 10, time.Minute, ErrInvalidKey},
		{"zero size", key, "image/jpeg", 0, time.Minute, ErrInvalidUpload},
		{"over max", key, "image/jpeg", 1<<20 + 1, time.Minute, ErrInvalidUpload},
		{"content type with header", key, "image/jpeg\r\nX-Evil: 1", 10, time.Minute, ErrInvalidUpload},
		{"content type parameters", key, "image/jpeg; q=1", 10, time.Minute, ErrInvalidUpload},
		{"no ttl", key, "image/jpeg", 10, 0, ErrInvalidUpload},
		{"ttl over a week", key, "image/jpeg", 10, 8 * 24 * time.Hour, ErrInvalidUpload},
	}
	for _, tc := range uploads {
		if _, err := s.PresignUpload(ctx, tc.key, tc.ct, tc.size, tc.ttl); !errors.Is(err, tc.want) {
			t.Errorf("PresignUpload %s: %v; want %v", tc.name, err, tc.want)
		}
	}
	bad := "sessions/a/../b"
	if _, err := s.PresignGet(ctx, bad, time.Minute); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("PresignGet: %v", err)
	}
	if _, err := s.Stat(ctx, bad); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Stat: %v", err)
	}
	if _, err := s.Open(ctx, bad); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Open: %v", err)
	}
	if err := s.Delete(ctx, bad); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Delete: %v", err)
	}
	for _, p := range []string{"", "sessions/", "uploads/", "other/"} {
		if err := s.DeletePrefix(ctx, p); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("DeletePrefix(%q): %v", p, err)
		}
	}
	if _, err := s.Open(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open missing: %v", err)
	}
	if resp := httpGet(t, mustPresignGet(t, s, key)); resp.status != http.StatusNotFound {
		t.Errorf("GET missing: %d", resp.status)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// store writes a stored key with Put, as Promote does.
func store(t *testing.T, s Store, key string, body []byte) {
	t.Helper()
	if err := s.Put(context.Background(), key, bytes.NewReader(body), int64(len(body)), "image/jpeg"); err != nil {
		t.Fatalf("Put %s: %v", key, err)
	}
}

// put uploads through the signed URL, as a phone does.
func put(t *testing.T, s Store, key string, body []byte) {
	t.Helper()
	up, err := s.PresignUpload(context.Background(), key, "image/jpeg", int64(len(body)), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if status, msg := doUpload(t, up, "image/jpeg", body); status != http.StatusOK {
		t.Fatalf("upload %s: %d %s", key, status, msg)
	}
}

// doUpload sends body with a plain http.Client; an empty contentType sends none.
func doUpload(t *testing.T, up Upload, contentType string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(up.Method, up.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(msg)
}

// rawShortUpload declares the signed size but sends only n bytes and half-closes,
// as a phone losing its connection does. It returns the status, or 0 if the store
// closed without answering.
func rawShortUpload(t *testing.T, up Upload, body []byte, n int) int {
	t.Helper()
	u, err := url.Parse(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var req bytes.Buffer
	req.WriteString("PUT " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\n")
	req.WriteString("Content-Type: " + up.Headers["Content-Type"] + "\r\n")
	req.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\nConnection: close\r\n\r\n")
	req.Write(body[:n])
	if _, err := conn.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
	_ = conn.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func httpGet(t *testing.T, u string) response {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

func mustPresignGet(t *testing.T, s Store, key string) string {
	t.Helper()
	u, err := s.PresignGet(context.Background(), key, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func assertNoObjects(t *testing.T, s Store, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if info, err := s.Stat(context.Background(), k); !errors.Is(err, ErrNotFound) {
			t.Errorf("Stat(%s) = %+v, %v; want ErrNotFound", k, info, err)
		}
	}
}

func assertObjects(t *testing.T, s Store, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, err := s.Stat(context.Background(), k); err != nil {
			t.Errorf("Stat(%s): %v; want the object", k, err)
		}
	}
}
