package alex

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// FHIR media type for requests and responses.
const fhirJSON = "application/fhir+json"

// Config configures a Client. Fields marked required have no default;
// NewClient names the first one missing.
type Config struct {
	// BaseURL is the FHIR base, e.g. https://alexapiuat.medtechglobal.com/FHIR
	// (UAT) or https://alexapi.medtechglobal.com/FHIR (prod). Required.
	BaseURL string
	// TokenURL is the Azure AD token endpoint,
	// https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token. Required.
	TokenURL string
	// ClientID and ClientSecret are the credentials Medtech issued. Required.
	ClientID     string
	ClientSecret string
	// Scope is the ALEX API scope, api://<id>/.default. Required.
	Scope string
	// IdentifierSystem namespaces Media.identifier. Zero: DefaultIdentifierSystem.
	IdentifierSystem string
	// AppIDHeader and AppID add an application id header (e.g. mt-appid)
	// to every call. Both empty: no header. One without the other is an error.
	AppIDHeader string
	AppID       string
	// HTTPClient makes token and FHIR calls. Zero: a client on
	// http.DefaultTransport that follows no redirects. Its own Timeout, if
	// any, applies on top of Timeout.
	HTTPClient *http.Client
	// MaxAttempts bounds tries per Media (the first included). Zero: 4.
	MaxAttempts int
	// BaseBackoff is the wait before the first retry, doubled per retry
	// and jittered. Zero: 500ms.
	BaseBackoff time.Duration
	// Timeout bounds one attempt, token fetch included. Zero: 30s.
	Timeout time.Duration
}

// Client files Media through ALEX. It is safe for concurrent use.
type Client struct {
	cfg      Config
	mediaURL string
	tokens   *tokenCache
	// sleep waits between attempts; tests replace it to observe waits
	// without spending wall-clock time.
	sleep func(ctx context.Context, d time.Duration) error
}

// NewClient validates cfg, fills its defaults and returns a Client. It
// makes no network call: a wrong secret shows on the first CreateMedia.
func NewClient(cfg Config) (*Client, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	cc := clientcredentials.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		TokenURL:     cfg.TokenURL,
		Scopes:       []string{cfg.Scope},
		// Medtech documents credentials as form parameters; fixing the
		// style also avoids oauth2's auto-detect sending a failing probe.
		AuthStyle: oauth2.AuthStyleInParams,
	}
	return &Client{
		cfg:      cfg,
		mediaURL: strings.TrimRight(cfg.BaseURL, "/") + "/Media",
		tokens:   newTokenCache(cc, cfg.HTTPClient),
		sleep:    sleepCtx,
	}, nil
}

func (cfg *Config) setDefaults() error {
	for _, req := range []struct{ name, value string }{
		{"BaseURL", cfg.BaseURL}, {"TokenURL", cfg.TokenURL}, {"ClientID", cfg.ClientID},
		{"ClientSecret", cfg.ClientSecret}, {"Scope", cfg.Scope},
	} {
		if strings.TrimSpace(req.value) == "" {
			return fmt.Errorf("alex: config: %s is required", req.name)
		}
	}
	for _, u := range []struct{ name, value string }{{"BaseURL", cfg.BaseURL}, {"TokenURL", cfg.TokenURL}} {
		if err := checkURL(u.value); err != nil {
			return fmt.Errorf("alex: config: %s %w", u.name, err)
		}
	}
	if (cfg.AppIDHeader == "") != (cfg.AppID == "") {
		return errors.New("alex: config: AppIDHeader and AppID must be set together")
	}
	if cfg.MaxAttempts < 0 || cfg.BaseBackoff < 0 || cfg.Timeout < 0 {
		return errors.New("alex: config: MaxAttempts, BaseBackoff and Timeout must not be negative")
	}
	if strings.ContainsAny(cfg.IdentifierSystem, "|&#% ") {
		return errors.New("alex: config: IdentifierSystem must be a URI without '|', '&', '#', '%' or spaces")
	}
	if cfg.IdentifierSystem == "" {
		cfg.IdentifierSystem = DefaultIdentifierSystem
	}
	if cfg.HTTPClient == nil {
		// Never follow redirects: a 307 would re-send the bearer token's
		// request and its PHI body to wherever it points. A 3xx comes back
		// as a non-retryable *Error instead.
		cfg.HTTPClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.BaseBackoff == 0 {
		cfg.BaseBackoff = DefaultBaseBackoff
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	return nil
}

// checkURL insists on https, because PHI and the client secret travel on
// these URLs; plain http is allowed only to loopback, for tests and fakes.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("is not an absolute URL")
	}
	if u.Scheme == "https" {
		return nil
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); u.Scheme == "http" && (host == "localhost" || ip != nil && ip.IsLoopback()) {
		return nil
	}
	return errors.New("must use https")
}

