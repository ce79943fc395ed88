package blob

import (
	"errors"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/handoff-health/handoff/internal/httpx"
)

// Handler serves the URLs Local signs: PUT /blob/{key} uploads and GET (or HEAD)
// /blob/{key} downloads. Mount it with mux.Handle("/blob/", h); it reads the key
// from the full request path, so it must not be wrapped in http.StripPrefix.
//
// Every refusal is a JSON error {"error":{"code","message"}} and leaves no object
// behind. No CORS headers are sent: the phone and desktop pages are served by the
// same origin as these URLs.
func (l *Local) Handler() http.Handler {
	return http.HandlerFunc(l.serveHTTP)
}

func (l *Local) serveHTTP(w http.ResponseWriter, r *http.Request) {
	// Signed URLs carry credentials and responses carry PHI: nothing may be cached
	// or reinterpreted by the browser.
	w.Header().Set("Cache-Control", "private, no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	key, ok := strings.CutPrefix(r.URL.Path, localPathPrefix)
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "No such blob URL.")
		return
	}
	if CheckKey(key) != nil {
		writeError(w, http.StatusBadRequest, "invalid_key", "The blob key is not valid.")
		return
	}
	switch r.Method {
	case http.MethodPut:
		// Only upload keys are ever signed for PUT; refusing stored keys here
		// too means a URL signed with the same secret by an older version,
		// which signed stored keys, cannot overwrite a checked image either.
		if checkUploadKey(key) != nil {
			writeError(w, http.StatusForbidden, "key_not_writable", "This blob cannot be written through a URL.")
			return
		}
		l.servePut(w, r, key)
	case http.MethodGet, http.MethodHead:
		l.serveGet(w, r, key)
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Use PUT to upload or GET to download.")
	}
}

// servePut checks the request against the signed grant before reading any of the
// body, then streams exactly the signed number of bytes to disk.
func (l *Local) servePut(w http.ResponseWriter, r *http.Request, key string) {
	g, err := l.verify(http.MethodPut, key, r.URL.Query())
	if err != nil {
		writeSignatureError(w, err)
		return
	}
	switch {
	case r.Header.Get("Content-Type") != g.contentType:
		writeError(w, http.StatusUnsupportedMediaType, "content_type_mismatch",
			"Content-Type must be the one the upload URL was signed for.")
		return
	case r.ContentLength < 0:
		writeError(w, http.StatusLengthRequired, "length_required", "Content-Length is required.")
		return
	case r.ContentLength > g.size:
		writeError(w, http.StatusRequestEntityTooLarge, "size_mismatch",
			"The body is larger than the upload URL was signed for.")
		return
	case r.ContentLength < g.size:
		writeError(w, http.StatusBadRequest, "size_mismatch",
			"The body is smaller than the upload URL was signed for.")
		return
	}
	// The grant is checked, so this client may send its signed size: its
	// deadline now fits that size rather than the edge's short API one.
	l.upload.set(w, g.size)
	// net/http already stops at Content-Length; the MaxBytesReader states the
	// signed limit where the bytes are read, whatever the transport does.
	body := &trackedReader{r: http.MaxBytesReader(w, r.Body, g.size)}
	if err := l.write(key, g.contentType, g.size, body); err != nil {
		if errors.Is(body.err, os.ErrDeadlineExceeded) {
			httpx.WriteError(w, httpx.ErrBodyTimeout)
			return
		}
		if body.err != nil || body.n != g.size {
			writeError(w, http.StatusBadRequest, "body_incomplete", "The upload ended before all bytes arrived.")
			return
		}
		writeError(w, http.StatusInternalServerError, "store_failed", "The image could not be stored.")
		return
	}
	w.WriteHeader(http.StatusOK)
}

// serveGet checks the signature and serves the file with its stored content type;
// http.ServeContent adds Range and conditional request support.
func (l *Local) serveGet(w http.ResponseWriter, r *http.Request, key string) {
	// HEAD uses the GET signature, as a browser or client may probe a download.
	if _, err := l.verify(http.MethodGet, key, r.URL.Query()); err != nil {
		writeSignatureError(w, err)
		return
	}
	f, err := os.Open(l.path(key))
	if err != nil {
		writeNotFoundOr500(w, err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		writeNotFoundOr500(w, err)
		return
	}
	w.Header().Set("Content-Type", l.contentType(key))
	http.ServeContent(w, r, "", fi.ModTime(), f)
}

func writeNotFoundOr500(w http.ResponseWriter, err error) {
	if err == nil || errors.Is(err, os.ErrNotExist) {
		writeError(w, http.StatusNotFound, "not_found", "The image does not exist.")
		return
	}
	writeError(w, http.StatusInternalServerError, "store_failed", "The image could not be read.")
}

func writeSignatureError(w http.ResponseWriter, err error) {
	if errors.Is(err, errExpired) {
		writeError(w, http.StatusForbidden, "url_expired", "The signed URL has expired; ask for a new one.")
		return
	}
	writeError(w, http.StatusForbidden, "signature_invalid", "The signed URL is not valid.")
}

// writeError writes the API's error shape. The message never echoes request
// input: URLs here carry signatures.
func writeError(w http.ResponseWriter, status int, code, message string) {
	httpx.WriteError(w, &httpx.Error{Status: status, Code: code, Message: message})
}

// trackedReader remembers a failed read of the request body, so a client that
// hangs up mid-upload is told 400 while a failing disk is a 500.
type trackedReader struct {
	r   io.Reader
	n   int64
	err error
}

func (t *trackedReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.n += int64(n)
	if err != nil && err != io.EOF {
		t.err = err
	}
	return n, err
}
