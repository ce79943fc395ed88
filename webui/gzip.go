package webui

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strconv"
	"strings"
)

// Compression: the pages and assets are compressed once, at start, with
// gzip at its best level (they are embedded and never change), and served
// compressed to clients that accept it. A variant is kept only when it is
// smaller (SVG icons of a few hundred bytes are not).
//
// Caching stays correct because the two variants are different
// representations: every response says Vary: Accept-Encoding, and the gzip
// variant of an asset has its own strong ETag ("<hash>-gz"), so a cache
// never answers a client that cannot inflate with gzip bytes, and an
// If-None-Match is compared with the ETag of the variant the client would
// get.

// gzipBytes returns body gzipped, or nil when that would not be smaller.
func gzipBytes(body []byte) []byte {
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		panic("webui: gzip writer: " + err.Error())
	}
	_, _ = zw.Write(body)
	if err := zw.Close(); err != nil {
		panic("webui: gzip: " + err.Error())
	}
	if b.Len() >= len(body) {
		return nil
	}
	return b.Bytes()
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip (or
// "*") with a non-zero quality.
func acceptsGzip(header string) bool {
	ok := false
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "x-gzip" && coding != "*" {
			continue
		}
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		if coding == "*" {
			if q > 0 {
				ok = true
			}
			continue
		}
		return q > 0 // an explicit gzip entry wins over "*"
	}
	return ok
}

// pickBody chooses the representation for r: the gzip variant when there is
// one and r accepts it. It sets Vary, and Content-Encoding when gzipped.
func pickBody(w http.ResponseWriter, r *http.Request, plain, gz []byte) (body []byte, gzipped bool) {
	h := w.Header()
	h.Add("Vary", "Accept-Encoding")
	if gz != nil && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		return gz, true
	}
	return plain, false
}

// writeBody writes body with its length, or only the headers for HEAD.
func writeBody(w http.ResponseWriter, r *http.Request, body []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}
