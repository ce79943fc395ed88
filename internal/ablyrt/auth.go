package ablyrt

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/internal/auth"
)

// identity is what a connection's credentials establish.
type identity struct {
	keyName  string
	clientID string
	cap      auth.Capability
	expires  time.Time // zero for an API key
	// wildcard: a "*" token used without a clientId (conn.wildcard).
	wildcard bool
	// anyClient says the credentials may act for any clientId (an API key,
	// or a token for "*", without a clientId parameter): presence items
	// then name their own clientId (Ably's enterClient).
	anyClient bool
}

// credentials reads the connect request's credentials: key= or HTTP
// Basic (an API key), or access_token= or a Bearer header (a handoff
// token from requestToken). The clientId parameter names the client with
// a key; with a token it must match the token's.
func (c *conn) credentials(r *http.Request, q url.Values) (identity, *ablyproto.ErrorInfo) {
	key := q.Get("key")
	if name, secret, ok := r.BasicAuth(); ok && key == "" {
		key = name + ":" + secret
	}
	if key != "" {
		name, secret, _ := strings.Cut(key, ":")
		if c.s.keys == nil {
			return identity{}, errBadKey
		}
		cp, ok := c.s.keys.Authenticate(name, secret)
		if !ok {
			return identity{}, errBadKey
		}
		return identity{keyName: name, clientID: q.Get("clientId"), cap: cp, anyClient: q.Get("clientId") == ""}, nil
	}
	token := q.Get("access_token")
	if token == "" {
		if scheme, v, _ := strings.Cut(r.Header.Get("Authorization"), " "); strings.EqualFold(scheme, "Bearer") {
			token = v
			if raw, err := base64.StdEncoding.DecodeString(v); err == nil {
				token = string(raw)
			}
		}
	}
	if token == "" {
		return identity{}, errorInfo(401, ablyproto.CodeUnauthorized, "credentials are required: key=, access_token= or HTTP Basic")
	}
	id, e := c.verifyToken(token)
	if e != nil {
		return identity{}, e
	}
	if p := q.Get("clientId"); p != "" && id.clientID != "*" && p != id.clientID {
		return identity{}, errorInfo(401, ablyproto.CodeClientIDMismatch, "the clientId parameter does not match the token's clientId")
	}
	if id.clientID == "*" {
		id.clientID = q.Get("clientId")
		id.wildcard = id.clientID == ""
		id.anyClient = id.clientID == ""
	}
	return id, nil
}

var errBadKey = errorInfo(401, ablyproto.CodeInvalidCredentials, "invalid credentials: unknown API key or wrong secret")

// verifyToken checks a handoff token. Errors are token errors (401,
// 40140-40149), on which the SDKs renew their token and retry.
func (c *conn) verifyToken(token string) (identity, *ablyproto.ErrorInfo) {
	t, err := c.s.tokens.Verify(token)
	switch {
	case errors.Is(err, auth.ErrAblyTokenExpired):
		return identity{}, errTokenExpired
	case err != nil:
		return identity{}, errorInfo(401, ablyproto.CodeTokenError, "token not recognised: request a new one")
	}
	return identity{keyName: t.KeyName, clientID: t.ClientID, cap: t.Cap, expires: t.ExpiresAt()}, nil
}

// connect authenticates, resumes or starts the connection, and sends
// CONNECTED. It reports false after sending a fatal ERROR.
func (c *conn) connect(r *http.Request, q url.Values) bool {
	id, e := c.credentials(r, q)
	if e != nil {
		c.fatal(e)
		return false
	}
	c.adopt(id)
	var resumeErr *ablyproto.ErrorInfo
	key := q.Get("resume")
	if key == "" {
		key = q.Get("recover")
	}
	if key != "" {
		switch connID, code := c.resumable(key, q.Get("resume") == ""); code {
		case 0:
			c.id, c.mayResend, c.resumed = connID, true, true
		case ablyproto.CodeInvalidConnectionKey:
			resumeErr = errorInfo(400, code, "Unable to recover connection (invalid connection key)")
		default:
			resumeErr = errorInfo(400, ablyproto.CodeConnectionExpired, "Unable to recover connection (connection expired)")
		}
	}
	if c.id == "" {
		c.id = newID()
	}
	// The key is made before the claim: from the moment this transport
	// holds the id, a resume with any other key of it is superseded.
	connKey := c.connectionKey()
	if old := c.s.claimID(c); old != nil {
		// The client left that transport: stop it, and let its last
		// publish settle so a resend is answered from the store.
		old.end(nil, true)
		_ = old.ws.CloseNow()
		select {
		case <-old.done:
		case <-time.After(opTimeout):
		}
	}
	ctx, cancel := opContext()
	err := c.s.store.Hold(ctx, c.id, c.nonce(), 2*c.s.cfg.ConnectionStateTTL)
	cancel()
	if err != nil {
		c.fatal(errorInfo(503, ablyproto.CodeUnavailable, "the connection state store is unavailable; retry"))
		return false
	}
	c.claimPresence()
	c.sendConnected(resumeErr, connKey)
	return true
}

