package realtime

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/httpx"
	"github.com/handoff-health/handoff/protocol"
)

// authenticate establishes the socket's claims from the token given at the
// upgrade or, failing that, from a first auth frame. On failure it has
// started the close (4001 or 4009) and reports false.
func (c *conn) authenticate(token string) bool {
	if token == "" {
		var ok bool
		if token, ok = c.readAuthFrame(); !ok {
			return false
		}
	}
	if c.isPhoneToken(token) {
		return c.authenticatePhone(token)
	}
	claims, err := c.s.verifier.Verify(token)
	switch {
	case errors.Is(err, auth.ErrExpiredToken):
		c.closeWith(CloseTokenExpired, "token expired")
		return false
	case err != nil:
		c.closeWith(CloseUnauthorized, "invalid token")
		return false
	case !claims.Expires.After(time.Now()):
		// Inside the verifier's clock-skew leeway: usable for nothing.
		c.closeWith(CloseTokenExpired, "token expired")
		return false
	}
	c.claims = claims
	c.armExpiry()
	return true
}

// readAuthFrame waits up to AuthTimeout for the first frame, which must be
// an auth frame. The timeout is a timer rather than a read deadline
// because coder/websocket drops the socket without a close frame when a
// read's context ends, and the client deserves to see 4001.
func (c *conn) readAuthFrame() (string, bool) {
	t := time.AfterFunc(c.s.cfg.AuthTimeout, func() {
		c.closeWith(CloseUnauthorized, "no auth frame in time")
	})
	defer t.Stop()
	typ, b, err := c.ws.Read(context.Background())
	if err != nil {
		c.peerClosed(err)
		return "", false
	}
	var f clientFrame
	var ferr *frameError
	if typ == websocket.MessageText {
		f, ferr = decodeFrame(b)
	}
	if typ != websocket.MessageText || ferr != nil || f.Type != protocol.OpAuth {
		c.s.metrics.framesIn["invalid"].Inc()
		c.closeWith(CloseUnauthorized, "first frame must be auth")
		return "", false
	}
	c.s.metrics.framesIn[string(protocol.OpAuth)].Inc()
	return f.Token, true
}

// armExpiry (re)starts the timer that closes the socket with 4009 when the
// current token expires; a client keeps the socket by sending a fresh
// token in an auth frame before then.
func (c *conn) armExpiry() {
	if c.expiry != nil {
		c.expiry.Stop()
	}
	c.expiry = time.AfterFunc(time.Until(c.claims.Expires), func() {
		c.closeWith(CloseTokenExpired, "token expired")
	})
}

// reauth replaces the socket's token. A token that fails verification is
// refused with an error frame and the old one stays in force until it
// expires; a valid token for someone else closes the socket with 4003,
// because its subscriptions were authorized for the old principal.
func (c *conn) reauth(f clientFrame) {
	if c.phone != nil {
		c.reauthPhone(f)
		return
	}
	claims, err := c.s.verifier.Verify(f.Token)
	switch {
	case errors.Is(err, auth.ErrExpiredToken), err == nil && !claims.Expires.After(time.Now()):
		c.sendError(f.ID, "", protocol.CodeTokenExpired, "token expired")
		return
	case err != nil:
		c.sendError(f.ID, "", protocol.CodeUnauthorized, "invalid token")
		return
	case claims.Facility != c.claims.Facility || claims.Provider != c.claims.Provider:
		c.closeWith(CloseForbidden, "token belongs to another principal")
		return
	}
	c.claims = claims
	c.armExpiry()
	c.send(protocol.ServerFrame{Type: protocol.FrameAuthenticated, Ref: f.ID, ExpiresAt: &claims.Expires})
}

// isPhoneToken tells a phone's mobile token (opaque base64url) from a
// desktop JWT (three dot-separated parts) when the server takes phones.
func (c *conn) isPhoneToken(token string) bool {
	return c.s.cfg.Phone != nil && strings.Count(token, ".") != 2
}

// authenticatePhone establishes the socket as a phone's: it may enter
// presence on its session's channel until the grant expires (4009).
func (c *conn) authenticatePhone(token string) bool {
	ctx, cancel := opContext()
	defer cancel()
	g, err := c.s.cfg.Phone(ctx, token)
	switch {
	case httpx.IsUnavailable(err):
		c.closeWith(CloseInternalError, "the session store is unavailable; retry")
		return false
	case err != nil:
		c.closeWith(CloseUnauthorized, "invalid token")
		return false
	case !g.Expires.After(time.Now()):
		c.closeWith(CloseTokenExpired, "token expired")
		return false
	}
	c.phone = &g
	c.claims = auth.Claims{Expires: g.Expires}
	c.armExpiry()
	c.armRecheck(token)
	return true
}

// armRecheck checks the phone's token again every PhoneRecheck while the
// socket is open, and closes it with 4001 once the token names no live
// phone (revoked, or its session gone): its presence then ends at once.
// An outage proves nothing; the next round asks again. The timer's
// goroutine touches nothing of the reader's.
func (c *conn) armRecheck(token string) {
	var check func()
	check = func() {
		if c.closing.Load() {
			return
		}
		ctx, cancel := opContext()
		_, err := c.s.cfg.Phone(ctx, token)
		cancel()
		if err != nil && !httpx.IsUnavailable(err) {
			c.closeWith(CloseUnauthorized, "the phone is no longer connected to the session")
			return
		}
		c.recheckTimer().Reset(c.s.cfg.PhoneRecheck)
	}
	c.recheckMu.Lock()
	c.recheck = time.AfterFunc(c.s.cfg.PhoneRecheck, check)
	c.recheckMu.Unlock()
}

func (c *conn) recheckTimer() *time.Timer {
	c.recheckMu.Lock()
	defer c.recheckMu.Unlock()
	return c.recheck
}

// reauthPhone renews a phone socket's grant with its mobile token. A
// token of another phone or session closes the socket with 4003, as a
// desktop's token of another principal does.
func (c *conn) reauthPhone(f clientFrame) {
	if !c.isPhoneToken(f.Token) {
		c.closeWith(CloseForbidden, "token belongs to another principal")
		return
	}
	ctx, cancel := opContext()
	defer cancel()
	g, err := c.s.cfg.Phone(ctx, f.Token)
	switch {
	case httpx.IsUnavailable(err):
		c.sendError(f.ID, "", protocol.CodeUnavailable, "the session store is unavailable; retry")
		return
	case err != nil:
		c.sendError(f.ID, "", protocol.CodeUnauthorized, "invalid token")
		return
	case g.Channel != c.phone.Channel || g.ClientID != c.phone.ClientID:
		c.closeWith(CloseForbidden, "token belongs to another principal")
		return
	}
	c.phone = &g
	c.claims.Expires = g.Expires
	c.armExpiry()
	c.send(protocol.ServerFrame{Type: protocol.FrameAuthenticated, Ref: f.ID, ExpiresAt: &g.Expires})
}
