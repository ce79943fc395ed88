package capture

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/handoff-health/handoff/internal/testutil"
)

// TestPhoneSocket: a claimed phone's mobile token grants its session's
// channel under a clientId of its own that carries no token or patient
// data; a revoked phone and anything that is not a live token get
// ErrUnknownPhone.
func TestPhoneSocket(t *testing.T) {
	t.Parallel()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b, Config{})
			c := e.create("enc-presence")
			one := e.claim(c.Token)
			two := e.claim(e.create("enc-presence").Token)
			ctx := context.Background()

			ch, id1, exp, err := e.api.PhoneSocket(ctx, one.MobileToken)
			if err != nil {
				t.Fatal(err)
			}
			testutil.Equal(t, "channel", "session:"+c.SessionID, ch)
			if !exp.After(e.clock.Now()) {
				t.Errorf("grant expires at %v, before now %v", exp, e.clock.Now())
			}
			_, again, _, _ := e.api.PhoneSocket(ctx, one.MobileToken)
			testutil.Equal(t, "clientId of the same phone again", id1, again)
			_, id2, _, err := e.api.PhoneSocket(ctx, two.MobileToken)
			if err != nil {
				t.Fatal(err)
			}
			if id1 == id2 || !strings.HasPrefix(id1, "phone:") || len(id1) != len("phone:")+12 {
				t.Errorf("clientIds %q and %q: want two different phone:<12 hex>", id1, id2)
			}
			for _, secret := range []string{one.MobileToken, c.SessionID, testNHI, testDisplay} {
				if strings.Contains(id1, secret) {
					t.Errorf("clientId %q contains %q", id1, secret)
				}
			}

			st, body := e.do("POST", "/api/medtech/session/mobile/reject", two.MobileToken, nil)
			e.must(st, http.StatusNoContent, body, nil)
			for name, tok := range map[string]string{
				"revoked phone": two.MobileToken, "QR token": c.Token, "junk": "x", "a JWT": e.jwt,
			} {
				if _, _, _, err := e.api.PhoneSocket(ctx, tok); !errors.Is(err, ErrUnknownPhone) {
					t.Errorf("%s: err %v, want ErrUnknownPhone", name, err)
				}
			}
		})
	}
}
