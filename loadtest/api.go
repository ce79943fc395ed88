package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"time"
)

// stepError is a failed step. Its kind groups the report's errors: the
// step and what went wrong, never a token or a URL.
type stepError struct {
	kind string
	err  error
}

func (e *stepError) Error() string { return e.kind + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// errorKind names err for the report's errorsByKind.
func errorKind(err error) string {
	var se *stepError
	if errors.As(err, &se) {
		return se.kind
	}
	return "other"
}

// apiError is the server's JSON error body.
type apiError struct {
	Error struct {
		Code string `json:"code"`
	} `json:"error"`
}

// call sends one JSON request and decodes a reply with status want into
// out. A failure is a *stepError whose kind is "step: status code", or
// "step: timeout" / "step: transport" when no reply came.
func call(ctx context.Context, hc *http.Client, step, method, url, bearer string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return &stepError{step + ": encode", err}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return &stepError{step + ": request", err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return send(hc, step, req, want, out)
}

// send does req and checks its reply. The body is always drained so the
// connection is reused.
func send(hc *http.Client, step string, req *http.Request, want int, out any) error {
	resp, err := hc.Do(req)
	if err != nil {
		kind := step + ": transport"
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			kind = step + ": timeout"
		}
		return &stepError{kind, err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return &stepError{step + ": transport", err}
	}
	if resp.StatusCode != want {
		var ae apiError
		_ = json.Unmarshal(b, &ae)
		code := ae.Error.Code
		if code == "" {
			code = "no_code"
		}
		return &stepError{fmt.Sprintf("%s: %d %s", step, resp.StatusCode, code),
			fmt.Errorf("status %d, want %d", resp.StatusCode, want)}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return &stepError{step + ": bad reply", err}
		}
	}
	return nil
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// timed runs f and records its duration under s when it succeeds, so
// failed requests do not skew the latencies (they are counted as errors).
func timed(rec *recorder, s Step, f func() error) error {
	start := time.Now()
	err := f()
	if err == nil {
		rec.observe(s, time.Since(start))
	}
	return err
}

// upload is what the presigned-url endpoint returns.
type upload struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Fields  map[string]string `json:"fields"`
	Key     string            `json:"key"`
}

// put sends data as the presigned upload says: a PUT with the given
// headers (local store, S3 presigned PUT) or a multipart POST with the
// policy fields first and the file last (S3 POST policy).
func (u upload) put(ctx context.Context, hc *http.Client, data []byte) error {
	var req *http.Request
	var err error
	switch strings.ToUpper(u.Method) {
	case http.MethodPut:
		req, err = http.NewRequestWithContext(ctx, http.MethodPut, u.URL, bytes.NewReader(data))
		if err == nil {
			for k, v := range u.Headers {
				req.Header.Set(k, v)
			}
		}
	case http.MethodPost:
		req, err = u.form(ctx, data)
	default:
		return &stepError{"upload: unknown method", fmt.Errorf("presigned method %q", u.Method)}
	}
	if err != nil {
		return &stepError{"upload: request", err}
	}
	// The store answers 200, 201 or 204 depending on its kind; any 2xx is
	// a stored object, which register then verifies.
	return sendAny2xx(hc, req)
}

func (u upload) form(ctx context.Context, data []byte) (*http.Request, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range u.Fields {
		if err := mw.WriteField(k, v); err != nil {
			return nil, err
		}
	}
	fw, err := mw.CreateFormFile("file", "photo.jpg")
	if err != nil {
		return nil, err
	}
	if _, err := fw.Write(data); err != nil {
		return nil, err
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.URL, &body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return req, nil
}

func sendAny2xx(hc *http.Client, req *http.Request) error {
	resp, err := hc.Do(req)
	if err != nil {
		kind := "upload: transport"
		if isTimeout(err) {
			kind = "upload: timeout"
		}
		return &stepError{kind, err}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return &stepError{fmt.Sprintf("upload: %d", resp.StatusCode), fmt.Errorf("status %d", resp.StatusCode)}
	}
	return nil
}