// CreateMedia files in as a Media through ALEX.
//
// It is a conditional create (If-None-Exist on the identifier), so retrying
// after a lost response finds the Media already made instead of making a
// second one. ALEX's 200 for such a match is a success like 201 only once
// the matched Media (from the body, or read at its Location) is checked to
// name the same patient and identifier; otherwise the error wraps
// ErrIdentifierConflict. 429 (with
// Retry-After up to 30 s), 408, 5xx, network errors, attempt timeouts and
// token-endpoint outages are retried with jittered exponential backoff,
// up to MaxAttempts; other 4xx are returned at once as *Error. A 401 drops
// the cached token and tries once more with a fresh one, because a token
// can be revoked before it expires.
func (c *Client) CreateMedia(ctx context.Context, in MediaInput) (Result, error) {
	if strings.TrimSpace(in.FacilityID) == "" {
		return Result{}, fmt.Errorf("alex: %w: facility id is missing", ErrInvalidInput)
	}
	body, err := BuildMedia(in, c.cfg.IdentifierSystem)
	if err != nil {
		return Result{}, err
	}
	// Session and image ids and the system are restricted to characters
	// that need no escaping here (see fhirID and setDefaults).
	want := expect(in, c.cfg.IdentifierSystem)
	ifNoneExist := "identifier=" + want.system + "|" + want.value
	freshToken := false
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return Result{}, fmt.Errorf("alex: create Media: %w", err)
		}
		res, wait, err := c.attempt(ctx, in.FacilityID, body, ifNoneExist, want)
		if err == nil {
			return res, nil
		}
		var ae *Error
		if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized && !freshToken {
			freshToken = true
			continue
		}
		if ctx.Err() != nil || !retryable(err) || attempt >= c.cfg.MaxAttempts || wait > maxRetryAfter {
			return Result{}, giveUp(err, attempt)
		}
		if err := c.sleep(ctx, max(wait, retryDelay(c.cfg.BaseBackoff, attempt))); err != nil {
			return Result{}, giveUp(err, attempt)
		}
	}
}

// giveUp wraps the last error once, keeping *Error and token failures
// reachable through errors.As and errors.Is.
func giveUp(err error, attempts int) error {
	var te *tokenError
	if errors.As(err, &te) {
		return err
	}
	if attempts == 1 {
		return fmt.Errorf("alex: create Media: %w", err)
	}
	return fmt.Errorf("alex: create Media failed after %d attempts: %w", attempts, err)
}

func retryable(err error) bool {
	if errors.Is(err, ErrIdentifierConflict) {
		return false // the same Media would match again
	}
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Retryable
	}
	var te *tokenError
	if errors.As(err, &te) {
		return te.retryable()
	}
	return true // transport error or attempt timeout
}

