package alex

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/alex/alextest"

	"github.com/handoff-health/handoff/internal/testutil"
)

// waits records the pauses a Client asked for instead of sleeping.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	w.d = append(w.d, d)
	w.mu.Unlock()
	return ctx.Err()
}

func (w *waits) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

func newTestClient(t *testing.T, fake *alextest.Server, edit func(*Config)) (*Client, *waits) {
	t.Helper()
	cfg := Config{
		BaseURL: fake.URL(), TokenURL: fake.TokenURL(),
		ClientID: fake.ClientID(), ClientSecret: fake.ClientSecret(), Scope: fake.Scope(),
		AppIDHeader: "mt-appid", AppID: "handoff-test",
		BaseBackoff: time.Millisecond,
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := &waits{}
	c.sleep = w.sleep
	return c, w
}

func TestCreateMediaHappyPath(t *testing.T) {
	t.Parallel()
	fake := alextest.NewServer(t, alextest.Options{Facilities: []string{"F2N060-A"}})
	c, _ := newTestClient(t, fake, nil)
	ids := []string{"img-1", "img-2", "img-3"}
	for i, id := range ids {
		in := sampleInput()
		in.ImageID = id
		res, err := c.CreateMedia(context.Background(), in)
		if err != nil {
			t.Fatalf("CreateMedia %s: %v", id, err)
		}
		wantID := "media-" + string(rune('1'+i))
		testutil.Check(t, "result", Result{ID: wantID, Location: fake.URL() + "/Media/" + wantID + "/_history/1"}, res)
	}
	if n := fake.TokenRequests(); n != 1 {
		t.Errorf("%d token requests for %d calls, want 1 (cached)", n, len(ids))
	}
	stored := fake.Media()
	if len(stored) != len(ids) {
		t.Fatalf("%d Media stored, want %d", len(stored), len(ids))
	}
	m := stored[0]
	in := sampleInput()
	if !bytes.Equal(m.Data, in.Data) {
		t.Errorf("content.data round trip: got %x want %x", m.Data, in.Data)
	}
	if m.FacilityID != in.FacilityID || m.Header.Get("mt-appid") != "handoff-test" ||
		m.Header.Get("Accept") != fhirJSON || m.Header.Get("Content-Type") != fhirJSON ||
		m.Header.Get("If-None-Exist") != "identifier="+DefaultIdentifierSystem+"|"+in.SessionID+".img-1" {
		t.Errorf("headers %v", m.Header)
	}
	r := m.Resource
	if r.Identifier[0].Value != in.SessionID+".img-1" || r.Identifier[0].System != DefaultIdentifierSystem ||
		r.Subject.Reference != "Patient/"+in.PatientID || r.BodySite.Coding[0].Code != "14975008" ||
		r.BodySite.Text != "Left forearm" || r.Status != "completed" {
		t.Errorf("stored resource %+v", r)
	}
}

func TestCreateMediaTokenEndpointDown(t *testing.T) {
	t.Parallel()
	for _, fault := range []alextest.TokenFault{alextest.TokenUnavailable, alextest.TokenDropConnection} {
		fake := alextest.NewServer(t, alextest.Options{})
		fake.SetTokenFault(fault)
		c, _ := newTestClient(t, fake, nil)
		_, err := c.CreateMedia(context.Background(), sampleInput())
		if err == nil || !strings.HasPrefix(err.Error(), "alex: cannot get access token: ") ||
			!errors.Is(err, ErrAccessToken) || IsPermanent(err) {
			t.Errorf("fault %d: err = %v", fault, err)
		}
		testutil.Check(t, fmt.Sprintf("fault %d: Media requests without a token", fault), 0, fake.MediaRequests())
		testutil.Check(t, fmt.Sprintf("fault %d: Media stored without a token", fault), 0, len(fake.Media()))
		if n := fake.TokenRequests(); n != DefaultMaxAttempts {
			t.Errorf("fault %d: %d token requests, want %d (retried)", fault, n, DefaultMaxAttempts)
		}
	}
}

func TestCreateMediaBadSecretNotRetried(t *testing.T) {
	t.Parallel()
	fake := alextest.NewServer(t, alextest.Options{})
	c, _ := newTestClient(t, fake, func(cfg *Config) { cfg.ClientSecret = "wrong-secret" })
	_, err := c.CreateMedia(context.Background(), sampleInput())
	if err == nil {
		t.Fatal("a rejected client secret succeeded")
	}
	if !strings.Contains(err.Error(), "invalid_client") {
		t.Errorf("err = %v, want it to name invalid_client", err)
	}
	if strings.Contains(err.Error(), "wrong-secret") {
		t.Errorf("err shows the secret: %v", err)
	}
	testutil.Check(t, "token requests", 1, fake.TokenRequests())
	testutil.Check(t, "media requests", 0, fake.MediaRequests())
}

func TestCreateMediaRetries5xx(t *testing.T) {
	t.Parallel()
	fake := alextest.NewServer(t, alextest.Options{})
	fake.FailNext(2, http.StatusInternalServerError)
	c, w := newTestClient(t, fake, nil)
	res, err := c.CreateMedia(context.Background(), sampleInput())
	if err != nil {
		t.Fatal(err)
	}
	testutil.Check(t, "media id", "media-1", res.ID)
	testutil.Check(t, "media requests", 3, fake.MediaRequests())
	testutil.Check(t, "media stored", 1, len(fake.Media()))
	testutil.Check(t, "waits", 2, len(w.all()))
}

func TestCreateMediaGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	fake := alextest.NewServer(t, alextest.Options{})
	fake.FailNext(10, http.StatusServiceUnavailable)
	c, _ := newTestClient(t, fake, func(cfg *Config) { cfg.MaxAttempts = 3 })
	_, err := c.CreateMedia(context.Background(), sampleInput())
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 503 || !ae.Retryable || IsPermanent(err) ||
		!strings.Contains(err.Error(), "after 3 attempts") {
		t.Fatalf("err = %v", err)
	}
	if fake.MediaRequests() != 3 {
		t.Errorf("%d requests, want 3", fake.MediaRequests())
	}
}

func TestCreateMediaHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	fake := alextest.NewServer(t, alextest.Options{})
	fake.ThrottleNext(1, "7")
	c, w := newTestClient(t, fake, nil)
	if _, err := c.CreateMedia(context.Background(), sampleInput()); err != nil {
		t.Fatal(err)
	}
	testutil.Check(t, "waits", []time.Duration{7 * time.Second}, w.all())
	if len(fake.Media()) != 1 {
		t.Errorf("%d Media stored", len(fake.Media()))
	}

	// Beyond the cap the client stops instead of retrying early.
	fake.ThrottleNext(1, "3600")
	in := sampleInput()
	in.ImageID = "img-late"
	_, err := c.CreateMedia(context.Background(), in)
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want an *Error", err)
	}
	testutil.Check(t, "status", 429, ae.Status)
	testutil.Check(t, "retryable", true, ae.Retryable)
}

func TestCreateMediaBusinessRuleNotRetried(t *testing.T) {
	t.Parallel()
	fake := alextest.NewServer(t, alextest.Options{})
	in := sampleInput()
	fake.RejectIdentifier(IdentifierValue(in), "Patient is inactive")
	c, _ := newTestClient(t, fake, nil)
	_, err := c.CreateMedia(context.Background(), in)
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != "business-rule" ||
		ae.Diagnostics != "Patient is inactive" || ae.Retryable || !IsPermanent(err) {
		t.Fatalf("err = %#v", err)
	}
	if err.Error() != "alex: create Media: ALEX answered 400 business-rule" {
		t.Errorf("message %q: ALEX's diagnostics must stay out of the loggable text", err.Error())
	}
	if strings.Contains(err.Error(), in.PatientID) {
		t.Error("error leaks the patient id")
	}
	if fake.MediaRequests() != 1 {
		t.Errorf("%d requests, want exactly 1", fake.MediaRequests())
	}
}

