package blob

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/testutil"
)

// TestUploadDeadlineFitsSize: an upload may take the base time plus its
// size at the minimum rate.
func TestUploadDeadlineFitsSize(t *testing.T) {
	t.Parallel()
	u := newUploadDeadline(0, 0)
	testutil.Check(t, "deadline of an empty upload", DefaultUploadTimeout, u.of(0))
	testutil.Check(t, "deadline of a 20 MiB upload", DefaultUploadTimeout+640*time.Second, u.of(20<<20))
	testutil.Check(t, "deadline of 1 MiB at 1 MiB/s", 2*time.Second, newUploadDeadline(time.Second, 1<<20).of(1<<20))
}

// TestStalledUploadIsCut (issue 13, item 5): a signed upload whose body
// stops arriving is answered 408 and its connection closed once its
// deadline passes, and nothing is stored.
func TestStalledUploadIsCut(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	l, err := NewLocal(LocalConfig{Dir: t.TempDir(), BaseURL: srv.URL, UploadTimeout: 300 * time.Millisecond, UploadMinRate: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/blob/", l.Handler())
	key := UploadKey("sess1", "img1")
	const size = 1000
	up, err := l.PresignUpload(context.Background(), key, "image/jpeg", size, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(up.URL)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	head := "PUT " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nContent-Type: image/jpeg\r\nContent-Length: " +
		strconv.Itoa(size) + "\r\n\r\n" + string(testutil.JPEGPrefixed(10, 0))
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second)) // a failure bound only
	got, err := io.ReadAll(c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("stalled upload still open after 30 s; got %q", got)
	}
	if !strings.HasPrefix(string(got), "HTTP/1.1 408 ") || !strings.Contains(string(got), `"body_timeout"`) {
		t.Fatalf("stalled upload answered %q, want 408 body_timeout", got)
	}
	assertNoObjects(t, l, key)
	assertNoFiles(t, l.dir)
}
