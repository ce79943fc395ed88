package publish

import (
	"context"
	"net/http"
	"testing"

	"github.com/ably/ably-go/ably"

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

	// A token authenticates as on every other route; no credentials and a
	// forged token are refused.
	tokened := r.ablyWith(t, ably.WithKey(keyName+":"+keySecret), ably.WithUseTokenAuth(true))
	if _, err := tokened.Stats().Pages(ctx); err != nil {
		t.Fatalf("stats with a token: %v", err)
	}
	td, err := tokened.Auth.RequestToken(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp := r.getBearer(t, "/stats", td.Token)
	resp.Body.Close()
	testutil.Equal(t, "stats with a Bearer token", http.StatusOK, resp.StatusCode)
	resp = r.getBearer(t, "/stats", td.Token+"x")
	resp.Body.Close()
	testutil.Equal(t, "stats with a forged token", http.StatusUnauthorized, resp.StatusCode)
	resp = r.get(t, "/stats", "", "")
	resp.Body.Close()
	testutil.Equal(t, "stats without credentials", http.StatusUnauthorized, resp.StatusCode)
}
