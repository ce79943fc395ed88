package alex

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/handoff-health/handoff/internal/testutil"
)

func TestOutboxWritesBuildMediaJSON(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "alex-outbox")
	o, err := NewOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	in := sampleInput()
	res, err := o.CreateMedia(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	wantPath := filepath.Join(dir, "media-"+in.SessionID+"."+in.ImageID+".json")
	testutil.Check(t, "result", Result{ID: "outbox-" + in.SessionID + "." + in.ImageID, Location: wantPath}, res)
	got, err := os.ReadFile(wantPath)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := BuildMedia(in, DefaultIdentifierSystem)
	if string(got) != string(want) {
		t.Errorf("file differs from BuildMedia:\n%s\n%s", got, want)
	}
	if fi, _ := os.Stat(wantPath); fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600 (it holds PHI)", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d entries in outbox, want 1 (no temp files left)", len(entries))
	}
}

func TestOutboxIsIdempotent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	o, err := NewOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	first, err := o.CreateMedia(context.Background(), sampleInput())
	if err != nil {
		t.Fatal(err)
	}
	path := first.Location
	before, _ := os.ReadFile(path)

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			in := sampleInput()
			in.Notes = "a different note must not overwrite the first file"
			res, err := o.CreateMedia(context.Background(), in)
			if err != nil {
				t.Errorf("repeat: %v", err)
			}
			testutil.Check(t, "repeat result", first, res)
		})
	}
	wg.Wait()
	after, _ := os.ReadFile(path)
	entries, _ := os.ReadDir(dir)
	testutil.Check(t, "outbox file after repeats", string(before), string(after))
	testutil.Check(t, "outbox entries", 1, len(entries))
}

func TestOutboxRejectsUnsafeInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	o, _ := NewOutbox(dir)
	for _, id := range []string{"../escape", "a/b", ".hidden/x", ""} {
		in := sampleInput()
		in.ImageID = id
		if _, err := o.CreateMedia(context.Background(), in); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("image id %q: err = %v", id, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("%d files written for invalid input", len(entries))
	}
	if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) != 1 {
		t.Errorf("something was written outside the outbox")
	}
}
