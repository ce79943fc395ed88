package auth

import (
	"sync"
	"testing"
)

// TestAPIKeysAddRemove: keys added at runtime authenticate with their
// capability, concurrently with lookups (run with -race); a removed key
// no longer authenticates or signs; bad additions are refused.
func TestAPIKeysAddRemove(t *testing.T) {
	k, err := ParseAPIKeys("app.base:0123456789abcdef", "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseCapability(`{"room:*":["subscribe"]}`)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				k.Check("app.base", "0123456789abcdef")
				k.Len()
			}
		}()
	}
	if err := k.Add("t1.k1", "secret-secret-secret", c); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	got, ok := k.Authenticate("t1.k1", "secret-secret-secret")
	if !ok || !got.Allows("room:1", OpSubscribe) || got.Allows("room:1", OpPublish) {
		t.Fatalf("added key: ok=%v cap=%v", ok, got)
	}
	if _, _, ok := k.Sign("t1.k1", []byte("x")); !ok {
		t.Fatal("an added key does not sign")
	}
	k.Remove("t1.k1")
	if k.Check("t1.k1", "secret-secret-secret") {
		t.Fatal("a removed key still authenticates")
	}
	if _, _, ok := k.Sign("t1.k1", []byte("x")); ok {
		t.Fatal("a removed key still signs")
	}
	for _, bad := range [][2]string{{"", "secret-secret-secret"}, {"a:b", "secret-secret-secret"}, {"a,b", "secret-secret-secret"}, {"short", "short"}} {
		if err := k.Add(bad[0], bad[1], AllowAll); err == nil {
			t.Errorf("Add(%q) accepted", bad[0])
		}
	}
	if k.Len() != 1 {
		t.Fatalf("Len = %d, want 1", k.Len())
	}
}

// TestAPIKeysGeneration: every change to the keys moves Generation on, so
// a credential remembered at one generation is seen as stale after an Add
// or a Remove; a lookup does not move it.
func TestAPIKeysGeneration(t *testing.T) {
	k, err := ParseAPIKeys("app.base:0123456789abcdef", "")
	if err != nil {
		t.Fatal(err)
	}
	g0 := k.Generation()
	k.Check("app.base", "0123456789abcdef")
	if g := k.Generation(); g != g0 {
		t.Fatalf("a lookup moved Generation from %d to %d", g0, g)
	}
	if err := k.Add("t1.k1", "secret-secret-secret", AllowAll); err != nil {
		t.Fatal(err)
	}
	g1 := k.Generation()
	if g1 == g0 {
		t.Fatal("Add did not move Generation")
	}
	k.Remove("t1.k1")
	if g := k.Generation(); g == g1 || g == g0 {
		t.Fatalf("Remove left Generation at %d (before: %d, %d)", g, g0, g1)
	}
}
