package publish

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/internal/httpx"
)

// ablyError is an error answered in Ably's shape. Status is the HTTP
// status; Code is Ably's five-digit code. Messages never hold a secret
// or a token.
type ablyError struct {
	Status  int
	Code    int
	Message string
}

func (e *ablyError) Error() string { return strconv.Itoa(e.Code) + ": " + e.Message }

func errorf(status, code int, format string, args ...any) *ablyError {
	return &ablyError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// asAbly turns any error of these routes into an Ably error: the request
// decoders' httpx errors keep their status and message, and get the
// Ably code of their status class.
func asAbly(err error) *ablyError {
	var ae *ablyError
	var he *httpx.Error
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &he):
		return &ablyError{Status: he.Status, Code: codeOfStatus(he.Status), Message: he.Message}
	case httpx.IsUnavailable(err):
		return errorf(http.StatusServiceUnavailable, ablyproto.CodeUnavailable, "the realtime backend is unavailable; retry")
	}
	return errorf(http.StatusInternalServerError, ablyproto.CodeInternal, "internal server error")
}

func codeOfStatus(status int) int {
	switch status {
	case http.StatusRequestEntityTooLarge:
		return ablyproto.CodeTooLarge
	case http.StatusUnsupportedMediaType, http.StatusRequestTimeout:
		return ablyproto.CodeBadRequest
	}
	return status * 100
}

// writeError answers err as Ably does: the status, Content-Type exactly
// "application/json" (ably-js on Node compares the string), the
// X-Ably-Errorcode and X-Ably-Errormessage headers (browser ably-js reads
// the body only when they are present) and {"error":{…}}. With
// envelope=json the status goes inside a 200 envelope.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := asAbly(err)
	h := w.Header()
	h.Set("X-Ably-Errorcode", strconv.Itoa(e.Code))
	h.Set("X-Ably-Errormessage", strings.Map(headerSafe, e.Message))
	if e.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	if e.Status == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
		h.Set("WWW-Authenticate", challenge(r))
	}
	writeReply(w, r, e.Status, ablyproto.ErrorBody{Error: *errorInfo(e)}, nil)
}

// errorInfo is err as Ably's error object: an error reply's body, or the
// error of one channel's batch result.
func errorInfo(err error) *ablyproto.ErrorInfo {
	e := asAbly(err)
	return &ablyproto.ErrorInfo{Message: e.Message, Code: e.Code, StatusCode: e.Status,
		HRef: "https://help.ably.io/error/" + strconv.Itoa(e.Code)}
}

// challenge is a 401's WWW-Authenticate. A Basic challenge makes a browser
// ask its user for a password, and one that arrives on browser ably-js's
// fetch stalls the request until the SDK gives up (408). So Basic is
// offered only to a request that came with no credentials and not from a
// page (no Origin); refused credentials, and any browser, get a Bearer
// challenge, which no browser answers with a dialog.
func challenge(r *http.Request) string {
	if r != nil && r.Header.Get("Authorization") == "" && r.Header.Get("Origin") == "" {
		return `Basic realm="handoff"`
	}
	return `Bearer realm="handoff"`
}

// headerSafe keeps an error message printable ASCII for a header.
func headerSafe(r rune) rune {
	if r < 0x20 || r > 0x7e {
		return ' '
	}
	return r
}

// writeReply writes v as JSON with status, wrapped in an envelope when the
// request asked for envelope=json. links are the Link header values.
func writeReply(w http.ResponseWriter, r *http.Request, status int, v any, links []string) {
	if wantsEnvelope(r) {
		env := ablyproto.Envelope{StatusCode: status, Response: v, Headers: map[string]string{}}
		if len(links) > 0 {
			env.Headers["Link"] = strings.Join(links, ", ")
		}
		v, status = env, http.StatusOK
	} else {
		for _, l := range links {
			w.Header().Add("Link", l)
		}
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if status < 300 && wantsMsgpack(r) {
		if b, err := json.Marshal(v); err == nil {
			if m, err := ablyproto.JSONToMsgpack(b); err == nil {
				h.Set("Content-Type", msgpackType)
				w.WriteHeader(status)
				_, _ = w.Write(m)
				return
			}
		}
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

const msgpackType = "application/x-msgpack"

// wantsMsgpack reports whether a success reply should be msgpack: the
// client accepts it and did not ask for a JSON envelope. ably-js on Node
// (useBinaryProtocol, its default) decodes success bodies as msgpack
// whatever their Content-Type; ably-go reads the Content-Type, so either
// suits it. Errors stay JSON: both SDKs read them as JSON.
func wantsMsgpack(r *http.Request) bool {
	return r != nil && strings.Contains(r.Header.Get("Accept"), msgpackType) && !wantsEnvelope(r)
}

// wantsEnvelope reports whether the request asked for envelope=json. Most
// requests have no query at all, and parsing none costs nothing.
func wantsEnvelope(r *http.Request) bool {
	return r != nil && r.URL.RawQuery != "" && r.URL.Query().Get("envelope") == "json"
}
