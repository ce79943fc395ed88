package httpx_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/handoff-health/handoff/internal/httpx"

	"github.com/handoff-health/handoff/internal/testutil"
)

type request struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
	Inner struct {
		Flag bool `json:"flag"`
	} `json:"inner"`
}

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		contentType string
		body        string
		max         int64
		status      int    // 0: decoded
		code        string // error code
	}{
		{"valid", "application/json", `{"name":"a","count":2,"inner":{"flag":true}}`, 0, 0, ""},
		{"valid with charset", "application/json; charset=utf-8", `{"name":"a"}`, 0, 0, ""},
		{"upper-case content type", "Application/JSON", `{"name":"a"}`, 0, 0, ""},
		{"no content type", "", `{"name":"a"}`, 0, 0, ""},
		{"trailing whitespace", "application/json", "{\"name\":\"a\"}\n\t ", 0, 0, ""},
		{"exactly the limit", "application/json", `{"name":"abc"}`, int64(len(`{"name":"abc"}`)), 0, ""},
		{"unknown field", "application/json", `{"name":"a","extra":1}`, 0, 400, "unknown_field"},
		{"unknown nested field", "application/json", `{"inner":{"flag":true,"x":1}}`, 0, 400, "unknown_field"},
		{"wrong type", "application/json", `{"count":"two"}`, 0, 400, "invalid_field"},
		{"wrong nested type", "application/json", `{"inner":{"flag":"yes"}}`, 0, 400, "invalid_field"},
		{"array instead of object", "application/json", `[1,2]`, 0, 400, "invalid_field"},
		{"malformed", "application/json", `{"name":`, 0, 400, "invalid_json"},
		{"syntax error", "application/json", `{name:"a"}`, 0, 400, "invalid_json"},
		{"empty", "application/json", ``, 0, 400, "invalid_json"},
		{"only whitespace", "application/json", "  \n", 0, 400, "invalid_json"},
		{"trailing object", "application/json", `{"name":"a"}{"name":"b"}`, 0, 400, "invalid_json"},
		{"trailing garbage", "application/json", `{"name":"a"} x`, 0, 400, "invalid_json"},
		{"oversize", "application/json", `{"name":"` + strings.Repeat("a", 100) + `"}`, 32, 413, "body_too_large"},
		{"oversize under the default limit", "application/json", `{"name":"` + strings.Repeat("a", httpx.DefaultMaxBody) + `"}`, 0, 413, "body_too_large"},
		{"form", "application/x-www-form-urlencoded", `name=a`, 0, 415, "unsupported_media_type"},
		{"text", "text/plain", `{"name":"a"}`, 0, 415, "unsupported_media_type"},
		{"multipart", "multipart/form-data; boundary=x", `{"name":"a"}`, 0, 415, "unsupported_media_type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(tc.body))
			if tc.contentType != "" {
				r.Header.Set("Content-Type", tc.contentType)
			}
			w := httptest.NewRecorder()
			var v request
			err := httpx.DecodeJSON(w, r, &v, tc.max)
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("DecodeJSON: %v", err)
				}
				if v.Name == "" {
					t.Fatalf("not decoded: %+v", v)
				}
				return
			}
			var e *httpx.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v (%T), want *httpx.Error", err, err)
			}
			testutil.Check(t, "status", tc.status, e.Status)
			testutil.Check(t, "code", tc.code, e.Code)
			if e.Message == "" {
				t.Error("error message is empty")
			}
		})
	}
}

func TestDecodeJSONDecodesFields(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(`{"name":"a","count":2,"inner":{"flag":true}}`))
	r.Header.Set("Content-Type", "application/json")
	var v request
	if err := httpx.DecodeJSON(httptest.NewRecorder(), r, &v, 0); err != nil {
		t.Fatal(err)
	}
	want := request{Name: "a", Count: 2}
	want.Inner.Flag = true
	testutil.Equal(t, "decoded request", want, v)
}

// TestDecodeJSONErrorsHideValues: an error names the field, never echoes
// the value, which could be patient data.
func TestDecodeJSONErrorsHideValues(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(`{"count":"PATIENT-SECRET"}`))
	var v request
	err := httpx.DecodeJSON(httptest.NewRecorder(), r, &v, 0)
	var e *httpx.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want *httpx.Error", err)
	}
	testutil.Equal(t, "code", "invalid_field", e.Code)
	if !strings.Contains(e.Message, "count") {
		t.Errorf("message %q does not name the field", e.Message)
	}
	if strings.Contains(e.Message, "PATIENT-SECRET") {
		t.Errorf("message %q shows the value", e.Message)
	}
}

