package alex

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/testutil"
)

// Two nodes sharing one outbox directory (two Outbox values, so no shared
// mutex) file the same image at once, with different notes: exactly one
// file is published, it is never overwritten, and every call returns the
// same Result.
func TestOutboxSharedByTwoNodes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	nodes := make([]*Outbox, 2)
	for i := range nodes {
		o, err := NewOutbox(dir)
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = o
	}
	var wg sync.WaitGroup
	results := make([]Result, 16)
	notes := make([]string, len(results))
	for i := range results {
		wg.Go(func() {
			in := sampleInput()
			notes[i] = fmt.Sprintf("writer %d", i)
			in.Notes = notes[i]
			res, err := nodes[i%2].CreateMedia(context.Background(), in)
			if err != nil {
				t.Errorf("writer %d: %v", i, err)
			}
			results[i] = res
		})
	}
	wg.Wait()
	for i := range results {
		testutil.Check(t, fmt.Sprintf("result of writer %d", i), results[0], results[i])
	}
	entries, _ := os.ReadDir(dir)
	testutil.Check(t, "outbox entries (one file, no temp files)", 1, len(entries))
	first, _ := os.ReadFile(results[0].Location)
	if _, err := nodes[0].CreateMedia(context.Background(), sampleInput()); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(results[0].Location)
	testutil.Check(t, "file unchanged by a later call", string(first), string(again))
}

// A temp file a crashed writer left (holding patient data) is removed when
// an outbox starts on the directory; a fresh one, possibly a live node's
// write in progress, is kept until it too is stale, and the next sweep
// takes it.
func TestOutboxCleansStaleTempFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	stale := filepath.Join(dir, ".media-123.tmp")
	fresh := filepath.Join(dir, ".media-456.tmp")
	other := filepath.Join(dir, "notes.txt")
	for _, p := range []string{stale, fresh, other} {
		if err := os.WriteFile(p, []byte("patient data"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleTempAge)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	o, err := NewOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	testutil.Check(t, "stale temp file removed at start", false, exists(stale))
	testutil.Check(t, "fresh temp file kept", true, exists(fresh))
	testutil.Check(t, "other file kept", true, exists(other))

	// Later: the fresh file has gone stale, and the next write sweeps it.
	clock := testutil.NewClock()
	o.mu.Lock()
	o.now = func() time.Time { return clock.Now().Add(2 * staleTempAge) }
	o.mu.Unlock()
	if _, err := o.CreateMedia(context.Background(), sampleInput()); err != nil {
		t.Fatal(err)
	}
	testutil.Check(t, "stale temp file swept by a later write", false, exists(fresh))
	testutil.Check(t, "other file still kept", true, exists(other))
}
