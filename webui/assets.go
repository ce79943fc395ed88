package webui

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// assetServer serves the embedded static files. ES modules import each other
// by plain relative URLs, which cannot carry a content hash without a build
// step, so every asset is served "no-cache" with a strong ETag: the browser
// keeps its copy and revalidates it with a cheap 304 on each page load, and
// a new binary's assets are picked up at once.
type assetServer struct {
	files map[string]asset
}

type asset struct {
	body        []byte
	gzip        []byte // nil: not worth compressing (gzip.go)
	etag        string
	contentType string
}

// etagFor is the ETag of the variant served: the gzip variant's is
// distinct, so caches and If-None-Match never confuse the two.
func (a asset) etagFor(gzipped bool) string {
	if gzipped {
		return strings.TrimSuffix(a.etag, `"`) + `-gz"`
	}
	return a.etag
}

// contentTypes is set explicitly rather than taken from the host's MIME
// database, which varies between systems; a module served with the wrong
// type is refused by the browser under nosniff.
var contentTypes = map[string]string{
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".json": "application/json",
}

func newAssetServer(root fs.FS) *assetServer {
	s := &assetServer{files: map[string]asset{}}
	err := fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			return nil // README and other non-served files
		}
		body, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		s.files[name] = asset{body: body, gzip: gzipBytes(body), etag: `"` + hex.EncodeToString(sum[:12]) + `"`, contentType: ct}
		return nil
	})
	if err != nil {
		panic("webui: reading embedded assets: " + err.Error())
	}
	return s
}

func (s *assetServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a, ok := s.files[strings.TrimPrefix(r.URL.Path, "/")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	body, gzipped := pickBody(w, r, a.body, a.gzip)
	etag := a.etagFor(gzipped)
	h.Set("ETag", etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		h.Del("Content-Encoding")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", a.contentType)
	writeBody(w, r, body)
}

// etagMatches reports whether an If-None-Match header names etag.
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}
