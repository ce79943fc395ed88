package ablyrt

import (
	"context"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/testutil"
)

// testStoreHolder is the holder contract every ConnStore keeps: Hold
// records who holds a connection, Refresh extends it only for that holder
// (or when nothing is recorded), Release frees it only for that holder, and
// Holder reports it.
func testStoreHolder(t *testing.T, s ConnStore) {
	ctx := context.Background()
	holder := func(conn string) (string, bool) {
		t.Helper()
		h, alive, err := s.Holder(ctx, conn)
		if err != nil {
			t.Fatal(err)
		}
		return h, alive
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, alive := holder("none"); alive {
		t.Fatal("a connection never held is alive")
	}

	must(s.Hold(ctx, "c", "n1", time.Minute))
	h, alive := holder("c")
	testutil.Equal(t, "held by n1", [2]any{"n1", true}, [2]any{h, alive})
	held, err := s.Refresh(ctx, "c", "n1", time.Minute)
	must(err)
	testutil.Equal(t, "n1 refreshes its own hold", true, held)

	// Another transport (another node's) takes it over.
	must(s.Hold(ctx, "c", "n2", time.Minute))
	held, err = s.Refresh(ctx, "c", "n1", time.Minute)
	must(err)
	testutil.Equal(t, "n1's refresh after n2 took over", false, held)
	h, _ = holder("c")
	testutil.Equal(t, "still held by n2 after n1's refresh", "n2", h)
	must(s.Release(ctx, "c", "n1", time.Minute)) // n1's transport ends late
	h, alive = holder("c")
	testutil.Equal(t, "n1's release leaves n2's hold", [2]any{"n2", true}, [2]any{h, alive})

	must(s.Release(ctx, "c", "n2", time.Minute))
	h, alive = holder("c")
	testutil.Equal(t, "released: resumable, no holder", [2]any{"", true}, [2]any{h, alive})
	held, err = s.Refresh(ctx, "c", "n3", time.Minute)
	must(err)
	testutil.Equal(t, "a refresh of a free connection holds it", true, held)

	// Nothing recorded (a store that lost it): the holder's refresh holds
	// it again; a release keeps it resumable.
	held, err = s.Refresh(ctx, "lost", "n4", time.Minute)
	must(err)
	testutil.Equal(t, "refresh of a lost connection", true, held)
	h, _ = holder("lost")
	testutil.Equal(t, "held again after the refresh", "n4", h)
	must(s.Release(ctx, "lost2", "n5", time.Minute))
	h, alive = holder("lost2")
	testutil.Equal(t, "released while lost", [2]any{"", true}, [2]any{h, alive})

	must(s.Forget(ctx, "c"))
	if _, alive := holder("c"); alive {
		t.Fatal("a forgotten connection is alive")
	}
}

func TestMemoryStoreHolder(t *testing.T) {
	t.Parallel()
	testStoreHolder(t, NewMemoryStore(nil))
}