type errorReply struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Outages as the stores and the hub report them, without importing them.
var (
	refused        = &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	unavailableMsg = httpx.ErrUnavailable.Message
)

// declared says it is an outage, as hub.ErrUnavailable does.
type declared struct{}

func (declared) Error() string     { return "hub: backend unavailable" }
func (declared) Unavailable() bool { return true }

// redisReply is an error reply from Redis, as go-redis types it.
type redisReply string

func (e redisReply) Error() string { return string(e) }
func (redisReply) RedisError()     {}

func TestWriteError(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		err     error
		status  int
		code    string
		message string
	}{
		{"api error", httpx.Errorf(http.StatusNotFound, "not_found", "session %s not found", "abc"), 404, "not_found", "session abc not found"},
		{"wrapped api error", fmt.Errorf("capture: %w", httpx.Errorf(http.StatusGone, "token_used", "the QR code was already used")), 410, "token_used", "the QR code was already used"},
		{"plain error hides its cause", errors.New("dial tcp 10.0.0.7:6379: connection refused"), 500, "internal", "internal server error"},
		{"wrapped plain error", fmt.Errorf("store: %w", errors.New("secret internals")), 500, "internal", "internal server error"},
		{"network failure is an outage", fmt.Errorf("session: redis get: %w", refused), 503, "unavailable", unavailableMsg},
		{"deadline is an outage", fmt.Errorf("store: secret internals: %w", context.DeadlineExceeded), 503, "unavailable", unavailableMsg},
		{"self-declared outage", fmt.Errorf("publish: %w", declared{}), 503, "unavailable", unavailableMsg},
		{"outage by decision", httpx.Unavailable(errors.New("secret internals")), 503, "unavailable", unavailableMsg},
		{"redis loading", fmt.Errorf("store: %w", redisReply("LOADING Redis is loading the dataset in memory")), 503, "unavailable", unavailableMsg},
		{"redis cluster down", redisReply("CLUSTERDOWN The cluster is down"), 503, "unavailable", unavailableMsg},
		{"redis script bug", redisReply("ERR user_script:1: Script attempted to access nonexistent global variable 'secret'"), 500, "internal", "internal server error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			httpx.WriteError(w, tc.err)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q", cc)
			}
			if ra := w.Header().Get("Retry-After"); (ra == "1") != (tc.status == 503) {
				t.Errorf("Retry-After %q on a %d", ra, tc.status)
			}
			var body errorReply
			dec := json.NewDecoder(w.Body)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&body); err != nil {
				t.Fatalf("body %q: %v", w.Body.String(), err)
			}
			testutil.Check(t, "error code", tc.code, body.Error.Code)
			testutil.Check(t, "error message", tc.message, body.Error.Message)
			for _, cause := range []string{"10.0.0.7", "secret"} {
				if tc.status >= 500 && strings.Contains(w.Body.String(), cause) {
					t.Errorf("%d shows its cause %q: %s", tc.status, cause, w.Body.String())
				}
			}
		})
	}
}

func TestWriteJSON(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	httpx.WriteJSON(w, http.StatusCreated, map[string]int{"n": 1})
	testutil.Check(t, "status", http.StatusCreated, w.Code)
	testutil.Check(t, "Cache-Control", "no-store", w.Header().Get("Cache-Control"))
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want JSON", ct)
	}
	testutil.Check(t, "body", `{"n":1}`, strings.TrimSpace(w.Body.String()))
}

func TestErrorText(t *testing.T) {
	t.Parallel()
	e := httpx.Errorf(http.StatusBadRequest, "invalid_field", "field %q is bad", "x")
	testutil.Check(t, "Error()", `invalid_field: field "x" is bad`, e.Error())
	testutil.Check(t, "Status", 400, e.Status)
}

// TestDecodeJSONBodyTimeout: a body that stops at the edge's read deadline
// is a 408 body_timeout, not a malformed-JSON 400.
func TestDecodeJSONBodyTimeout(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("POST", "/", io.MultiReader(strings.NewReader(`{"name":`), deadlineReader{}))
	var v request
	err := httpx.DecodeJSON(httptest.NewRecorder(), r, &v, 0)
	var he *httpx.Error
	if !errors.As(err, &he) {
		t.Fatalf("DecodeJSON: %v", err)
	}
	testutil.Check(t, "status", http.StatusRequestTimeout, he.Status)
	testutil.Equal(t, "code", "body_timeout", he.Code)
}

type deadlineReader struct{}

func (deadlineReader) Read([]byte) (int, error) { return 0, os.ErrDeadlineExceeded }
