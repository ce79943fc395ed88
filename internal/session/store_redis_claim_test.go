//go:build integration

package session

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/internal/testutil"
)

// failClaim makes the claim script and the cleanup DEL fail, as when a
// node dies in the middle of Claim.
type failClaim struct{}

func (failClaim) DialHook(next redis.DialHook) redis.DialHook { return next }
func (failClaim) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (failClaim) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		name := strings.ToLower(cmd.Name())
		if name == "del" || ((name == "evalsha" || name == "eval") && strings.Contains(cmd.String(), " claim ")) {
			err := errors.New("injected: node died")
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

// A claim interrupted after the mobile-token index is written leaves an
// index that still expires with the session, never one that lives forever.
func TestRedisClaimIndexExpiresWhenClaimDies(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	st := newRedisStoreForTest(t, r.Addr)
	c := testutil.NewClock()
	ctx := context.Background()
	qr := qrAt(c)
	if _, _, err := st.Open(ctx, newTestSession(c, "enc-"+uuid.NewString(), "pat-1"), qr, 0); err != nil {
		t.Fatal(err)
	}
	st.c.AddHook(failClaim{})
	mob := newHash()
	if _, err := st.Claim(ctx, qr.Hash, mob, touchAt(c)); err == nil {
		t.Fatal("claim succeeded despite the injected failure")
	}
	probe := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer probe.Close()
	ttl, err := probe.PTTL(ctx, st.mobKey(mob)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 {
		t.Fatalf("mobile index TTL %v after an interrupted claim, want it to expire", ttl)
	}
}
