package fanout

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"
)

// The Centrifugo target (--server centrifugo), for side-by-side runs
// against Centrifugo v6 (scripts/bench-vs-centrifugo.sh). It measures the
// same things as the handoff target, through Centrifugo's own interfaces:
//
//   - sockets speak its bidirectional JSON client protocol on
//     /connection/websocket: a connect command carrying an HS256 JWT, a
//     subscribe command, then publication pushes. A frame may carry
//     several replies separated by '\n'; an empty object is a server ping,
//     answered with an empty object;
//   - publishes go to its HTTP API, POST /api/publish with X-API-Key (and
//     POST /api/batch for --batch > 1). Centrifugo answers 200 with an
//     "error" object when it refuses, so the reply body is read.
//
// A publication carries an offset only when the channel's namespace keeps
// history; without it the bench checks loss by count but cannot check
// order, and says so (Integrity.Unordered).

const (
	centrifugoPath        = "/connection/websocket"
	centrifugoPublishPath = "/api/publish"
	centrifugoBatchPath   = "/api/batch"
	// centrifugoReplyLimit bounds the API reply the bench reads.
	centrifugoReplyLimit = 64 << 10
)

// centrifugoToken mints a connection JWT (HS256, sub and exp) with the
// server's client.token.hmac_secret_key.
func centrifugoToken(secret, sub string, exp time.Time) (string, error) {
	if secret == "" {
		return "", errors.New("centrifugo needs --jwt-secret (its client.token.hmac_secret_key)")
	}
	claims, err := json.Marshal(struct {
		Sub string `json:"sub"`
		Exp int64  `json:"exp"`
	}{sub, exp.Unix()})
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	unsigned := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(unsigned))
	return unsigned + "." + enc.EncodeToString(mac.Sum(nil)), nil
}

// centrifugoChannels names n channels of one run, in namespace ns.
func centrifugoChannels(ns, run string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("bench-%s-%d", run, i)
		if ns != "" {
			out[i] = ns + ":" + out[i]
		}
	}
	return out
}

