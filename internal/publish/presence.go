package publish

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/presence"
)

// presence serves GET /channels/{channel}/presence: the present members
// (action 1), filtered by clientId and connectionId, limit a page (100
// unless asked, at most 1000), paged with Link headers like history. The
// members come in the registry's order (clientId, then connectionId), and
// a page's cursor is the first member of the next page, so a member
// entering or leaving between pages moves nothing else.
func (h *Handler) presence(w http.ResponseWriter, r *http.Request) {
	channel, _, ok := h.authorize(w, r, auth.OpPresence, auth.OpSubscribe)
	if !ok {
		return
	}
	v := r.URL.Query()
	limit, err := parseLimit(v)
	if err != nil {
		writeError(w, r, err)
		return
	}
	var from *memberCursor
	if s := v.Get("cursor"); s != "" {
		c, ok := parseMemberCursor(s)
		if !ok {
			writeError(w, r, errorf(http.StatusBadRequest, ablyproto.CodeBadRequest, "invalid cursor"))
			return
		}
		from = &c
	}
	members := []presence.Member{}
	if h.cfg.Presence != nil {
		members, err = h.cfg.Presence.Members(r.Context(), channel)
		if err != nil {
			writeError(w, r, presenceUnavailable)
			return
		}
	}
	var sel []presence.Member
	for _, m := range members {
		switch {
		case v.Has("clientId") && m.ClientID != v.Get("clientId"):
		case v.Has("connectionId") && m.ConnectionID != v.Get("connectionId"):
		case from != nil && (m.ClientID < from.client || m.ClientID == from.client && m.ConnectionID < from.conn):
		default:
			sel = append(sel, m)
		}
	}
	var next string
	if len(sel) > limit {
		next = memberCursor{sel[limit].ClientID, sel[limit].ConnectionID}.String()
		sel = sel[:limit]
	}
	out := make([]ablyproto.PresenceMessage, len(sel))
	for i, m := range sel {
		out[i] = ablyproto.PresenceWire(int(presence.Present), m.ID, m.ClientID, m.ConnectionID, m.Data, m.Timestamp)
	}
	writeReply(w, r, http.StatusOK, out, pageLinks(r, []string{"limit", "clientId", "connectionId"}, next))
}

// presenceHistory serves GET /channels/{channel}/presence/history: the
// channel's presence events, newest first unless direction=forwards,
// between start and end (ms, inclusive), limit a page, paged with Link
// headers; a page's cursor is the id of the next page's first event.
func (h *Handler) presenceHistory(w http.ResponseWriter, r *http.Request) {
	channel, _, ok := h.authorize(w, r, auth.OpPresence, auth.OpSubscribe)
	if !ok {
		return
	}
	// The cursor is a presence event id, not a message serial.
	v := r.URL.Query()
	v.Del("cursor")
	q, err := parseHistoryQuery(v)
	if err != nil {
		writeError(w, r, err)
		return
	}
	evs := []presence.Event{}
	if h.cfg.Presence != nil {
		hq := presence.HistoryQuery{Limit: maxHistoryLimit, Forwards: q.forwards}
		if q.start != 0 {
			hq.Start = time.UnixMilli(q.start)
		}
		if q.end != 0 {
			hq.End = time.UnixMilli(q.end)
		}
		evs, err = h.cfg.Presence.History(r.Context(), channel, hq)
		if err != nil {
			writeError(w, r, presenceUnavailable)
			return
		}
	}
	if c := r.URL.Query().Get("cursor"); c != "" {
		i := 0
		for i < len(evs) && evs[i].ID != c {
			i++
		}
		evs = evs[i:] // an event no longer kept: nothing is left to page
	}
	var next string
	if len(evs) > q.limit {
		next = evs[q.limit].ID
		evs = evs[:q.limit]
	}
	out := make([]ablyproto.PresenceMessage, len(evs))
	for i, ev := range evs {
		out[i] = ablyproto.PresenceWire(int(ev.Action), ev.ID, ev.ClientID, ev.ConnectionID, ev.Data, ev.Timestamp)
	}
	writeReply(w, r, http.StatusOK, out, pageLinks(r, []string{"start", "end", "limit", "direction"}, next))
}

var presenceUnavailable = errorf(http.StatusServiceUnavailable, ablyproto.CodeUnavailable, "the presence backend is unavailable; retry")

func parseLimit(v url.Values) (int, error) {
	s := v.Get("limit")
	if s == "" {
		return defaultHistoryLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxHistoryLimit {
		return 0, errorf(http.StatusBadRequest, ablyproto.CodeBadRequest, "invalid limit: 1 to %d", maxHistoryLimit)
	}
	return n, nil
}

// pageLinks returns the Link values of a page: rel="first", and
// rel="next" with cursor next when there is one; relative to the
// request's last path segment, as history's (links).
func pageLinks(r *http.Request, keep []string, next string) []string {
	v := url.Values{}
	for _, key := range keep {
		if r.URL.Query().Has(key) {
			v.Set(key, r.URL.Query().Get(key))
		}
	}
	base := "./" + path.Base(r.URL.Path) + "?"
	out := []string{"<" + base + v.Encode() + `>; rel="first"`}
	if next != "" {
		v.Set("cursor", next)
		out = append(out, "<"+base+v.Encode()+`>; rel="next"`)
	}
	return out
}

// memberCursor is where a page of members starts.
type memberCursor struct{ client, conn string }

// String encodes the cursor without '/', ',' or '.' (base64url).
func (c memberCursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(c.client + "\n" + c.conn))
}

func parseMemberCursor(s string) (memberCursor, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return memberCursor{}, false
	}
	client, conn, ok := strings.Cut(string(b), "\n")
	return memberCursor{client, conn}, ok
}
