// Package alextest is a strict in-process fake of Medtech's ALEX FHIR API
// and its Azure AD token endpoint, for tests of anything that files Media.
//
// It checks what the real service checks (OAuth2 client credentials, bearer
// token, mt-facilityid, FHIR content type, R4 Media structure, mandatory
// identifier) and answers the way it answers (OperationOutcome errors, a
// non-FHIR 401 for bad tokens, conditional create). Fault hooks make it
// fail on demand. It does not import package alex, so alex's own
// in-package tests can use it.
package alextest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options configure a Server. Zero values get the defaults noted.
type Options struct {
	ClientID     string        // default "alextest-client"
	ClientSecret string        // default "alextest-secret"
	Scope        string        // default "api://alextest/.default"
	Facilities   []string      // mt-facilityid values allowed; empty allows any
	TokenTTL     time.Duration // expires_in of issued tokens; default 1h
}

// TokenFault makes the token endpoint fail.
type TokenFault int

// Token endpoint behaviours.
const (
	TokenOK             TokenFault = iota
	TokenUnavailable               // answer 503
	TokenDropConnection            // close the connection without answering
)

// StoredMedia is a Media the fake accepted.
type StoredMedia struct {
	ID         string
	FacilityID string      // the mt-facilityid it was posted with
	Header     http.Header // request headers of the creating POST
	Resource   Media       // as posted, plus id
	Data       []byte      // content.data decoded
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	opts Options
	srv  *httptest.Server

	mu            sync.Mutex
	tokens        map[string]time.Time // access token → expiry
	tokenRequests int
	mediaRequests int
	media         []StoredMedia
	tokenFault    TokenFault
	rejectTokens  bool
	failNext      []fault
	loseNext      int
	rejectIDs     map[string]string // identifier value → diagnostics
	forbidden     map[string]bool   // facility ids
	matchReply    MatchReply
}

// MatchReply is how the fake answers a conditional create that matched a
// stored Media. FHIR lets a server answer 200 with or without the resource;
// how ALEX answers is not yet known, so clients are tested against both.
type MatchReply int

// Answers to a matched conditional create.
const (
	// MatchBody answers 200 with the matched Media and no Location.
	MatchBody MatchReply = iota
	// MatchLocation answers 200 with the matched Media's Location and an
	// OperationOutcome body, so the client must read the Media itself.
	MatchLocation
)

type fault struct {
	status     int
	retryAfter string
	stall      bool // answer nothing until the client gives up
}

