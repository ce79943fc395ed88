package publish

import (
	"errors"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/auth"
)

// History limits, Ably's: 100 messages a page unless asked, at most 1000.
const (
	defaultHistoryLimit = 100
	maxHistoryLimit     = 1000
)

// historyQuery is a parsed history request.
type historyQuery struct {
	start, end int64 // ms; 0 = unbounded
	limit      int
	forwards   bool
	until      *hub.Cursor // from_serial / fromSerial: up to and including
	cursor     *hub.Cursor // the first message of this page
}

// history serves GET /channels/{channel}/messages (ably-js) and
// GET /channels/{channel}/history (ably-go). It reads the channel's
// retained events through the hub and pages over them with relative Link
// headers; the cursor is the serial of the next page's first message.
func (h *Handler) history(w http.ResponseWriter, r *http.Request) {
	channel, _, ok := h.authorize(w, r, auth.OpHistory)
	if !ok {
		return
	}
	q, err := parseHistoryQuery(r.URL.Query())
	if err != nil {
		writeError(w, r, err)
		return
	}
	evs, _, err := h.hub.History(r.Context(), channel, hub.Cursor{})
	if err != nil && !errors.Is(err, hub.ErrUnrecoverable) {
		writeError(w, r, err)
		return
	}
	page, next := q.page(evs)
	msgs := make([]ablyproto.Message, len(page))
	for i, ev := range page {
		msgs[i] = historyMessage(ev)
	}
	writeReply(w, r, http.StatusOK, msgs, q.links(r, next))
}

func parseHistoryQuery(v url.Values) (historyQuery, error) {
	q := historyQuery{limit: defaultHistoryLimit}
	bad := func(what string) error {
		return errorf(http.StatusBadRequest, ablyproto.CodeBadRequest, "invalid %s", what)
	}
	var err error
	if s := v.Get("start"); s != "" {
		if q.start, err = strconv.ParseInt(s, 10, 64); err != nil || q.start < 0 {
			return q, bad("start: milliseconds since the epoch")
		}
	}
	if s := v.Get("end"); s != "" {
		if q.end, err = strconv.ParseInt(s, 10, 64); err != nil || q.end < 0 {
			return q, bad("end: milliseconds since the epoch")
		}
	}
	if s := v.Get("limit"); s != "" {
		if q.limit, err = strconv.Atoi(s); err != nil || q.limit < 1 || q.limit > maxHistoryLimit {
			return q, bad("limit: 1 to " + strconv.Itoa(maxHistoryLimit))
		}
	}
	switch v.Get("direction") {
	case "", "backwards":
	case "forwards":
		q.forwards = true
	default:
		return q, bad(`direction: "forwards" or "backwards"`)
	}
	if v.Get("from_serial") != "" && v.Get("fromSerial") != "" {
		return q, bad("from_serial and fromSerial: give one, not both")
	}
	for _, p := range []struct {
		key string
		dst **hub.Cursor
	}{{"from_serial", &q.until}, {"fromSerial", &q.until}, {"cursor", &q.cursor}} {
		key, dst := p.key, p.dst
		if s := v.Get(key); s != "" {
			c, err := hub.ParseCursor(s)
			if err != nil {
				return q, bad(key + ": a serial from this channel")
			}
			*dst = &c
		}
	}
	return q, nil
}

// page returns this page's events, in the requested direction, and the
// serial of the next page's first event (nil on the last page).
func (q historyQuery) page(evs []hub.Event) ([]hub.Event, *hub.Cursor) {
	var sel []hub.Event
	for _, ev := range evs {
		ms := ev.TS.UnixMilli()
		switch {
		case q.start != 0 && ms < q.start, q.end != 0 && ms > q.end:
		case q.until != nil && !atOrBefore(ev.Cursor, *q.until):
		case q.cursor != nil && q.forwards && atOrBefore(ev.Cursor, *q.cursor) && ev.Cursor != *q.cursor:
		case q.cursor != nil && !q.forwards && !atOrBefore(ev.Cursor, *q.cursor):
		default:
			sel = append(sel, ev)
		}
	}
	if !q.forwards {
		slices.Reverse(sel)
	}
	if len(sel) <= q.limit {
		return sel, nil
	}
	next := sel[q.limit].Cursor
	return sel[:q.limit], &next
}

// atOrBefore reports whether a is at or before b in one channel. Serials
// of another epoch (a channel whose history was lost) are never before.
func atOrBefore(a, b hub.Cursor) bool { return a.Epoch == b.Epoch && a.Offset <= b.Offset }

// links returns the Link header values: rel="first", and rel="next" when
// there is a next page. They are relative to the request's last path
// segment ("./messages?…" or "./history?…"), the only form both SDKs
// resolve, and url-encoded, so no ',' or '/' appears in them.
func (q historyQuery) links(r *http.Request, next *hub.Cursor) []string {
	v := url.Values{}
	for _, key := range []string{"start", "end", "limit", "direction", "from_serial", "fromSerial"} {
		if s := r.URL.Query().Get(key); s != "" {
			v.Set(key, s)
		}
	}
	base := "./" + path.Base(r.URL.Path) + "?"
	out := []string{"<" + base + v.Encode() + `>; rel="first"`}
	if next != nil {
		v.Set("cursor", next.String())
		out = append(out, "<"+base+v.Encode()+`>; rel="next"`)
	}
	return out
}

// historyMessage is a hub event as an Ably message: ablyproto.EventMessage,
// the one mapping that realtime delivery uses too.
func historyMessage(ev hub.Event) ablyproto.Message {
	return ablyproto.EventMessage(ev.ID, ev.Type, ev.Data, ev.TS, ablyproto.Origin(ev.Origin))
}

// authorize authenticates the request and checks that its credentials
// allow one of ops on the path's channel; it has answered when !ok.
//
// The channel returned is the hub channel: the path's Ably channel name
// behind its app's prefix when Config.ChannelPrefix is set (scope.go).
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, ops ...string) (channel string, id identity, ok bool) {
	id, err := h.authenticate(r)
	if err != nil {
		writeError(w, r, err)
		return "", id, false
	}
	channel = r.PathValue("channel")
	if !hub.ValidChannel(channel) {
		writeError(w, r, errBadChannel)
		return "", id, false
	}
	for _, op := range ops {
		if id.Allows(channel, op) {
			return h.hubChannel(id.keyName, channel), id, true
		}
	}
	// Ably answers a missing capability with 40160 and status 401.
	writeError(w, r, errorf(http.StatusUnauthorized, ablyproto.CodeCapability, "these credentials may not %s on this channel", ops[0]))
	return "", id, false
}

var errBadChannel = errorf(http.StatusBadRequest, ablyproto.CodeChannelInvalid,
	"channel must be 1-%d bytes of UTF-8 without control characters, not starting with '[' or ':'", hub.MaxChannelLen)
