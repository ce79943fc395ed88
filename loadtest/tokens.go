package loadtest

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/handoff-health/handoff/internal/auth"
)

// Desktop identities of a run with a known secret. One facility holds all
// simulated GPs, as a large practice would; each GP is its own provider.
const (
	loadFacility = "LOADTEST-FAC"
	// tokenTTL is the life of a minted desktop JWT. The realtime client
	// asks for a fresh one before it runs out, so long runs keep working.
	tokenTTL = time.Hour
)

// tokenSource hands out desktop JWTs: minted per GP with the target's
// secret, or the one dev token of a target in dev mode.
type tokenSource struct {
	verifier *auth.Verifier // nil: dev token
	dev      string
}

func newTokenSource(ctx context.Context, hc *http.Client, base, secret string) (*tokenSource, error) {
	if secret != "" {
		v, err := auth.NewVerifier([]byte(secret))
		if err != nil {
			return nil, err
		}
		return &tokenSource{verifier: v}, nil
	}
	var reply struct {
		Token string `json:"token"`
	}
	if err := call(ctx, hc, "dev token", http.MethodPost, base+"/api/dev/token", "", nil, http.StatusOK, &reply); err != nil {
		return nil, fmt.Errorf("no --jwt-secret given and the target gave no dev token (is it running with --dev?): %w", err)
	}
	return &tokenSource{dev: reply.Token}, nil
}

// forGP returns GP n's token function (the realtime client's Token).
func (t *tokenSource) forGP(n int) func(context.Context) (string, error) {
	if t.verifier == nil {
		return func(context.Context) (string, error) { return t.dev, nil }
	}
	provider := fmt.Sprintf("loadtest-gp-%04d", n)
	return func(context.Context) (string, error) {
		return t.verifier.Issue(auth.Claims{Facility: loadFacility, Provider: provider, Expires: time.Now().Add(tokenTTL)})
	}
}
