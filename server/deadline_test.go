package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/testutil"
)

// TestBodyDeadlineLiftedAfterBody: a handler that has read its whole body
// may work past the body deadline (a commit waiting on ALEX) without its
// request context being cancelled by net/http's background read timing out.
func TestBodyDeadlineLiftedAfterBody(t *testing.T) {
	t.Parallel()
	const d = 200 * time.Millisecond
	srv := httptest.NewServer(bodyDeadline(d)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			t.Errorf("read body: %v", err)
		}
		select {
		case <-r.Context().Done():
			http.Error(w, "cancelled", http.StatusInternalServerError)
		case <-time.After(3 * d):
			_, _ = io.WriteString(w, "done")
		}
	})))
	defer srv.Close()
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	testutil.Equal(t, "reply of a handler working past the body deadline", "done", string(b))
}

func TestCapMaxConnsFitsDescriptorLimit(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name             string
		max, limit, want int
		lowered          bool
	}{
		{"the review's 1024-descriptor node", 16384, 1024, 1024 - fdReserve, true},
		{"a cap below the limit stays", 100, 1024, 100, false},
		{"no cap still fits the limit", 0, 1024, 1024 - fdReserve, true},
		{"a tiny limit keeps half", 16384, 200, 100, true},
		{"a large limit", 16384, 1 << 20, 16384, false},
	}
	for _, c := range cases {
		got, lowered := capMaxConns(c.max, c.limit)
		testutil.Check(t, c.name+": max", c.want, got)
		testutil.Check(t, c.name+": lowered", c.lowered, lowered)
	}
}
