package fanout

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/coder/websocket"

	"github.com/handoff-health/handoff/ablyproto"
)

// The Ably target (--server ably --format json|msgpack) measures handoff's
// Ably realtime socket (internal/ablyrt) on the same load as the native
// target: the same capture-session channels, the same HTTP publishes
// (POST /channels/{ch}/messages with the API key), so only the subscriber
// transport differs.
//
//   - a socket connects to ws://host/?key=<api key>&v=5&format=<f>&heartbeats=true,
//     waits for CONNECTED, sends ATTACH for its channel and waits for
//     ATTACHED; nothing else is sent (HEARTBEATs go server to client);
//   - every frame is decoded with ablyproto.Decode, as an SDK would;
//     each message of a MESSAGE frame is one delivery, its serial (the hub
//     cursor, "<epoch>-<offset>") gives the order check, and its data (the
//     bench's object, sent by the server as a string with encoding "json")
//     gives the scheduled and request-start times;
//   - an ATTACHED after the attach (the Ably form of the native resync)
//     counts as a resync; ERROR, DISCONNECTED and DETACHED as error frames.

// ablyProtocolVersion is the protocol version the bench's sockets ask for.
const ablyProtocolVersion = "5"

// ablySocketURL is the Ably socket's URL for base URL target.
func ablySocketURL(target, apiKey string, f ablyproto.Format) string {
	q := url.Values{"key": {apiKey}, "v": {ablyProtocolVersion}, "format": {f.String()}, "heartbeats": {"true"}}
	return "ws" + strings.TrimPrefix(target, "http") + "/?" + q.Encode()
}

// openAblySocket dials the Ably socket (the key is in wsURL), attaches to
// channel and waits for ATTACHED.
func openAblySocket(ctx context.Context, wsURL string, f ablyproto.Format, channel string, hc *http.Client, rc *receiver) (*socket, error) {
	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		// The error may quote the URL, whose query holds the API key.
		return nil, fmt.Errorf("dial: %s", redactQuery(err.Error(), wsURL))
	}
	ws.SetReadLimit(readLimit)
	s := &socket{ws: ws, rc: rc, channel: channel, ably: true, format: f}
	if _, err := s.expectAbly(ctx, ablyproto.ActionConnected, ""); err != nil {
		ws.CloseNow()
		return nil, err
	}
	attach, err := ablyproto.Encode(f, &ablyproto.ProtocolMessage{Action: ablyproto.ActionAttach, Channel: channel})
	if err != nil {
		ws.CloseNow()
		return nil, err
	}
	typ := websocket.MessageText
	if f == ablyproto.FormatMsgpack {
		typ = websocket.MessageBinary
	}
	if err := ws.Write(ctx, typ, attach); err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("attach: %w", err)
	}
	if _, err := s.expectAbly(ctx, ablyproto.ActionAttached, channel); err != nil {
		ws.CloseNow()
		return nil, err
	}
	return s, nil
}

// redactQuery removes wsURL's query (and its http form) from msg.
func redactQuery(msg, wsURL string) string {
	_, query, ok := strings.Cut(wsURL, "?")
	if !ok {
		return msg
	}
	msg = strings.ReplaceAll(msg, "?"+query, "?…")
	if u, err := url.ParseQuery(query); err == nil {
		if k := u.Get("key"); k != "" {
			msg = strings.ReplaceAll(msg, k, "…")
		}
	}
	return msg
}

// expectAbly reads frames until one with action want (for channel, when
// given); an ERROR, or a channel ERROR for channel, fails.
func (s *socket) expectAbly(ctx context.Context, want ablyproto.Action, channel string) (*ablyproto.ProtocolMessage, error) {
	for range 8 { // CONNECTED, ATTACHED, and perhaps a HEARTBEAT between
		b, err := s.read(ctx)
		if err != nil {
			return nil, fmt.Errorf("waiting for action %d: %w", want, err)
		}
		pm, err := ablyproto.Decode(s.format, b)
		if err != nil {
			return nil, fmt.Errorf("waiting for action %d: %w", want, err)
		}
		switch {
		case pm.Action == want && (channel == "" || pm.Channel == channel):
			return pm, nil
		case pm.Action == ablyproto.ActionError || pm.Action == ablyproto.ActionDisconnected:
			if pm.Error != nil {
				return nil, fmt.Errorf("waiting for action %d: server error %d: %s", want, pm.Error.Code, pm.Error.Message)
			}
			return nil, fmt.Errorf("waiting for action %d: server sent action %d", want, pm.Action)
		}
	}
	return nil, fmt.Errorf("no frame with action %d", want)
}

// ablyFrame records the deliveries of one frame after the attach. A
// MESSAGE of one message in the shape handoff sends is read without
// decoding the whole frame (ablyMessageFast), as the native target reads
// its events, so the generator's own cost, which shares the machine with
// the server, does not weigh on one transport more than on the other;
// anything else is decoded with ablyproto.
func (s *socket) ablyFrame(now int64, b []byte) {
	if off, sched, start, ok := ablyMessageFast(s.format, b); ok {
		s.event(now, off, sched, start)
		return
	}
	pm, err := ablyproto.Decode(s.format, b)
	if err != nil {
		s.rc.malformed.Add(1)
		return
	}
	switch pm.Action {
	case ablyproto.ActionMessage:
		for i := range pm.Messages {
			off, sched, start, ok := parseAblyMessage(&pm.Messages[i])
			if !ok {
				s.rc.malformed.Add(1)
				continue
			}
			s.event(now, off, sched, start)
		}
	case ablyproto.ActionAttached:
		// Unsolicited: the server lost events it could not replay.
		s.rc.resyncs.Add(1)
	case ablyproto.ActionError, ablyproto.ActionDisconnected, ablyproto.ActionDetached:
		s.rc.errorFrames.Add(1)
	}
}