// NewServer starts a fake closed when t ends.
func NewServer(t testing.TB, opts Options) *Server {
	t.Helper()
	opts.ClientID = or(opts.ClientID, "alextest-client")
	opts.ClientSecret = or(opts.ClientSecret, "alextest-secret")
	opts.Scope = or(opts.Scope, "api://alextest/.default")
	if opts.TokenTTL == 0 {
		opts.TokenTTL = time.Hour
	}
	s := &Server{opts: opts, tokens: map[string]time.Time{},
		rejectIDs: map[string]string{}, forbidden: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth2/v2.0/token", s.handleToken)
	mux.HandleFunc("POST /FHIR/Media", s.handleMedia)
	mux.HandleFunc("GET /FHIR/Media/{id}", s.handleRead)
	mux.HandleFunc("/FHIR/", func(w http.ResponseWriter, r *http.Request) {
		writeOutcome(w, http.StatusNotFound, "not-supported", "alextest only implements POST /Media")
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// URL is the FHIR base, like https://alexapi.medtechglobal.com/FHIR.
func (s *Server) URL() string { return s.srv.URL + "/FHIR" }

// TokenURL is the OAuth2 token endpoint.
func (s *Server) TokenURL() string { return s.srv.URL + "/oauth2/v2.0/token" }

// ClientID, ClientSecret and Scope are the credentials the fake accepts.
func (s *Server) ClientID() string     { return s.opts.ClientID }
func (s *Server) ClientSecret() string { return s.opts.ClientSecret }
func (s *Server) Scope() string        { return s.opts.Scope }

// TokenRequests counts requests to the token endpoint, failed ones included.
func (s *Server) TokenRequests() int { s.mu.Lock(); defer s.mu.Unlock(); return s.tokenRequests }

// MediaRequests counts POST /Media requests, rejected ones included.
func (s *Server) MediaRequests() int { s.mu.Lock(); defer s.mu.Unlock(); return s.mediaRequests }

// Media returns the accepted Media, oldest first.
func (s *Server) Media() []StoredMedia {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]StoredMedia(nil), s.media...)
}

// SetTokenFault makes the token endpoint fail (or recover with TokenOK).
func (s *Server) SetTokenFault(f TokenFault) { s.mu.Lock(); s.tokenFault = f; s.mu.Unlock() }

// RevokeTokens invalidates every token issued so far.
func (s *Server) RevokeTokens() { s.mu.Lock(); clear(s.tokens); s.mu.Unlock() }

// RejectTokens makes every FHIR call answer the gateway's 401 while on.
func (s *Server) RejectTokens(on bool) { s.mu.Lock(); s.rejectTokens = on; s.mu.Unlock() }

// FailNext makes the next n Media calls answer status (e.g. 500) with an
// OperationOutcome, before looking at the body.
func (s *Server) FailNext(n, status int) { s.addFaults(n, fault{status: status}) }

// ThrottleNext makes the next n Media calls answer 429 with Retry-After.
func (s *Server) ThrottleNext(n int, retryAfter string) {
	s.addFaults(n, fault{status: http.StatusTooManyRequests, retryAfter: retryAfter})
}

func (s *Server) addFaults(n int, f fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failNext = append(s.failNext, f)
	}
}

// StallNext makes the next n Media calls hang, unanswered, until the
// client gives up (its timeout or cancellation).
func (s *Server) StallNext(n int) { s.addFaults(n, fault{stall: true}) }

// LoseNextResponses makes the next n valid creates store the Media and then
// close the connection without answering, like a response lost in transit.
func (s *Server) LoseNextResponses(n int) { s.mu.Lock(); s.loseNext += n; s.mu.Unlock() }

// RejectIdentifier makes creates of the Media with this identifier value
// answer 400 business-rule with diagnostics.
func (s *Server) RejectIdentifier(value, diagnostics string) {
	s.mu.Lock()
	s.rejectIDs[value] = diagnostics
	s.mu.Unlock()
}

// SetMatchReply sets how a matched conditional create is answered.
func (s *Server) SetMatchReply(m MatchReply) { s.mu.Lock(); s.matchReply = m; s.mu.Unlock() }

// AddMedia stores sm as if it had been created earlier (by anyone, for any
// patient), so a conditional create can match it. It returns sm with its
// assigned id.
func (s *Server) AddMedia(sm StoredMedia) StoredMedia {
	s.mu.Lock()
	defer s.mu.Unlock()
	sm.ID = fmt.Sprintf("media-%d", len(s.media)+1)
	sm.Resource.ID = sm.ID
	s.media = append(s.media, sm)
	return sm
}

// ForbidFacility makes calls for this mt-facilityid answer 403 forbidden.
func (s *Server) ForbidFacility(id string) { s.mu.Lock(); s.forbidden[id] = true; s.mu.Unlock() }

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.tokenRequests++
	f := s.tokenFault
	s.mu.Unlock()
	switch f {
	case TokenUnavailable:
		writeJSON(w, http.StatusServiceUnavailable, "application/json",
			map[string]string{"error": "temporarily_unavailable", "error_description": "alextest: token endpoint down"})
		return
	case TokenDropConnection:
		dropConnection(w)
		return
	}
	if status, code, desc := s.checkTokenRequest(r); status != 0 {
		writeJSON(w, status, "application/json", map[string]string{"error": code, "error_description": desc})
		return
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	tok := "alextest-" + hex.EncodeToString(b[:])
	s.mu.Lock()
	s.tokens[tok] = time.Now().Add(s.opts.TokenTTL)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, "application/json", map[string]any{
		"access_token": tok, "token_type": "Bearer", "expires_in": int(s.opts.TokenTTL.Seconds())})
}

