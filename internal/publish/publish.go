// Package publish is handoff's Ably REST API, shaped like Ably's so the
// unmodified ably-go (and ably-js, with JSON) REST clients work against
// handoff:
//
//	POST /channels/{channel}/messages          publish (Basic key or Bearer token)
//	POST /messages                             batch publish to many channels (batch.go)
//	GET  /channels/{channel}/messages          history (ably-js's path)
//	GET  /channels/{channel}/history           history (ably-go's path)
//	GET  /channels/{channel}/presence          present members (presence.go)
//	GET  /channels/{channel}/presence/history  presence events
//	GET  /time                                 [ms]
//	POST /keys/{keyName}/requestToken          a token (token.go)
//
// It is one package because the routes share their credentials (API keys
// and the tokens they sign), their error shape and the message mapping;
// the name is the original route's.
//
// Each published message becomes one hub event whose type is the message
// name. What a key or token may do: it must hold the operation (publish,
// history, presence) on the channel in its capability (auth.Capability,
// Ably's channel globs), and no one may publish a name in the server's own
// namespaces (session.ServerEvent: image.*, mobile.*, session.*). The
// desktop acts on those events, so only the capture API and the committer
// publish them.
//
// Errors are Ably's: {"error":{"message","code","statusCode","href"}}
// with Ably's codes (errors.go), so the SDKs report a real code.
package publish

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"

	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/auth"
)

// Route is the publish route's ServeMux pattern; Register mounts it with
// the other Ably REST routes.
const Route = "POST /channels/{channel}/messages"

// Handler serves the Ably REST routes.
type Handler struct {
	hub    *hub.Hub
	keys   *auth.APIKeys
	cfg    Config
	log    zerolog.Logger
	ids    *idempotency
	tokens tokens
	// tokenCache remembers verified tokens (authcache.go).
	tokenCache tokenCache
}

// New returns the handler. keys may be nil: then no request is
// authenticated.
func New(h *hub.Hub, keys *auth.APIKeys, cfg Config, log zerolog.Logger) *Handler {
	cfg = cfg.withDefaults()
	return &Handler{hub: h, keys: keys, cfg: cfg, log: log,
		ids:    newIdempotency(cfg.IdempotencyWindow, cfg.IdempotencyEntries, cfg.Now),
		tokens: tokens{keys: keys, now: cfg.Now}}
}

// Register mounts every Ably REST route on mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle(Route, h)
	mux.HandleFunc(BatchRoute, h.batchPublish)
	mux.HandleFunc("GET /channels/{channel}/messages", h.history)
	mux.HandleFunc("GET /channels/{channel}/history", h.history)
	mux.HandleFunc("GET /channels/{channel}/presence", h.presence)
	mux.HandleFunc("GET /channels/{channel}/presence/history", h.presenceHistory)
	mux.HandleFunc("GET /time", h.time)
	mux.HandleFunc("GET /stats", h.stats)
	mux.HandleFunc("POST /keys/{keyName}/requestToken", h.requestToken)
	// Any other method is Ably's 404 40400, not the mux's bare 405 (the
	// SDKs' request() tests expect it).
	mux.HandleFunc("/keys/{keyName}/requestToken", notFound)
}

// notFound answers as Ably does for a path it does not serve.
func notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, r, errorf(http.StatusNotFound, ablyproto.CodeNotFound, "no such resource"))
}

// time serves GET /time: the server's clock as [ms], which the SDKs use
// to timestamp TokenRequests (queryTime).
func (h *Handler) time(w http.ResponseWriter, r *http.Request) {
	writeReply(w, r, http.StatusOK, []int64{h.cfg.Now().UnixMilli()}, nil)
}

