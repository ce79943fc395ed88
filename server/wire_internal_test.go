package server

import (
	"testing"

	"github.com/handoff-health/handoff/internal/config"
)

// TestAblyKeyAcceptedForWidgets: with --ably-key, handoff's own Ably
// endpoints accept the Ably key too, so a TokenRequest the desktop
// endpoint signed with it works against handoff; the key may only
// subscribe and read history here, whatever it may do on Ably.
func TestAblyKeyAcceptedForWidgets(t *testing.T) {
	const ablySecret = "ably-secret-0123456789abcdefghijklmnopq"
	s := &Server{cfg: config.Config{
		APIKeys:            "integrator:integrator-secret-0123",
		APIKeyCapabilities: `{"integrator":{"session:*":["publish"]}}`,
		AblyKey:            "xVLyHw.ably:" + ablySecret,
	}}
	keys, err := s.apiKeys()
	if err != nil {
		t.Fatal(err)
	}
	c, ok := keys.Authenticate("xVLyHw.ably", ablySecret)
	if !ok {
		t.Fatal("the Ably key is not accepted")
	}
	for op, want := range map[string]bool{"subscribe": true, "history": true, "publish": false, "presence": false} {
		if got := c.Allows("session:abc", op); got != want {
			t.Errorf("Ably key may %s: %v, want %v", op, got, want)
		}
	}
	ic, ok := keys.Authenticate("integrator", "integrator-secret-0123")
	if !ok || !ic.Allows("session:abc", "publish") || ic.Allows("other", "publish") {
		t.Errorf("--api-keys' own capabilities changed: ok %v", ok)
	}

	s.cfg.AblyKey = "xVLyHw.ably:short"
	if _, err := s.apiKeys(); err == nil {
		t.Error("a short Ably secret was accepted")
	}
}
