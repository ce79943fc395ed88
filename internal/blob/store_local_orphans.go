package blob

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DeleteAllTemporary removes every object under both roots ("sessions/"
// and "uploads/") and returns how many objects it removed (sidecars and
// temp files are not counted). It is for a node whose sessions lived only
// in its own memory and died with its last run (issue 15): their photos
// then belong to no session, and nothing else would ever delete them.
// Never call it while sessions that use the store may exist.
func (l *Local) DeleteAllTemporary(ctx context.Context) (int, error) {
	n := 0
	for _, root := range []string{keyRoot, uploadRoot} {
		dir := filepath.Join(l.dir, strings.TrimSuffix(root, "/"))
		err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
				n++
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("blob: list %s: %w", root, err)
		}
		if err := os.RemoveAll(dir); err != nil {
			return 0, fmt.Errorf("blob: delete %s: %w", root, err)
		}
	}
	return n, nil
}