// resumable checks a connectionKey: signed for this connection's API key,
// its connection still resumable in the store, and not superseded. recover
// is true for `recover=` (a new client instance continuing the connection)
// rather than `resume=` (the same instance, on a new transport).
func (c *conn) resumable(key string, recover bool) (connID string, code int) {
	connID, rest, ok := strings.Cut(key, "!")
	nonce, sig, ok2 := strings.Cut(rest, "-")
	got, err := base64.RawURLEncoding.DecodeString(sig)
	// Not a key this server could have issued at all: Ably's 80018.
	if !ok || !ok2 || connID == "" || len(key) > 128 || err != nil || len(got) != connKeyMACLen {
		return "", ablyproto.CodeInvalidConnectionKey
	}
	want, ok := c.keyMAC(connID, nonce)
	if !ok || !hmac.Equal(got, want) {
		return "", ablyproto.CodeConnectionExpired
	}
	ctx, cancel := opContext()
	defer cancel()
	holder, alive, err := c.s.store.Holder(ctx, connID)
	if err != nil || !alive {
		return "", ablyproto.CodeConnectionExpired
	}
	switch {
	case c.s.superseded(connID, nonce), holder != "" && holder != nonce:
		// A key of a transport that another client's recover (or a later
		// resume) took over, on this node or another, is spent, as on
		// Ably, so two clients holding keys of one connection do not take
		// it from each other in turn.
		return "", ablyproto.CodeConnectionExpired
	case holder != "" && recover && !c.s.holdsLocally(connID):
		// A transport on another node still holds the connection, and this
		// node cannot end it. A recover here would leave two clients on one
		// connection id, their msgSerials and message ids colliding: the
		// recovering client gets a new connection instead (80008), as when
		// the connection expired. A resume is the same client, whose old
		// transport it no longer uses.
		return "", ablyproto.CodeConnectionExpired
	}
	return connID, 0
}

// connKeyMACLen is the length of a connection key's signature.
const connKeyMACLen = 16

// keyMAC signs a connection key with the connection's API key secret, so
// any node with the same keys can check it and no other key can resume
// the connection.
func (c *conn) keyMAC(connID, nonce string) ([]byte, bool) {
	if c.s.keys == nil {
		return nil, false
	}
	mac, _, ok := c.s.keys.Sign(c.keyName, []byte("handoff-connection-key\n"+connID+"!"+nonce))
	if !ok {
		return nil, false
	}
	return mac[:connKeyMACLen], true
}

// renewKey issues a new connectionKey on this transport (after an in-band
// AUTH) and records its nonce as the connection's holder. A store that
// misses it refuses the new key's resume on another node with 80008 (the
// client is told and gets a new connection); nothing is lost.
func (c *conn) renewKey() string {
	c.holdMu.Lock()
	defer c.holdMu.Unlock()
	key := c.connectionKey()
	ctx, cancel := opContext()
	defer cancel()
	if err := c.s.store.Hold(ctx, c.id, c.nonce(), 2*c.s.cfg.ConnectionStateTTL); err != nil {
		c.s.log.Warn().Err(err).Str("conn", c.id).Msg("ably connection holder not recorded after AUTH")
	}
	return key
}

// nonce is the nonce of the connectionKey this transport issued last: what
// the ConnStore records as the connection's holder.
func (c *conn) nonce() string {
	if n := c.keyNonce.Load(); n != nil {
		return *n
	}
	return ""
}

// connectionKey returns a fresh key for this transport: it changes on
// every CONNECTED, as the SDKs expect (RTN15e).
func (c *conn) connectionKey() string {
	nonce := newID()
	c.keyNonce.Store(&nonce)
	mac, _ := c.keyMAC(c.id, nonce)
	return c.id + "!" + nonce + "-" + base64.RawURLEncoding.EncodeToString(mac)
}

func (c *conn) sendConnected(e *ablyproto.ErrorInfo, key string) {
	cfg := c.s.cfg
	c.send(&ablyproto.ProtocolMessage{Action: ablyproto.ActionConnected, ConnectionID: c.id, ConnectionKey: key, Error: e,
		ConnectionDetails: &ablyproto.ConnectionDetails{
			ClientID: c.connectedClientID(), ConnectionKey: key, MaxMessageSize: cfg.MaxMessageSize, MaxFrameSize: cfg.MaxFrameBytes,
			MaxInboundRate: maxInboundRate, ConnectionStateTTL: cfg.ConnectionStateTTL.Milliseconds(),
			MaxIdleInterval: cfg.MaxIdleInterval.Milliseconds(), ServerID: cfg.ServerID,
		}})
}