// attempt makes one POST under its own timeout. On a failure it returns
// the wait the server asked for (Retry-After), if any.
func (c *Client) attempt(ctx context.Context, facility string, body []byte, ifNoneExist string, want expected) (Result, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	tok, err := c.tokens.token(ctx)
	if err != nil {
		return Result{}, 0, &tokenError{err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.mediaURL, bytes.NewReader(body))
	if err != nil {
		return Result{}, 0, err
	}
	tok.SetAuthHeader(req)
	req.Header.Set("mt-facilityid", facility)
	req.Header.Set("Content-Type", fhirJSON)
	req.Header.Set("Accept", fhirJSON)
	req.Header.Set("If-None-Exist", ifNoneExist)
	if c.cfg.AppIDHeader != "" {
		req.Header.Set(c.cfg.AppIDHeader, c.cfg.AppID)
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return Result{}, 0, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusCreated:
		res, err := created(resp)
		return res, 0, err
	case http.StatusOK:
		res, err := c.matched(ctx, tok, facility, resp, want)
		return res, 0, err
	case http.StatusUnauthorized:
		c.tokens.invalidate(tok)
	}
	return Result{}, retryAfter(resp.Header.Get("Retry-After"), time.Now()), responseError(resp)
}

// created reads the Media id from Location (…/Media/<id>/_history/<v>),
// else from the returned resource. The Media exists either way, so a
// missing id is reported rather than guessed; retrying will find it.
func created(resp *http.Response) (Result, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		loc = resp.Header.Get("Content-Location")
	}
	if id := mediaIDFromURL(loc); id != "" {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return Result{ID: id, Location: loc}, nil
	}
	var r struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
	}
	err := json.NewDecoder(io.LimitReader(resp.Body, maxSuccessBody)).Decode(&r)
	if err != nil || r.ResourceType != "Media" || r.ID == "" {
		return Result{}, fmt.Errorf("ALEX answered %d without a Location or Media id", resp.StatusCode)
	}
	return Result{ID: r.ID, Location: loc}, nil
}

// matched checks the Media a conditional create matched (200): the one in
// the body, or, if the body holds none, the one read at its Location.
func (c *Client) matched(ctx context.Context, tok *oauth2.Token, facility string, resp *http.Response, want expected) (Result, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		loc = resp.Header.Get("Content-Location")
	}
	m, ok := decodeMatched(resp.Body, maxSuccessBody)
	if !ok || m.ResourceType != "Media" {
		id := mediaIDFromURL(loc)
		if id == "" {
			return Result{}, fmt.Errorf("ALEX answered 200 without a Location or Media")
		}
		var err error
		if m, err = c.read(ctx, tok, facility, id); err != nil {
			return Result{}, err
		}
	}
	if err := want.check(m); err != nil {
		return Result{}, err
	}
	return Result{ID: m.ID, Location: loc}, nil
}

// read fetches the Media with this logical id, for matched. The URL is
// built from BaseURL, never taken from the Location header, so the bearer
// token goes nowhere else.
func (c *Client) read(ctx context.Context, tok *oauth2.Token, facility, id string) (matchedMedia, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.mediaURL+"/"+id, nil)
	if err != nil {
		return matchedMedia{}, err
	}
	tok.SetAuthHeader(req)
	req.Header.Set("mt-facilityid", facility)
	req.Header.Set("Accept", fhirJSON)
	if c.cfg.AppIDHeader != "" {
		req.Header.Set(c.cfg.AppIDHeader, c.cfg.AppID)
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return matchedMedia{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusUnauthorized {
			c.tokens.invalidate(tok)
		}
		return matchedMedia{}, responseError(resp)
	}
	m, ok := decodeMatched(resp.Body, maxSuccessBody)
	if !ok {
		return matchedMedia{}, fmt.Errorf("%w: the Media at its Location is unreadable", ErrIdentifierConflict)
	}
	return m, nil
}

func mediaIDFromURL(loc string) string {
	u, err := url.Parse(loc)
	if err != nil {
		return ""
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	for i := len(parts) - 2; i >= 0; i-- {
		if parts[i] == "Media" && fhirID.MatchString(parts[i+1]) {
			return parts[i+1]
		}
	}
	return ""
}
