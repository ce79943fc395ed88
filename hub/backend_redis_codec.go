package hub

import (
	"strconv"
	"strings"
	"time"
)

// The text form of an event in Redis, shared by the stream (replay) and
// the PubSub message (live delivery) so one decoder serves both:
//
//	[+<len(msgId)>,<len(clientId)>,<len(connectionId)>[,<len(headers)>] <msgId><clientId><connectionId><headers>]<cursor> <unix µs> <len(type)> <type><data>
//
// The headers length is written only when the origin has headers, so
// origins stored before headers existed decode unchanged.
//
// The bracketed origin is present only when the event has one. Lengths
// rather than separators let each field hold any byte its validation
// allows. An event without an origin is encoded exactly as before origins
// existed, so entries already in Redis decode unchanged; publish.lua keeps
// the origin in its own stream field ("o") beside the event ("e").

// encodeOrigin renders o as the prefix above; the zero Origin is "".
func encodeOrigin(o Origin) string {
	if o == (Origin{}) {
		return ""
	}
	var b strings.Builder
	b.Grow(16 + len(o.MsgID) + len(o.ClientID) + len(o.ConnectionID))
	b.WriteByte('+')
	b.WriteString(strconv.Itoa(len(o.MsgID)))
	b.WriteByte(',')
	b.WriteString(strconv.Itoa(len(o.ClientID)))
	b.WriteByte(',')
	b.WriteString(strconv.Itoa(len(o.ConnectionID)))
	if o.Headers != "" {
		b.WriteByte(',')
		b.WriteString(strconv.Itoa(len(o.Headers)))
	}
	b.WriteByte(' ')
	b.WriteString(o.MsgID)
	b.WriteString(o.ClientID)
	b.WriteString(o.ConnectionID)
	b.WriteString(o.Headers)
	return b.String()
}

// cutOrigin splits the origin prefix, if any, from an encoded event.
func cutOrigin(s string) (Origin, string, error) {
	if !strings.HasPrefix(s, "+") {
		return Origin{}, s, nil
	}
	head, rest, ok := strings.Cut(s[1:], " ")
	a, head, ok1 := strings.Cut(head, ",")
	b, c, ok2 := strings.Cut(head, ",")
	c, d, hasHeaders := strings.Cut(c, ",")
	n1, err1 := strconv.Atoi(a)
	n2, err2 := strconv.Atoi(b)
	n3, err3 := strconv.Atoi(c)
	n4, err4 := 0, error(nil)
	if hasHeaders {
		n4, err4 = strconv.Atoi(d)
	}
	if !ok || !ok1 || !ok2 || err1 != nil || err2 != nil || err3 != nil || err4 != nil ||
		n1 < 0 || n2 < 0 || n3 < 0 || n4 < 0 || n1 > len(rest) || n2 > len(rest) || n3 > len(rest) || n4 > len(rest) ||
		n1+n2+n3+n4 > len(rest) {
		return Origin{}, "", errMalformedEvent
	}
	o := Origin{MsgID: rest[:n1], ClientID: rest[n1 : n1+n2], ConnectionID: rest[n1+n2 : n1+n2+n3],
		Headers: rest[n1+n2+n3 : n1+n2+n3+n4]}
	return o, rest[n1+n2+n3+n4:], nil
}

// decodeEvent parses an event as publish.lua encodes it. ID, Type, Origin
// and Channel share the input's memory; only Data is copied, because
// receivers may hold on to it as a byte slice.
func decodeEvent(channel, s string) (Event, error) {
	ev, data, err := parseEvent(channel, s)
	if err == nil && data != "" {
		ev.Data = []byte(data)
	}
	return ev, err
}

// parseEvent splits an encoded event without allocating, returning the
// event without Data, and the data text.
func parseEvent(channel, s string) (Event, string, error) {
	origin, s, err := cutOrigin(s)
	if err != nil {
		return Event{}, "", err
	}
	id, rest, ok1 := strings.Cut(s, " ")
	ts, rest, ok2 := strings.Cut(rest, " ")
	n, rest, ok3 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || !ok3 {
		return Event{}, "", errMalformedEvent
	}
	cur, err := ParseCursor(id)
	us, err2 := strconv.ParseInt(ts, 10, 64)
	tlen, err3 := strconv.Atoi(n)
	if err != nil || cur.Epoch == "" || err2 != nil || err3 != nil || tlen < 0 || tlen > len(rest) {
		return Event{}, "", errMalformedEvent
	}
	ev := Event{ID: id, Channel: channel, Type: rest[:tlen], TS: time.UnixMicro(us).UTC(), Origin: origin, Cursor: cur}
	return ev, rest[tlen:], nil
}
