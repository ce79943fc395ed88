package blob

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// LocalConfig configures the embedded store. Each field's zero value is usable
// except Dir.
type LocalConfig struct {
	// Dir is where objects live, e.g. "<HANDOFF_DATA_DIR>/blobs". Required; created
	// (mode 0700, images are PHI) if missing.
	Dir string
	// BaseURL is the public base URL of the server, e.g. "http://127.0.0.1:8080",
	// used to make absolute signed URLs. Empty makes root-relative URLs
	// ("/blob/..."), which work for the same-origin pages the server serves.
	BaseURL string
	// Secret is the HMAC-SHA256 key of signed URLs. Empty generates 32 random bytes,
	// so URLs signed before a restart stop working, which is harmless for
	// 5-minute uploads but breaks open 1-hour download links; set it to keep them.
	Secret []byte
	// MaxBytes is the largest object PresignUpload will sign. Zero means
	// DefaultMaxBytes.
	MaxBytes int64
	// Clock tells the time for signing and checking expiry. Nil means time.Now;
	// tests set it to mint URLs that are already expired.
	Clock func() time.Time
	// UploadTimeout and UploadMinRate set an upload's body read deadline:
	// UploadTimeout plus its size at UploadMinRate bytes per second. Zero
	// means DefaultUploadTimeout and DefaultUploadMinRate.
	UploadTimeout time.Duration
	UploadMinRate int64
}

// Local is the embedded Store: files in a directory, with upload and download URLs
// signed by the server and served by Handler. It suits one node; several nodes
// need a shared store (S3).
//
// Layout: the object "sessions/s/i" is the file Dir/sessions/s/i and its content
// type is in the sidecar Dir/sessions/s/.i.meta. Keys never have a segment
// starting with a dot (CheckKey), so sidecars and in-flight ".upload-*" temp files
// can never be mistaken for objects.
type Local struct {
	dir      string
	baseURL  string
	secret   []byte
	maxBytes int64
	now      func() time.Time
	upload   uploadDeadline
}

var _ Store = (*Local)(nil)

// localMeta is the sidecar of one object.
type localMeta struct {
	ContentType string `json:"contentType"`
}

// NewLocal checks cfg, creates Dir and returns the store.
func NewLocal(cfg LocalConfig) (*Local, error) {
	if cfg.Dir == "" {
		return nil, errors.New("blob: local store needs a directory")
	}
	base, err := cleanBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("blob: create local store directory: %w", err)
	}
	l := &Local{dir: cfg.Dir, baseURL: base, secret: cfg.Secret, maxBytes: cfg.MaxBytes, now: cfg.Clock}
	if len(l.secret) == 0 {
		l.secret = make([]byte, 32)
		_, _ = rand.Read(l.secret) // crypto/rand.Read never fails since Go 1.24
	}
	if l.maxBytes <= 0 {
		l.maxBytes = DefaultMaxBytes
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.upload = newUploadDeadline(cfg.UploadTimeout, cfg.UploadMinRate)
	return l, nil
}

func cleanBaseURL(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("blob: local store base URL %q must be http(s)://host[:port][/path]", raw)
	}
	return strings.TrimRight(raw, "/"), nil
}

// PresignUpload signs a PUT of exactly size bytes of contentType; Handler refuses
// any other body size or content type and any request after ExpiresAt.
func (l *Local) PresignUpload(_ context.Context, key, contentType string, size int64, ttl time.Duration) (Upload, error) {
	if err := checkUploadKey(key); err != nil {
		return Upload{}, err
	}
	if err := checkUpload(contentType, size, l.maxBytes, ttl); err != nil {
		return Upload{}, err
	}
	g := grant{method: "PUT", key: key, contentType: contentType, size: size, exp: l.now().Add(ttl).Unix()}
	return Upload{
		Method: g.method,
		URL:    l.signedURL(g),
		// Content-Length is bound too, but every HTTP client derives it from the
		// body, so the client is not asked to set it.
		Headers:   map[string]string{"Content-Type": contentType},
		ExpiresAt: time.Unix(g.exp, 0).UTC(),
	}, nil
}