// checkTokenRequest validates a client-credentials request as Azure AD
// does; credentials may come as Basic auth or form fields, not both.
func (s *Server) checkTokenRequest(r *http.Request) (status int, code, desc string) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		return 400, "invalid_request", "body must be application/x-www-form-urlencoded"
	}
	if err := r.ParseForm(); err != nil {
		return 400, "invalid_request", "unparsable form"
	}
	id, secret, basic := r.BasicAuth()
	if basic && (r.PostForm.Has("client_id") || r.PostForm.Has("client_secret")) {
		return 400, "invalid_request", "client credentials sent twice"
	}
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	switch {
	case r.PostForm.Get("grant_type") != "client_credentials":
		return 400, "unsupported_grant_type", "only client_credentials is supported"
	case id != s.opts.ClientID || secret != s.opts.ClientSecret:
		return 401, "invalid_client", "AADSTS7000215: Invalid client secret provided."
	case r.PostForm.Get("scope") != s.opts.Scope:
		return 400, "invalid_scope", "AADSTS70011: The provided value for scope is not valid."
	}
	return 0, "", ""
}

func (s *Server) handleMedia(w http.ResponseWriter, r *http.Request) {
	facility, f, ok := s.admit(w, r)
	if !ok {
		return
	}
	if f != nil {
		injectFault(w, r, *f)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<20))
	if err != nil {
		writeOutcome(w, http.StatusRequestEntityTooLarge, "too-long", "request body too large")
		return
	}
	m, data, err := decodeMedia(body)
	if err != nil {
		writeOutcome(w, http.StatusBadRequest, err.(*invalid).code, err.Error())
		return
	}
	match, err := conditionalMatch(r.Header.Get("If-None-Exist"))
	if err != nil {
		writeOutcome(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	if diag, rejected := s.rejection(m.Identifier); rejected {
		writeOutcome(w, http.StatusBadRequest, "business-rule", diag)
		return
	}
	sm, created, lose := s.store(match, StoredMedia{
		FacilityID: facility, Header: r.Header.Clone(), Resource: *m, Data: data})
	s.mu.Lock()
	matchReply := s.matchReply
	s.mu.Unlock()
	switch {
	case !created && matchReply == MatchLocation:
		w.Header().Set("Location", s.URL()+"/Media/"+sm.ID+"/_history/1")
		writeOutcome(w, http.StatusOK, "informational", "Matched an existing resource; nothing created")
	case !created:
		// FHIR: one match means 200 OK and nothing created. The fake sends
		// the existing resource but no Location, so clients are tested
		// reading the id from the body.
		writeJSON(w, http.StatusOK, "application/fhir+json", sm.Resource)
	case lose:
		dropConnection(w)
	default:
		w.Header().Set("Location", s.URL()+"/Media/"+sm.ID+"/_history/1")
		writeJSON(w, http.StatusCreated, "application/fhir+json", sm.Resource)
	}
}

// handleRead answers GET /Media/{id}, after the same token and facility
// checks as a create.
func (s *Server) handleRead(w http.ResponseWriter, r *http.Request) {
	_, f, ok := s.admitRead(w, r)
	if !ok {
		return
	}
	if f != nil {
		injectFault(w, r, *f)
		return
	}
	s.mu.Lock()
	var found *Media
	for i := range s.media {
		if s.media[i].ID == r.PathValue("id") {
			m := s.media[i].Resource
			found = &m
		}
	}
	s.mu.Unlock()
	if found == nil {
		writeOutcome(w, http.StatusNotFound, "not-found", "No Media with this id")
		return
	}
	writeJSON(w, http.StatusOK, "application/fhir+json", found)
}

// admitRead is admit for a request without a body: it counts nothing as
// a Media request and needs no content type.
func (s *Server) admitRead(w http.ResponseWriter, r *http.Request) (string, *fault, bool) {
	r.Header.Set("Content-Type", "application/fhir+json")
	s.mu.Lock()
	s.mediaRequests--
	s.mu.Unlock()
	return s.admit(w, r)
}

// rejection returns the diagnostics of a RejectIdentifier matching ids.
func (s *Server) rejection(ids []Identifier) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if diag, ok := s.rejectIDs[id.Value]; ok {
			return diag, true
		}
	}
	return "", false
}

