package alex

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Outbox is the embedded-mode Committer: instead of calling ALEX it writes
// each Media, exactly as the Client would send it (BuildMedia's JSON), to
// its own file, dir/media-<sessionId>.<imageId>.json (IdentifierValue). A
// developer or an integration can inspect or replay them.
//
// Files hold PHI (patient id, image), so they are created 0600 in a 0700
// directory. Writes are atomic (temp file, fsync, rename): a crash leaves
// either the whole file or none. Within one process CreateMedia is
// idempotent per identifier, like ALEX's conditional create: a second call
// keeps the first file and returns the same Result, once the file is
// checked to name the same patient and identifier (else
// ErrIdentifierConflict, like the Client). The outbox is meant
// for one node; several processes sharing dir could race on one image.
type Outbox struct {
	dir              string
	identifierSystem string
	mu               sync.Mutex // serialises exists-check and rename
}

// NewOutbox returns an Outbox writing to dir (the server passes
// HANDOFF_DATA_DIR/alex-outbox), creating it so a bad path fails at start.
func NewOutbox(dir string) (*Outbox, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("alex: cannot create outbox directory: %w", err)
	}
	return &Outbox{dir: dir, identifierSystem: DefaultIdentifierSystem}, nil
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
	if f, err := os.Open(path); err == nil {
		defer f.Close()
		m, _ := decodeMatched(f, maxSuccessBody)
		m.ID = res.ID // files hold the Media as sent, without an id
		if err := expect(in, o.identifierSystem).check(m); err != nil {
			return Result{}, err
		}
		return res, nil
	}
	if err := writeAtomic(o.dir, path, body); err != nil {
		return Result{}, fmt.Errorf("%w: %s", ErrOutboxWrite, osCause(err))
	}
	return res, nil
}

// writeAtomic writes data to path through a synced temp file in dir.
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
	if err = os.Rename(f.Name(), path); err != nil {
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
