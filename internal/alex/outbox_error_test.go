package alex

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A disk error of the outbox is ErrOutboxWrite, and its text names the
// OS's reason without the file's path (which holds the session and image
// ids). The directory is replaced by a file, which fails even for root.
func TestOutboxWriteFailure(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "alex-outbox")
	o, err := NewOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	in := sampleInput()
	_, err = o.CreateMedia(context.Background(), in)
	if !errors.Is(err, ErrOutboxWrite) {
		t.Fatalf("error %v, want ErrOutboxWrite", err)
	}
	if IsPermanent(err) {
		t.Error("a disk error is reported permanent; a retry after the disk is fixed can work")
	}
	msg := err.Error()
	for _, leak := range []string{in.SessionID, in.ImageID, in.PatientID, dir} {
		if strings.Contains(msg, leak) {
			t.Errorf("error %q names %q", msg, leak)
		}
	}
	if !strings.Contains(msg, "not a directory") {
		t.Errorf("error %q does not name the OS's reason", msg)
	}
}