// PresignGet signs a GET (or HEAD) of key.
func (l *Local) PresignGet(_ context.Context, key string, ttl time.Duration) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	if err := checkTTL(ttl); err != nil {
		return "", fmt.Errorf("blob: presign get: %w", err)
	}
	return l.signedURL(grant{method: "GET", key: key, exp: l.now().Add(ttl).Unix()}), nil
}

// Stat reads the file's size and the sidecar's content type.
func (l *Local) Stat(_ context.Context, key string) (Info, error) {
	if err := CheckKey(key); err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(l.path(key))
	if err != nil || !fi.Mode().IsRegular() {
		return Info{}, notFound(key, err)
	}
	return Info{Size: fi.Size(), ContentType: l.contentType(key)}, nil
}

// Open opens the object's file; the caller closes it.
func (l *Local) Open(_ context.Context, key string) (io.ReadCloser, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	f, err := os.Open(l.path(key))
	if err != nil {
		return nil, notFound(key, err)
	}
	return f, nil
}

// Put writes r to a temp file and renames it over the object, like an upload.
func (l *Local) Put(_ context.Context, key string, r io.Reader, size int64, contentType string) error {
	if err := checkStoredKey(key); err != nil {
		return err
	}
	if !validContentType(contentType) {
		return fmt.Errorf("%w: content type must be type/subtype", ErrInvalidUpload)
	}
	return l.write(key, contentType, size, &exactReader{r: r, want: size})
}

// CopyUpload moves the upload's file to the stored key: a rename within the
// store's directory, so nothing is read or written but directory entries. The
// upload was written whole and fsynced before it became visible (write), and no
// writer holds it open (an upload in flight writes a temp file), so the moved
// file is complete and stays as it is. The stored key's sidecar is written
// first, so the object is never visible without its content type, and the
// directory is synced before returning. Across filesystems (a store directory
// whose "uploads" is a separate mount) it falls back to copying the bytes.
func (l *Local) CopyUpload(_ context.Context, uploadKey, storedKey, contentType string) error {
	if err := checkCopy(uploadKey, storedKey, contentType); err != nil {
		return err
	}
	src, dst := l.path(uploadKey), l.path(storedKey)
	fi, err := os.Lstat(src)
	if err != nil || !fi.Mode().IsRegular() {
		return notFound(uploadKey, err)
	}
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("blob: create session directory: %w", err)
	}
	meta, _ := json.Marshal(localMeta{ContentType: contentType})
	if err := writeFileAtomic(metaPath(dst), meta); err != nil {
		return err
	}
	err = os.Rename(src, dst)
	var linkErr *os.LinkError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return notFound(uploadKey, err) // deleted or moved since the Lstat
	case errors.As(err, &linkErr) && errors.Is(linkErr.Err, syscall.EXDEV):
		return l.copyFile(uploadKey, storedKey, contentType, fi.Size())
	case err != nil:
		return fmt.Errorf("blob: move upload: %w", err)
	}
	_ = removeIfExists(metaPath(src)) // the upload's sidecar; the session sweep takes any left
	return syncDir(dir)
}

// copyFile is CopyUpload's fallback across filesystems: the bytes through a
// temp file, as Put writes them.
func (l *Local) copyFile(uploadKey, storedKey, contentType string, size int64) error {
	f, err := os.Open(l.path(uploadKey))
	if err != nil {
		return notFound(uploadKey, err)
	}
	defer f.Close()
	return l.write(storedKey, contentType, size, &exactReader{r: f, want: size})
}

// Delete removes the object before its sidecar, so Stat reports it gone as soon as
// anything is removed.
func (l *Local) Delete(_ context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	p := l.path(key)
	if err := removeIfExists(p); err != nil {
		return fmt.Errorf("blob: delete object: %w", err)
	}
	if err := removeIfExists(metaPath(p)); err != nil {
		return fmt.Errorf("blob: delete object metadata: %w", err)
	}
	return nil
}

