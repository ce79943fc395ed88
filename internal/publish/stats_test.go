package publish

import (
	"context"
	"net/http"
	"testing"

	"github.com/handoff-health/handoff/internal/testutil"
)

// TestAblyGoStatsEmpty: ably-go's Stats() with a key gets an empty page
// (handoff keeps no per-app statistics); a wrong secret is refused 401.
func TestAblyGoStatsEmpty(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{})
	ctx := context.Background()
	pages, err := r.ably(t, keyName+":"+keySecret).Stats().Pages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pages.Next(ctx) && len(pages.Items()) != 0 {
		t.Fatalf("%d stats", len(pages.Items()))
	}
	_, err = r.ably(t, keyName+":wrong-secret-wrong-secret").Stats().Pages(ctx)
	_, status := ablyErr(t, err)
	testutil.Equal(t, "a wrong secret", http.StatusUnauthorized, status)
}
