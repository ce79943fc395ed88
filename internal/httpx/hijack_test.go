package httpx_test

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/handoff-health/handoff/internal/httpx"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestSmallBuffers: a connection hijacked through SmallBuffers gets the
// small read and write buffers (not net/http's 4 KiB each), still reaches
// the original writer through Unwrap, and works: bytes written through
// its buffer reach the client.
func TestSmallBuffers(t *testing.T) {
	t.Parallel()
	type sizes struct{ read, write int }
	got := make(chan sizes, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sb := httpx.SmallBuffers{ResponseWriter: w}
		if sb.Unwrap() != w {
			t.Error("Unwrap does not return the wrapped writer")
		}
		conn, brw, err := sb.Hijack()
		if err != nil {
			t.Error(err)
			close(got)
			return
		}
		defer conn.Close()
		got <- sizes{brw.Reader.Size(), brw.Writer.Size()}
		_, _ = brw.WriteString("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
		_ = brw.Flush()
	}))
	defer srv.Close()

	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	testutil.Check(t, "status through the small write buffer", http.StatusNoContent, resp.StatusCode)
	s, ok := <-got
	if !ok {
		t.Fatal("hijack failed")
	}
	testutil.Check(t, "read buffer size", 512, s.read)
	testutil.Check(t, "write buffer size", 1024, s.write)
}