// DeletePrefix removes, in the directory the prefix points into, every entry whose
// name starts with the prefix's last segment; "sessions/{id}/" removes the
// session's whole directory, including uploads still in flight.
func (l *Local) DeletePrefix(_ context.Context, prefix string) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	i := strings.LastIndexByte(prefix, '/')
	parent, namePrefix := filepath.Join(l.dir, filepath.FromSlash(prefix[:i])), prefix[i+1:]
	if namePrefix == "" {
		if err := os.RemoveAll(parent); err != nil {
			return fmt.Errorf("blob: delete prefix: %w", err)
		}
		return nil
	}
	entries, err := os.ReadDir(parent)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("blob: delete prefix: %w", err)
	}
	for _, e := range entries {
		// namePrefix never starts with a dot, so sidecars and temp files are only
		// removed together with their object here.
		if !strings.HasPrefix(e.Name(), namePrefix) {
			continue
		}
		p := filepath.Join(parent, e.Name())
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("blob: delete prefix: %w", err)
		}
		if err := removeIfExists(metaPath(p)); err != nil {
			return fmt.Errorf("blob: delete prefix: %w", err)
		}
	}
	return nil
}

// Ping checks that the store's directory is still there (a lost mount shows here).
func (l *Local) Ping(context.Context) error {
	fi, err := os.Stat(l.dir)
	if err != nil {
		return fmt.Errorf("blob: local store directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("blob: local store path %s is not a directory", l.dir)
	}
	return nil
}

// path maps a checked key to its file; CheckKey guarantees it stays under dir.
func (l *Local) path(key string) string {
	return filepath.Join(l.dir, filepath.FromSlash(key))
}

func metaPath(objectPath string) string {
	dir, name := filepath.Split(objectPath)
	return filepath.Join(dir, "."+name+".meta")
}

// contentType reads the sidecar; a missing or unreadable one (a file put there by
// hand) is served as opaque bytes rather than failing the read.
func (l *Local) contentType(key string) string {
	const unknown = "application/octet-stream"
	b, err := os.ReadFile(metaPath(l.path(key)))
	if err != nil {
		return unknown
	}
	var m localMeta
	if json.Unmarshal(b, &m) != nil || !validContentType(m.ContentType) {
		return unknown
	}
	return m.ContentType
}

// write stores body as key: a temp file in the object's directory, fsynced, then
// renamed over the object, so readers see the old object or the whole new one and
// a failed or short upload leaves nothing. The sidecar is written first so a
// visible object always has its content type.
func (l *Local) write(key, contentType string, size int64, body io.Reader) error {
	p := l.path(key)
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("blob: create session directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".upload-*")
	if err != nil {
		return fmt.Errorf("blob: create temp file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename succeeds
	n, err := io.Copy(tmp, body)
	if err == nil && n != size {
		err = fmt.Errorf("%w: got %d of %d bytes", ErrSize, n, size)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	meta, _ := json.Marshal(localMeta{ContentType: contentType})
	if err := writeFileAtomic(metaPath(p), meta); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("blob: publish object: %w", err)
	}
	return syncDir(dir)
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".upload-*")
	if err != nil {
		return fmt.Errorf("blob: create temp file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("blob: write object metadata: %w", err)
	}
	return nil
}

// syncDir makes the renames durable: without it a crash can forget an upload that
// was already acknowledged to the phone.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("blob: sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("blob: sync directory: %w", err)
	}
	return nil
}

func removeIfExists(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// notFound maps "no such file" to ErrNotFound and keeps other errors (permissions,
// I/O) distinct, so a broken disk is not reported as a missing image.
func notFound(key string, err error) error {
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	return fmt.Errorf("blob: read %s: %w", key, err)
}