// ServeHTTP serves Route: the publish.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	channel, id, ok := h.authorize(w, r, auth.OpPublish)
	if !ok {
		return
	}
	sc := scratchPool.Get().(*scratch)
	defer sc.put()
	msgs, pubs, err := h.decode(w, r, sc)
	if err == nil {
		err = id.origins(msgs, pubs)
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	serials := sc.serials[:0]
	for i, m := range msgs {
		serial, err := h.publishOne(r, channel, m, pubs[i])
		if err != nil {
			h.fail(w, r, err)
			return
		}
		serials = append(serials, serial)
	}
	sc.serials = serials
	writePublished(w, r, r.PathValue("channel"), serials)
}

func (h *Handler) decode(w http.ResponseWriter, r *http.Request, sc *scratch) ([]ablyproto.Message, []hub.Publication, error) {
	msgs, err := decodeMessages(w, r, h.cfg.MaxBodyBytes, sc.msgs)
	sc.msgs = msgs
	switch {
	case err != nil:
		return nil, nil, err
	case len(msgs) == 0:
		return nil, nil, errorf(http.StatusBadRequest, ablyproto.CodeBadRequest, "the request holds no messages")
	case len(msgs) > h.cfg.MaxMessages:
		return nil, nil, errorf(http.StatusRequestEntityTooLarge, ablyproto.CodeTooLarge, "at most %d messages per request", h.cfg.MaxMessages)
	}
	if err := checkIDs(msgs); err != nil {
		return nil, nil, err
	}
	pubs := slices.Grow(sc.pubs[:0], len(msgs))[:len(msgs)]
	sc.pubs = pubs
	for i, m := range msgs {
		if pubs[i], err = publication(m); err != nil {
			return nil, nil, err
		}
	}
	return msgs, pubs, nil
}

// scratch is a publish request's working slices, pooled: the route
// keeps none of them past the request (the hub copies each publication,
// and the strings and data the slices point to are never reused).
type scratch struct {
	msgs    []ablyproto.Message
	pubs    []hub.Publication
	serials []string
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// put clears sc, so the pool holds no message data, and returns it to
// the pool unless a large request grew it.
func (sc *scratch) put() {
	if cap(sc.msgs) > 16 || cap(sc.pubs) > 16 || cap(sc.serials) > 16 {
		return
	}
	clear(sc.msgs)
	clear(sc.pubs)
	clear(sc.serials)
	scratchPool.Put(sc)
}

// publishOne publishes one message; a message with an id is published once
// per id and channel within the idempotency window, and a retry gets the
// first publish's serial.
func (h *Handler) publishOne(r *http.Request, channel string, m ablyproto.Message, p hub.Publication) (string, error) {
	if m.ID == "" {
		ev, err := h.hub.Publish(r.Context(), channel, p)
		return ev.ID, err
	}
	serial, c, err := h.ids.begin(r.Context(), channel+"\x00"+m.ID)
	if err != nil || c == nil {
		return serial, err
	}
	ev, err := h.hub.Publish(r.Context(), channel, p)
	h.ids.end(c, ev.ID, err == nil)
	return ev.ID, err
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	writeError(w, r, h.publishError(r, err))
}

// publishError is the Ably error for a failed hub publish on r's route
// (the single or the batch publish); an unexpected failure is logged with
// the route's template, never its path.
func (h *Handler) publishError(r *http.Request, err error) *ablyError {
	switch {
	case errors.Is(err, hub.ErrBadChannel), errors.Is(err, hub.ErrBadType), errors.Is(err, hub.ErrBadOrigin):
		return errorf(http.StatusBadRequest, ablyproto.CodeBadRequest, "the message was refused: %v", err)
	case errors.Is(err, hub.ErrTooLarge):
		return errorf(http.StatusRequestEntityTooLarge, ablyproto.CodeTooLarge, "data exceeds %d bytes", hub.MaxDataBytes)
	case errors.Is(err, context.Canceled):
		return errorf(http.StatusServiceUnavailable, ablyproto.CodeUnavailable, "the request was canceled")
	default:
		h.log.Warn().Str("route", r.Pattern).Err(err).Msg("publish failed")
		return errorf(http.StatusServiceUnavailable, ablyproto.CodeUnavailable, "the realtime backend is unavailable; retry with the same message ids")
	}
}
