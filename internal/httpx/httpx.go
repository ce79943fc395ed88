// Package httpx holds the JSON conventions every handoff endpoint shares:
// the error shape {"error":{"code","message"}}, strict request decoding
// (unknown fields 400, oversize 413) and response writing; and, for the
// two WebSocket endpoints, the small-buffer hijack (hijack.go).
package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
)

// Error is an API error with the HTTP status it maps to. Message is shown
// to clients and must never contain a token or patient data.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf builds an *Error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// WriteError writes err as the JSON error shape. A non-*Error is an outage
// (IsUnavailable: a 503 ErrUnavailable, with Retry-After) or else a 500;
// either way the message hides the cause (it may name internals).
func WriteError(w http.ResponseWriter, err error) {
	var e *Error
	switch {
	case errors.As(err, &e):
	case IsUnavailable(err):
		e = ErrUnavailable
	default:
		e = &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal server error"}
	}
	if e.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	var b errorBody
	b.Error.Code, b.Error.Message = e.Code, e.Message
	WriteJSON(w, e.Status, b)
}

// WriteJSON writes v with status. PHI-bearing API responses must not be
// cached by browsers or proxies, so every JSON reply says no-store.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ErrBodyTimeout answers a request whose body did not arrive before the
// read deadline the node set for it.
var ErrBodyTimeout = Errorf(http.StatusRequestTimeout, "body_timeout", "the request body did not arrive in time")

// DefaultMaxBody bounds JSON request bodies; API bodies are small metadata.
const DefaultMaxBody = 64 << 10

// DecodeJSON strictly decodes the request body into v: the content type
// must be JSON, unknown fields are rejected, a body over maxBytes is 413,
// and trailing data after the object is rejected.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any, maxBytes int64) error {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBody
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return Errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "request body must be application/json")
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err, maxBytes)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Errorf(http.StatusBadRequest, "invalid_json", "request body must be a single JSON value")
	}
	return nil
}

// Unmarshal strictly decodes b (already read and size-checked) into v, with
// DecodeJSON's rules and error codes: unknown fields, wrong types, trailing
// data and malformed JSON are 400s.
func Unmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err, 0)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Errorf(http.StatusBadRequest, "invalid_json", "request body must be a single JSON value")
	}
	return nil
}

func decodeError(err error, maxBytes int64) *Error {
	var maxErr *http.MaxBytesError
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &maxErr):
		return Errorf(http.StatusRequestEntityTooLarge, "body_too_large", "request body exceeds %d bytes", maxBytes)
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The edge's body read deadline passed: the client announced a body
		// and did not send it in time.
		return ErrBodyTimeout
	case errors.Is(err, io.EOF):
		return Errorf(http.StatusBadRequest, "invalid_json", "request body is empty")
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return Errorf(http.StatusBadRequest, "invalid_json", "request body is not valid JSON")
	case errors.As(err, &typeErr):
		return Errorf(http.StatusBadRequest, "invalid_field", "field %q has the wrong type", typeErr.Field)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return Errorf(http.StatusBadRequest, "unknown_field", "%s", strings.TrimPrefix(err.Error(), "json: "))
	default:
		return Errorf(http.StatusBadRequest, "invalid_json", "request body could not be decoded")
	}
}