// centrifugoReply is the part of a reply to a command the bench reads.
type centrifugoReply struct {
	ID    uint32 `json:"id"`
	Error *struct {
		Code    uint32 `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// openCentrifugoSocket dials, connects with the token, subscribes to
// channel and waits for both replies.
func openCentrifugoSocket(ctx context.Context, wsURL, tok, channel string, hc *http.Client, rc *receiver) (*socket, error) {
	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	ws.SetReadLimit(readLimit)
	s := &socket{ws: ws, rc: rc, channel: channel, centrifugo: true}
	connect, _ := json.Marshal(map[string]any{"id": 1, "connect": map[string]string{"token": tok, "name": "handoff-bench"}})
	subscribe, _ := json.Marshal(map[string]any{"id": 2, "subscribe": map[string]string{"channel": channel}})
	for i, cmd := range [][]byte{connect, subscribe} {
		if err := ws.Write(ctx, websocket.MessageText, cmd); err != nil {
			ws.CloseNow()
			return nil, fmt.Errorf("centrifugo command %d: %w", i+1, err)
		}
		if err := s.expectCentrifugo(ctx, uint32(i+1)); err != nil {
			ws.CloseNow()
			return nil, err
		}
	}
	return s, nil
}

// expectCentrifugo reads frames until the reply to command id; an error
// reply fails. Pings met on the way are answered.
func (s *socket) expectCentrifugo(ctx context.Context, id uint32) error {
	for range 8 {
		b, err := s.read(ctx)
		if err != nil {
			return fmt.Errorf("waiting for the reply to command %d: %w", id, err)
		}
		for len(b) > 0 {
			line, rest, _ := bytes.Cut(b, []byte("\n"))
			b = rest
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			if isCentrifugoPing(line) {
				s.pong()
				continue
			}
			var r centrifugoReply
			if err := json.Unmarshal(line, &r); err != nil {
				return fmt.Errorf("waiting for the reply to command %d: unreadable frame %.80q", id, line)
			}
			if r.ID != id {
				continue
			}
			if r.Error != nil {
				return fmt.Errorf("centrifugo refused command %d: %d %s", id, r.Error.Code, r.Error.Message)
			}
			// What follows the reply in its frame (a ping, a push) counts.
			if len(rest) > 0 {
				s.centrifugoFrame(time.Now().UnixNano(), rest)
			}
			return nil
		}
	}
	return fmt.Errorf("no reply to command %d", id)
}

func isCentrifugoPing(line []byte) bool { return bytes.Equal(bytes.TrimSpace(line), []byte("{}")) }

// pong answers a server ping; a failed write shows as a dropped socket.
func (s *socket) pong() {
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	_ = s.ws.Write(ctx, websocket.MessageText, []byte("{}"))
}

var (
	cfPushPrefix = []byte(`{"push":`)
	cfPubKey     = []byte(`"pub":`)
	cfOffsetKey  = []byte(`"offset":`)
	cfDisconnect = []byte(`"disconnect":`)
	cfUnsub      = []byte(`"unsubscribe":`)
	cfErrorKey   = []byte(`"error":`)
)

// centrifugoFrame records every publication in one frame and counts the
// replies that must not come (errors, disconnect and unsubscribe pushes).
func (s *socket) centrifugoFrame(now int64, b []byte) {
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		switch {
		case len(bytes.TrimSpace(line)) == 0:
		case isCentrifugoPing(line):
			s.pong()
		case bytes.HasPrefix(line, cfPushPrefix):
			switch {
			case bytes.Contains(line, cfPubKey):
				off, sched, start, ok := parseCentrifugoPub(line)
				if !ok {
					s.rc.malformed.Add(1)
					continue
				}
				if off == 0 {
					s.rc.unordered.Add(1)
				}
				s.event(now, off, sched, start)
			case bytes.Contains(line, cfDisconnect), bytes.Contains(line, cfUnsub):
				s.rc.errorFrames.Add(1)
			}
		case bytes.Contains(line, cfErrorKey):
			s.rc.errorFrames.Add(1)
		}
	}
}

// parseCentrifugoPub returns a publication push's offset (0 when the
// channel keeps no history) and the bench's t and r from its data.
func parseCentrifugoPub(line []byte) (off uint64, sched, start int64, ok bool) {
	if off, sched, start, ok = parseCentrifugoPubFast(line); ok {
		return
	}
	var f struct {
		Push struct {
			Pub *struct {
				Data struct {
					T int64 `json:"t"`
					R int64 `json:"r"`
				} `json:"data"`
				Offset uint64 `json:"offset"`
			} `json:"pub"`
		} `json:"push"`
	}
	if json.Unmarshal(line, &f) != nil || f.Push.Pub == nil || f.Push.Pub.Data.T == 0 {
		return 0, 0, 0, false
	}
	return f.Push.Pub.Offset, f.Push.Pub.Data.T, f.Push.Pub.Data.R, true
}

func parseCentrifugoPubFast(line []byte) (off uint64, sched, start int64, ok bool) {
	i := bytes.Index(line, dataKey)
	if i < 0 {
		return
	}
	if sched, start, ok = parseTimes(line[i+len(dataKey):]); !ok {
		return
	}
	// The bench's data holds no "offset" key, so the last one is the
	// publication's own.
	if k := bytes.LastIndex(line, cfOffsetKey); k >= 0 {
		o, n := parseUint(line[k+len(cfOffsetKey):])
		if n == 0 {
			return 0, 0, 0, false
		}
		off = o
	}
	return off, sched, start, true
}

// centrifugoAPIError is a 200 reply whose body holds an error: the
// request was understood and refused; the connection stays usable.
type centrifugoAPIError uint64

func (e centrifugoAPIError) Error() string {
	return "centrifugo error " + strconv.FormatUint(uint64(e), 10)
}

// centrifugoReplyError returns the first error code in an API reply, or
// nil when there is none.
func centrifugoReplyError(body []byte) error {
	i := bytes.Index(body, cfErrorKey)
	if i < 0 {
		return nil
	}
	code := uint64(0)
	if k := bytes.Index(body[i:], []byte(`"code":`)); k >= 0 {
		code, _ = parseUint(body[i+k+len(`"code":`):])
	}
	return centrifugoAPIError(code)
}
