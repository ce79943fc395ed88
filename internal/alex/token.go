package alex

import (
	"context"
	"net/http"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// tokenCache holds one ALEX access token and fetches a new one when it
// expires (oauth2 treats a token as expired 10 s early) or ALEX rejects it.
//
// It stands in for oauth2.ReuseTokenSource for two reasons: a fetch runs
// under the caller's context, so a cancelled commit stops waiting on the
// identity provider; and a token ALEX answers 401 to can be dropped.
// lock is a one-slot channel rather than a mutex so waiting for another
// caller's fetch also honours the context; it also makes concurrent
// callers share one fetch instead of stampeding the provider.
type tokenCache struct {
	cfg  clientcredentials.Config
	http *http.Client
	lock chan struct{}
	tok  *oauth2.Token // guarded by lock
}

func newTokenCache(cfg clientcredentials.Config, hc *http.Client) *tokenCache {
	return &tokenCache{cfg: cfg, http: hc, lock: make(chan struct{}, 1)}
}

// token returns a valid cached token or fetches a new one.
func (t *tokenCache) token(ctx context.Context) (*oauth2.Token, error) {
	select {
	case t.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-t.lock }()
	if t.tok.Valid() {
		return t.tok, nil
	}
	tok, err := t.cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, t.http))
	if err != nil {
		return nil, err
	}
	t.tok = tok
	return tok, nil
}

// invalidate drops bad if it is still the cached token; a token another
// caller fetched meanwhile is kept.
func (t *tokenCache) invalidate(bad *oauth2.Token) {
	t.lock <- struct{}{}
	if t.tok == bad {
		t.tok = nil
	}
	<-t.lock
}