func TestCreateMediaForbiddenFacility(t *testing.T) {
	t.Parallel()
	fake := alextest.NewServer(t, alextest.Options{})
	in := sampleInput()
	fake.ForbidFacility(in.FacilityID)
	c, _ := newTestClient(t, fake, nil)
	_, err := c.CreateMedia(context.Background(), in)
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want an *Error", err)
	}
	testutil.Check(t, "status", 403, ae.Status)
	testutil.Check(t, "code", "forbidden", ae.Code)
	testutil.Check(t, "permanent", true, IsPermanent(err))
	if fake.MediaRequests() != 1 {
		t.Errorf("%d requests, want 1", fake.MediaRequests())
	}
}

func TestCreateMediaLostResponse(t *testing.T) {
	t.Parallel()
	fake := alextest.NewServer(t, alextest.Options{})
	fake.LoseNextResponses(1)
	c, w := newTestClient(t, fake, nil)
	res, err := c.CreateMedia(context.Background(), sampleInput())
	if err != nil {
		t.Fatal(err)
	}
	if res.ID != "media-1" {
		t.Errorf("result %+v, want the Media created by the lost attempt", res)
	}
	testutil.Check(t, "media requests", 2, fake.MediaRequests())
	testutil.Check(t, "media stored", 1, len(fake.Media()))
	testutil.Check(t, "waits", 1, len(w.all()))
	// A later commit of the same image is a no-op too.
	res2, err := c.CreateMedia(context.Background(), sampleInput())
	if err != nil {
		t.Errorf("repeat: %v", err)
	}
	testutil.Check(t, "repeat media id", res.ID, res2.ID)
	if len(fake.Media()) != 1 {
		t.Errorf("%d Media stored, want 1", len(fake.Media()))
	}
}

func TestCreateMediaRevokedTokenIsRefreshed(t *testing.T) {
	t.Parallel()
	fake := alextest.NewServer(t, alextest.Options{})
	c, w := newTestClient(t, fake, nil)
	in := sampleInput()
	if _, err := c.CreateMedia(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	fake.RevokeTokens()
	in.ImageID = "img-2"
	if _, err := c.CreateMedia(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	testutil.Check(t, "token requests", 2, fake.TokenRequests())
	testutil.Check(t, "waits", 0, len(w.all()))
}

func TestCreateMediaInvalidToken(t *testing.T) {
	t.Parallel()
	fake := alextest.NewServer(t, alextest.Options{})
	fake.RejectTokens(true)
	c, _ := newTestClient(t, fake, nil)
	_, err := c.CreateMedia(context.Background(), sampleInput())
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 401 || ae.Code != "login" ||
		ae.Diagnostics != "Unauthorized. Access token is missing or invalid." || ae.Retryable {
		t.Fatalf("err = %#v", err)
	}
	// One retry with a fresh token, then give up.
	testutil.Check(t, "media requests", 2, fake.MediaRequests())
	testutil.Check(t, "token requests", 2, fake.TokenRequests())
}

func TestCreateMediaContextCancelled(t *testing.T) {
	t.Parallel()
	fake := alextest.NewServer(t, alextest.Options{})
	c, _ := newTestClient(t, fake, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.CreateMedia(ctx, sampleInput()); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if fake.MediaRequests() != 0 {
		t.Errorf("%d requests after cancel", fake.MediaRequests())
	}
}

func TestCreateMediaInvalidInput(t *testing.T) {
	t.Parallel()
	fake := alextest.NewServer(t, alextest.Options{})
	c, _ := newTestClient(t, fake, nil)
	in := sampleInput()
	in.FacilityID = ""
	if _, err := c.CreateMedia(context.Background(), in); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("err = %v", err)
	}
	if fake.TokenRequests()+fake.MediaRequests() != 0 {
		t.Error("invalid input reached the network")
	}
}

func TestCreateMediaRetriesAttemptTimeout(t *testing.T) {
	t.Parallel()
	fake := alextest.NewServer(t, alextest.Options{})
	fake.StallNext(1)
	c, w := newTestClient(t, fake, func(cfg *Config) { cfg.Timeout = 500 * time.Millisecond })
	res, err := c.CreateMedia(context.Background(), sampleInput())
	if err != nil {
		t.Fatal(err)
	}
	testutil.Check(t, "media id", "media-1", res.ID)
	testutil.Check(t, "media requests", 2, fake.MediaRequests())
	testutil.Check(t, "media stored", 1, len(fake.Media()))
	testutil.Check(t, "waits", 1, len(w.all()))
}
