package alex

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Outbox is the embedded-mode Committer: instead of calling ALEX it writes
// each Media, exactly as the Client would send it (BuildMedia's JSON), to
// its own file, dir/media-<sessionId>.<imageId>.json (IdentifierValue). A
// developer or an integration can inspect or replay them.
//
// Files hold PHI (patient id, image), so they are created 0600 in a 0700
// directory. Writes are atomic (temp file, fsync, rename): a crash leaves
// either the whole file or none (and a temp file, which the outbox removes
// at start and then once every staleTempAge). CreateMedia is idempotent per
// identifier, like ALEX's conditional create, within one process and
// across the nodes of a deployment sharing dir: the file is published with
// a hard link, which fails if the name exists, so of two nodes filing one
// image at once exactly one file wins; the other call, like any later one,
// keeps that file and returns the same Result once the file is checked to
// name the same patient and identifier (else ErrIdentifierConflict, like
// the Client).
type Outbox struct {
	dir              string
	identifierSystem string
	now              func() time.Time // for the temp sweep; time.Now
	mu               sync.Mutex       // serialises exists-check and publish within the process
	lastSweep        time.Time        // guarded by mu
}

// NewOutbox returns an Outbox writing to dir (the server passes
// HANDOFF_DATA_DIR/alex-outbox), creating it so a bad path fails at start.
func NewOutbox(dir string) (*Outbox, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("alex: cannot create outbox directory: %w", err)
	}
	o := &Outbox{dir: dir, identifierSystem: DefaultIdentifierSystem, now: time.Now}
	if err := o.sweepTemps(); err != nil {
		return nil, fmt.Errorf("alex: cannot clean outbox temp files: %s", osCause(err))
	}
	return o, nil
}

// sweepTemps removes the temp files (.media-*.tmp, holding patient data)
// that a writer which died mid-write left in dir: those older than
// staleTempAge, so a live writer's file, on this node or another sharing
// dir, is never taken from under it. Call with mu held or before use.
func (o *Outbox) sweepTemps() error {
	now := o.now()
	o.lastSweep = now
	entries, err := os.ReadDir(o.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, ".media-") || !strings.HasSuffix(name, ".tmp") {
			continue
		}
		info, err := e.Info()
		if err != nil || now.Sub(info.ModTime()) < staleTempAge {
			continue
		}
		if err := os.Remove(filepath.Join(o.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// CreateMedia writes in's Media to the outbox and returns
// Result{ID: "outbox-<sessionId>.<imageId>", Location: <file path>}.
func (o *Outbox) CreateMedia(ctx context.Context, in MediaInput) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	if in.FacilityID == "" {
		return Result{}, fmt.Errorf("alex: %w: facility id is missing", ErrInvalidInput)
	}
	body, err := BuildMedia(in, o.identifierSystem)
	if err != nil {
		return Result{}, err
	}
	// BuildMedia validated both ids against fhirID, so the name cannot
	// leave dir or start a hidden file.
	value := IdentifierValue(in)
	path := filepath.Join(o.dir, "media-"+value+".json")
	res := Result{ID: "outbox-" + value, Location: path}

	o.mu.Lock()
	defer o.mu.Unlock()
	if o.now().Sub(o.lastSweep) >= staleTempAge {
		_ = o.sweepTemps() // best effort; the next one tries again
	}
	if f, err := os.Open(path); err == nil {
		defer f.Close()
		return o.existing(f, in, res)
	}
	err = writeAtomic(o.dir, path, body)
	if errors.Is(err, fs.ErrExist) {
		// Another node sharing dir published this image's file first.
		f, oerr := os.Open(path)
		if oerr != nil {
			return Result{}, fmt.Errorf("%w: %s", ErrOutboxWrite, osCause(oerr))
		}
		defer f.Close()
		return o.existing(f, in, res)
	}
	if err != nil {
		return Result{}, fmt.Errorf("%w: %s", ErrOutboxWrite, osCause(err))
	}
	return res, nil
}

// existing checks the file already filed for in's identifier: res if it
// names the same patient and identifier, else ErrIdentifierConflict.
func (o *Outbox) existing(f *os.File, in MediaInput, res Result) (Result, error) {
	m, _ := decodeMatched(f, maxSuccessBody)
	m.ID = res.ID // files hold the Media as sent, without an id
	if err := expect(in, o.identifierSystem).check(m); err != nil {
		return Result{}, err
	}
	return res, nil
}

// writeAtomic writes data to path through a synced temp file in dir
// (created 0600: it holds patient data) and publishes it under path with a
// hard link, which fails with fs.ErrExist when path exists, so concurrent
// writers in several processes cannot overwrite each other. A file system
// without hard links falls back to rename (atomic, but last writer wins).
func writeAtomic(dir, path string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, ".media-*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err = publish(f.Name(), path); err != nil {
		return err
	}
	// Sync the directory so the rename itself survives a crash.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// osCause is what failed in a file operation, without the paths: the
// operation and the OS's reason ("open: permission denied"). The Media
// file's name holds the session and image ids, which logs leave out.
func osCause(err error) string {
	var pe *os.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Op + ": " + pe.Err.Error()
	case errors.As(err, &le):
		return le.Op + ": " + le.Err.Error()
	default:
		return err.Error()
	}
}

// publish moves the complete temp file tmp to path unless path exists.
func publish(tmp, path string) error {
	err := os.Link(tmp, path)
	switch {
	case err == nil:
		return os.Remove(tmp)
	case errors.Is(err, fs.ErrExist):
		_ = os.Remove(tmp)
		return err
	case errors.Is(err, errors.ErrUnsupported), errors.Is(err, syscall.ENOTSUP), errors.Is(err, syscall.EPERM):
		// No hard links here (e.g. FAT, some network shares; Linux says EPERM).
		return os.Rename(tmp, path)
	}
	return err
}