// parseAblyMessage returns a delivered message's offset (from its serial)
// and the bench's t and r from its data.
func parseAblyMessage(m *ablyproto.RealtimeMessage) (off uint64, sched, start int64, ok bool) {
	k := strings.LastIndexByte(m.Serial, '-')
	o, n := parseUint([]byte(m.Serial[k+1:]))
	if n == 0 || n != len(m.Serial)-k-1 || m.Data == nil || m.Data.Bin != nil {
		return 0, 0, 0, false
	}
	data := []byte(m.Data.JSON)
	if m.Encoding == "json" {
		// The object travels as a JSON string holding its JSON text.
		var s string
		if json.Unmarshal(data, &s) != nil {
			return 0, 0, 0, false
		}
		data = []byte(s)
	} else if m.Encoding != "" {
		return 0, 0, 0, false
	}
	t, r, ok := parseBenchData(data)
	if !ok {
		return 0, 0, 0, false
	}
	return o, t, r, true
}

var benchDataPrefix = []byte(`{"t":`)

// parseBenchData reads the bench's {"t":…,"r":…,…} object, in the order
// the publisher writes it, falling back to encoding/json.
func parseBenchData(b []byte) (sched, start int64, ok bool) {
	if bytes.HasPrefix(b, benchDataPrefix) {
		if t, r, ok := parseTimes(b[len(benchDataPrefix):]); ok && t > 0 {
			return t, r, true
		}
	}
	var d struct {
		T int64 `json:"t"`
		R int64 `json:"r"`
	}
	if json.Unmarshal(b, &d) != nil || d.T == 0 {
		return 0, 0, false
	}
	return d.T, d.R, true
}

// The fields of a one-message MESSAGE frame the fast path reads, as
// handoff encodes them (ablyproto.Encode of ablyrt's frame): JSON keys, and
// msgpack fixstr keys.
var (
	jsonMessagePrefix = []byte(`{"action":15,`)
	jsonSerialKey     = []byte(`"serial":"`)
	jsonDataKey       = []byte(`"data":"`)
	jsonEncodingKey   = []byte(`"encoding":"json"`)
	mpActionMessage   = []byte("\xa6action\x0f")
	mpSerialKey       = []byte("\xa6serial")
	mpDataKey         = []byte("\xa4data")
	mpEncodingJSON    = []byte("\xa8encoding\xa4json")
)

// ablyMessageFast reads a MESSAGE frame holding exactly one message whose
// data is the bench's object sent as JSON text with encoding "json"; ok is
// false for anything else, which the caller then decodes in full.
func ablyMessageFast(f ablyproto.Format, b []byte) (off uint64, sched, start int64, ok bool) {
	var serial, data []byte
	if f == ablyproto.FormatJSON {
		if !bytes.HasPrefix(b, jsonMessagePrefix) || bytes.Count(b, jsonSerialKey) != 1 || !bytes.Contains(b, jsonEncodingKey) {
			return
		}
		serial = jsonString(b, jsonSerialKey)
		data = jsonString(b, jsonDataKey)
		if data == nil || bytes.IndexByte(data, '\\') < 0 {
			return
		}
		// The object's JSON text, escaped as a string: only its quotes
		// are escaped in the bench's data ({\"t\":…,\"r\":…}).
		data = bytes.ReplaceAll(data, []byte(`\"`), []byte(`"`))
		if bytes.IndexByte(data, '\\') >= 0 {
			return
		}
	} else {
		if len(b) < 1+len(mpActionMessage) || !bytes.Equal(b[1:1+len(mpActionMessage)], mpActionMessage) ||
			bytes.Count(b, mpSerialKey) != 1 || bytes.Count(b, mpDataKey) != 1 || !bytes.Contains(b, mpEncodingJSON) {
			return
		}
		serial = msgpackString(b, mpSerialKey)
		data = msgpackString(b, mpDataKey)
	}
	if serial == nil || data == nil {
		return
	}
	k := bytes.LastIndexByte(serial, '-')
	o, n := parseUint(serial[k+1:])
	if n == 0 || n != len(serial)-k-1 {
		return
	}
	t, r, ok := parseBenchData(data)
	if !ok {
		return
	}
	return o, t, r, true
}

// jsonString returns the raw text of the string after key (up to the
// next unescaped quote), or nil.
func jsonString(b, key []byte) []byte {
	i := bytes.Index(b, key)
	if i < 0 {
		return nil
	}
	rest := b[i+len(key):]
	for j := 0; j < len(rest); j++ {
		switch rest[j] {
		case '\\':
			j++
		case '"':
			return rest[:j]
		}
	}
	return nil
}

// msgpackString returns the str value after key (fixstr, str8 or str16),
// or nil.
func msgpackString(b, key []byte) []byte {
	i := bytes.Index(b, key)
	if i < 0 {
		return nil
	}
	rest := b[i+len(key):]
	if len(rest) == 0 {
		return nil
	}
	var n, h int
	switch c := rest[0]; {
	case c >= 0xa0 && c <= 0xbf:
		n, h = int(c&0x1f), 1
	case c == 0xd9 && len(rest) >= 2:
		n, h = int(rest[1]), 2
	case c == 0xda && len(rest) >= 3:
		n, h = int(rest[1])<<8|int(rest[2]), 3
	default:
		return nil
	}
	if len(rest) < h+n {
		return nil
	}
	return rest[h : h+n]
}