// connectedClientID is the clientId CONNECTED announces: the
// connection's, or "*" for a wildcard token used without one, which
// ably-go then lets messages name any clientId (RTL6g) while its
// Auth.ClientID stays "".
func (c *conn) connectedClientID() string {
	if c.clientID == "" && c.wildcard {
		return "*"
	}
	return c.clientID
}

// adopt makes id the connection's credentials and arms the token's
// expiry. Ahead of it the server sends AUTH (RTN22), on which ably-js
// renews in band; at expiry a connection still on the old token is sent
// DISCONNECTED 40142, on which both SDKs renew and resume. (ably-go 1.4.0
// answers AUTH with an authorize on an already-cancelled context, so it
// usually renews on the DISCONNECTED.)
func (c *conn) adopt(id identity) {
	c.keyName, c.clientID, c.cap, c.wildcard, c.anyClient = id.keyName, id.clientID, id.cap, id.wildcard, id.anyClient
	c.setPrefix()
	for _, t := range []*time.Timer{c.expiry, c.authAsk} {
		if t != nil {
			t.Stop()
		}
	}
	c.expiry, c.authAsk = nil, nil
	if id.expires.IsZero() {
		return
	}
	left := id.expires.Sub(c.s.cfg.Now())
	ahead := min(authAhead, left/4)
	c.authAsk = time.AfterFunc(left-ahead, func() { c.send(&ablyproto.ProtocolMessage{Action: ablyproto.ActionAuth}) })
	c.expiry = time.AfterFunc(left, func() { c.disconnect(errTokenExpired) })
}

// authAhead is how long before a token's expiry the server asks for a new
// one (at most a quarter of the token's remaining life).
const authAhead = 30 * time.Second

// reauth handles the client's AUTH with a new token: the connection keeps
// its id and gets a fresh CONNECTED (the SDKs' "update").
func (c *conn) reauth(pm *ablyproto.ProtocolMessage) {
	if pm.Auth == nil || pm.Auth.AccessToken == "" {
		c.fatal(errorInfo(400, ablyproto.CodeBadRequest, "AUTH needs auth.accessToken"))
		return
	}
	id, e := c.verifyToken(pm.Auth.AccessToken)
	switch {
	case e == errTokenExpired:
		c.fatal(e) // a token error: the SDK renews once more and reconnects
		return
	case e != nil:
		// A failed in-band AUTH fails the connection (RTC8a2). A token
		// error (401, 40140-40149) would instead make the SDKs renew and
		// send the same bad token source again, so it is 40101.
		c.fatal(errorInfo(401, ablyproto.CodeInvalidCredentials, "invalid credentials: the new token is not one this server issued"))
		return
	case id.keyName != c.keyName:
		c.fatal(errorInfo(401, ablyproto.CodeInvalidCredentials, "the new token is for another API key"))
		return
	case id.clientID != "*" && id.clientID != c.clientID:
		c.fatal(errorInfo(401, ablyproto.CodeClientIDMismatch, "the new token is for another clientId"))
		return
	}
	if id.clientID == "*" {
		id.clientID = c.clientID
		id.wildcard = id.clientID == ""
		id.anyClient = id.clientID == ""
	}
	c.adopt(id)
	failed := c.narrowChannels()
	c.sendConnected(nil, c.renewKey())
	for _, name := range failed {
		c.send(&ablyproto.ProtocolMessage{Action: ablyproto.ActionError, Channel: name, Error: errCapabilityNarrowed})
	}
}

var errCapabilityNarrowed = errorInfo(401, ablyproto.CodeCapability, "the new token's capability no longer allows this channel")

// narrowChannels stops every attached channel the capability just adopted
// no longer allows (RTC8a1): one whose granted modes are all gone, or one
// that loses subscribe, since delivering to it would exceed the
// capability and quietly stopping would leave an attached channel that
// never receives. Their subscriptions end here, before the CONNECTED that
// completes the AUTH, so nothing the new capability forbids is delivered
// after it; the caller then fails each with a channel ERROR 40160, as Ably
// does (the SDKs move the channel to FAILED). A channel that keeps its
// modes stays attached and keeps delivering; one that only loses publish
// stays attached too, and its publishes are NACKed on the capability.
func (c *conn) narrowChannels() []string {
	var failed []string
	for name, cs := range c.channels {
		kept := modes(c.cap, name, cs.flags)
		if kept != 0 && (kept&ablyproto.FlagSubscribe != 0 || cs.flags&ablyproto.FlagSubscribe == 0) {
			continue
		}
		cs.stop()
		delete(c.channels, name)
		failed = append(failed, name)
	}
	slices.Sort(failed)
	return failed
}

// newID returns 16 random hex characters.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
