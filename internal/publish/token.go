package publish

import (
	"bytes"
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/internal/auth"
)

// handoff's Ably tokens are self-verifying (auth.AblyTokens, shared with
// the realtime socket); tokens adapts their errors to Ably's.
type tokenClaims = auth.AblyTokenClaims

// tokenPrefix starts every handoff token.
const tokenPrefix = auth.AblyTokenPrefix

type tokens struct {
	keys *auth.APIKeys
	now  func() time.Time
}

func (ts tokens) shared() auth.AblyTokens { return auth.AblyTokens{Keys: ts.keys, Now: ts.now} }

// issue returns a token for claims, signed with the key's secret.
func (ts tokens) issue(c tokenClaims) (string, error) {
	t, err := ts.shared().Issue(c)
	if errors.Is(err, auth.ErrAblyTokenKey) {
		return "", errInvalidKey
	}
	return t, err
}

// Token failures are 401 with code 40140, the one code on which ably-go
// v1.4.0's REST client renews its token and retries (rest_client.go: it
// compares with ErrTokenErrorUnspecified exactly); ably-js renews on any
// of 40140-40149. Ably itself says 40142 for an expired token, which
// ably-go then only survives if its own clock already saw the expiry.
var (
	errTokenUnrecognised = errorf(http.StatusUnauthorized, ablyproto.CodeTokenError, "token not recognised: request a new one")
	errTokenExpired      = errorf(http.StatusUnauthorized, ablyproto.CodeTokenError, "token expired: request a new one")
)

// verifiedToken is a checked token: its claims, and its capability
// intersected with the key's current one.
type verifiedToken struct {
	tokenClaims
	capability auth.Capability
}

// verify checks a token's signature and expiry. Errors are 401 with
// 40140, so the SDKs request a new token and retry.
func (ts tokens) verify(token string) (verifiedToken, error) {
	t, err := ts.shared().Verify(token)
	switch {
	case errors.Is(err, auth.ErrAblyTokenExpired):
		return verifiedToken{}, errTokenExpired
	case err != nil:
		return verifiedToken{}, errTokenUnrecognised
	}
	return verifiedToken{tokenClaims: t.AblyTokenClaims, capability: t.Cap}, nil
}

// Token limits. Ably's defaults: a token lives 60 minutes unless asked
// otherwise, at most 24 hours. The TokenRequest timestamp must be within
// tokenRequestWindow of the server's clock, which bounds how long a
// captured signed request can be replayed (nonces are not remembered).
const (
	defaultTokenTTL    = time.Hour
	maxTokenTTL        = 24 * time.Hour
	tokenRequestWindow = 10 * time.Minute
	maxTokenRequest    = 16 << 10
)

// requestToken serves POST /keys/{keyName}/requestToken: a TokenRequest
// signed with the key's secret (the MAC is the credential), or an unsigned
// one with HTTP Basic auth as that key.
func (h *Handler) requestToken(w http.ResponseWriter, r *http.Request) {
	keyName := r.PathValue("keyName")
	var req ablyproto.TokenRequest
	body, err := tokenRequestBody(w, r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		writeError(w, r, errorf(http.StatusBadRequest, ablyproto.CodeBadRequest, "the body must be a JSON TokenRequest"))
		return
	}
	if req.KeyName == "" {
		req.KeyName = keyName
	}
	if req.KeyName != keyName {
		writeError(w, r, errorf(http.StatusBadRequest, ablyproto.CodeBadRequest, "the TokenRequest's keyName is not the key in the path"))
		return
	}
	keyCap, err := h.tokenAuthority(r, req)
	if err != nil {
		writeError(w, r, err)
		return
	}
	td, err := h.grant(req, keyCap)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeReply(w, r, http.StatusOK, td, nil)
}

