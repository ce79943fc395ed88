package server

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/internal/testutil"
)

// accessLine is the part of an access-log line the tests compare.
type accessLine struct {
	Level   string `json:"level"`
	Message string `json:"message"`
	Method  string `json:"method"`
	Route   string `json:"route"`
	Status  int    `json:"status"`
	Bytes   int64  `json:"bytes"`
}

func TestAccessLog(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /m/{token}", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "page") })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.HandleFunc("POST /fail", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	const token = "QR-TOKEN-SECRET"
	cases := []struct {
		method, target string
		want           accessLine
	}{
		{"GET", "/m/" + token + "?nhi=ZZZ0016", accessLine{"info", "http", "GET", "GET /m/{token}", 200, 4}},
		{"GET", "/healthz", accessLine{"debug", "http", "GET", "GET /healthz", 200, 2}},
		{"POST", "/fail", accessLine{"error", "http", "POST", "POST /fail", 502, 0}},
		{"GET", "/nowhere/" + token, accessLine{"info", "http", "GET", "unmatched", 404, 19}},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.want.Route, func(t *testing.T) {
			t.Parallel()
			logs := &testutil.LogBuffer{}
			h := accessLog(zerolog.New(logs).Level(zerolog.DebugLevel))(mux)
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(tc.method, tc.target, nil))

			var lines []string
			sc := bufio.NewScanner(strings.NewReader(logs.String()))
			for sc.Scan() {
				lines = append(lines, sc.Text())
			}
			if len(lines) != 1 {
				t.Fatalf("%d log lines, want one:\n%s", len(lines), logs)
			}
			var got accessLine
			if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
				t.Fatal(err)
			}
			testutil.Equal(t, "access-log line", tc.want, got)
			if !strings.Contains(lines[0], `"took":`) {
				t.Errorf("no duration: %s", lines[0])
			}
			for _, leak := range []string{token, "ZZZ0016", "?"} {
				if strings.Contains(lines[0], leak) {
					t.Errorf("line has %q from the raw URL: %s", leak, lines[0])
				}
			}
		})
	}
}