// store saves sm, unless match names a stored Media, which it returns
// instead (conditional create). lose reports a pending LoseNextResponses.
func (s *Server) store(match *Identifier, sm StoredMedia) (got StoredMedia, created, lose bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.find(match); e != nil {
		return *e, false, false
	}
	sm.ID = fmt.Sprintf("media-%d", len(s.media)+1)
	sm.Resource.ID = sm.ID
	s.media = append(s.media, sm)
	lose = s.loseNext > 0
	if lose {
		s.loseNext--
	}
	return sm, true, lose
}

// admit applies the checks that come before the body: token, facility,
// content type. It answers when it refuses, and pops the next injected
// fault, which the caller acts on outside the lock.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) (facility string, f *fault, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mediaRequests++
	tok, hasBearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	exp, known := s.tokens[tok]
	facility = r.Header.Get("mt-facilityid")
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case !hasBearer || !known || time.Now().After(exp) || s.rejectTokens:
		writeJSON(w, http.StatusUnauthorized, "application/json", map[string]any{
			"statusCode": 401, "message": "Unauthorized. Access token is missing or invalid."})
	case facility == "":
		writeOutcome(w, http.StatusBadRequest, "required", "The mt-facilityid header is missing")
	case s.forbidden[facility] || len(s.opts.Facilities) > 0 && !contains(s.opts.Facilities, facility):
		writeOutcome(w, http.StatusForbidden, "forbidden", "The application is not authorised for this facility")
	case ct != "application/fhir+json":
		writeOutcome(w, http.StatusUnsupportedMediaType, "not-supported", "Content-Type must be application/fhir+json")
	case len(s.failNext) > 0:
		next := s.failNext[0]
		s.failNext = s.failNext[1:]
		f = &next
		return facility, f, true
	default:
		return facility, nil, true
	}
	return "", nil, false
}

func injectFault(w http.ResponseWriter, r *http.Request, f fault) {
	if f.stall {
		// net/http notices the client hanging up only once the body is read.
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
		return
	}
	if f.retryAfter != "" {
		w.Header().Set("Retry-After", f.retryAfter)
	}
	code := "exception"
	if f.status == http.StatusTooManyRequests {
		code = "throttled"
	}
	writeOutcome(w, f.status, code, "alextest: injected failure")
}

// conditionalMatch parses If-None-Exist ("identifier=[system|]value").
func conditionalMatch(h string) (*Identifier, error) {
	if h == "" {
		return nil, nil
	}
	q, err := url.ParseQuery(h)
	if err != nil || len(q) != 1 || len(q["identifier"]) != 1 {
		return nil, fmt.Errorf("If-None-Exist must be identifier=[system|]value")
	}
	id := &Identifier{Value: q.Get("identifier")}
	if sys, v, ok := strings.Cut(id.Value, "|"); ok {
		id.System, id.Value = sys, v
	}
	return id, nil
}

// find returns the stored Media matching want, if any. s.mu must be held.
func (s *Server) find(want *Identifier) *StoredMedia {
	if want == nil {
		return nil
	}
	for i := range s.media {
		for _, id := range s.media[i].Resource.Identifier {
			if id.Value == want.Value && (want.System == "" || id.System == want.System) {
				return &s.media[i]
			}
		}
	}
	return nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func writeOutcome(w http.ResponseWriter, status int, code, diagnostics string) {
	writeJSON(w, status, "application/fhir+json", map[string]any{
		"resourceType": "OperationOutcome",
		"issue":        []map[string]string{{"severity": "error", "code": code, "diagnostics": diagnostics}},
	})
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// dropConnection closes the connection without a response.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic("alextest: cannot hijack connection: " + err.Error())
	}
	_ = conn.Close()
}