// tokenAuthority checks that the request speaks for the key: its MAC, or
// Basic auth as that key, and returns the key's capability.
func (h *Handler) tokenAuthority(r *http.Request, req ablyproto.TokenRequest) (auth.Capability, error) {
	if req.MAC == "" {
		// Only the key itself may ask unsigned: a token presented here
		// would mint its own successors and never expire.
		name, secret, ok := r.BasicAuth()
		if !ok {
			return auth.Capability{}, errorf(http.StatusUnauthorized, ablyproto.CodeUnauthorized,
				"an unsigned TokenRequest needs HTTP Basic auth as its key")
		}
		if h.keys == nil || name != req.KeyName {
			return auth.Capability{}, errInvalidKey
		}
		c, ok := h.keys.Authenticate(name, secret)
		if !ok {
			return auth.Capability{}, errInvalidKey
		}
		return c, nil
	}
	var text bytes.Buffer
	for _, f := range []string{req.KeyName, req.TTL.String(), req.Capability, req.ClientID, req.Timestamp.String(), req.Nonce} {
		text.WriteString(f)
		text.WriteByte('\n')
	}
	got, err := base64.StdEncoding.DecodeString(req.MAC)
	if h.keys == nil || err != nil {
		return auth.Capability{}, errorf(http.StatusUnauthorized, ablyproto.CodeInvalidCredentials, "invalid TokenRequest MAC")
	}
	want, c, ok := h.keys.Sign(req.KeyName, text.Bytes())
	if !ok || !hmac.Equal(got, want) {
		return auth.Capability{}, errorf(http.StatusUnauthorized, ablyproto.CodeInvalidCredentials, "invalid TokenRequest MAC")
	}
	ts, err := req.Timestamp.Int64()
	if err != nil || absDuration(h.cfg.Now().Sub(time.UnixMilli(ts))) > tokenRequestWindow {
		return auth.Capability{}, errorf(http.StatusUnauthorized, ablyproto.CodeTimestampNotCurrent,
			"the TokenRequest timestamp is more than %s from the server's clock", tokenRequestWindow)
	}
	return c, nil
}

// grant issues the token: its capability is the requested one (the key's
// when none is asked for) intersected with the key's.
func (h *Handler) grant(req ablyproto.TokenRequest, keyCap auth.Capability) (ablyproto.TokenDetails, error) {
	ttl := defaultTokenTTL
	if req.TTL != "" {
		ms, err := strconv.ParseInt(req.TTL.String(), 10, 64)
		if err != nil || ms <= 0 || ms > maxTokenTTL.Milliseconds() {
			return ablyproto.TokenDetails{}, errorf(http.StatusBadRequest, ablyproto.CodeBadRequest,
				"ttl must be a whole number of milliseconds from 1 to %d", maxTokenTTL.Milliseconds())
		}
		ttl = time.Duration(ms) * time.Millisecond
	}
	granted := keyCap
	if req.Capability != "" {
		asked, err := auth.ParseCapability(req.Capability)
		if err != nil {
			return ablyproto.TokenDetails{}, errorf(http.StatusBadRequest, ablyproto.CodeBadRequest, "invalid capability: %v", err)
		}
		granted = asked.Intersect(keyCap)
	}
	if granted.IsZero() {
		return ablyproto.TokenDetails{}, errorf(http.StatusUnauthorized, ablyproto.CodeCapability,
			"the requested capability is not within the key's capability")
	}
	now := h.cfg.Now()
	c := tokenClaims{KeyName: req.KeyName, Issued: now.UnixMilli(), Expires: now.Add(ttl).UnixMilli(),
		Capability: granted.String(), ClientID: req.ClientID}
	token, err := h.tokens.issue(c)
	if err != nil {
		return ablyproto.TokenDetails{}, err
	}
	return ablyproto.TokenDetails{Token: token, KeyName: c.KeyName, Issued: c.Issued, Expires: c.Expires,
		Capability: c.Capability, ClientID: c.ClientID}, nil
}

// tokenRequestBody reads a TokenRequest body as JSON text: ably-go sends it
// as msgpack unless told to use JSON; its integers (ttl, timestamp) stay
// integers, so the MAC text is unchanged.
func tokenRequestBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	mp := msgpackBody(r)
	if !jsonBody(r) && !mp {
		return nil, errMsgpack
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxTokenRequest))
	if err == nil && mp {
		body, err = ablyproto.MsgpackToJSON(body)
	}
	if err != nil {
		return nil, errorf(http.StatusBadRequest, ablyproto.CodeBadRequest, "the body must be a JSON or msgpack TokenRequest")
	}
	return body, nil
}

// msgpackBody reports whether the request body is labelled msgpack. The
// labels the SDKs send are recognised without parsing, as in jsonBody:
// this runs on every publish.
func msgpackBody(r *http.Request) bool {
	switch ct := r.Header.Get("Content-Type"); ct {
	case msgpackType:
		return true
	case "", "application/json":
		return false
	default:
		mt, _, err := mime.ParseMediaType(ct)
		return err == nil && mt == msgpackType
	}
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
