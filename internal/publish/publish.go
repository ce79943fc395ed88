// Package publish is the server-side publish API, shaped like Ably's REST
// publish so code written for Ably works unchanged against handoff:
//
//	POST /channels/{channel}/messages
//	Authorization: Basic base64(keyName:secret)
//	[{"id":"…","name":"image.added","data":{…}}]
//
// Each message becomes one hub event whose type is the message name.
//
// What a key may do: it must hold the "publish" operation on the channel
// in its capability (auth.Capability, Ably's channel globs), and no key may
// publish a name in the server's own namespaces (session.ServerEvent:
// image.*, mobile.*, session.*). The desktop acts on those events, so only
// the capture API and the committer publish them.
package publish

import (
	"context"
	"errors"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/httpx"
)

// Route is the ServeMux pattern the handler expects; it reads the channel
// from the {channel} wildcard.
const Route = "POST /channels/{channel}/messages"

// Handler serves Route.
type Handler struct {
	hub  *hub.Hub
	keys *auth.APIKeys
	cfg  Config
	log  zerolog.Logger
	ids  *idempotency
}

// New returns the publish handler over h, accepting the API keys in keys.
func New(h *hub.Hub, keys *auth.APIKeys, cfg Config, log zerolog.Logger) *Handler {
	cfg = cfg.withDefaults()
	return &Handler{hub: h, keys: keys, cfg: cfg, log: log,
		ids: newIdempotency(cfg.IdempotencyWindow, cfg.IdempotencyEntries, cfg.Now)}
}

// reply is Ably's publish response: ably-go's PublishWithResult reads
// serials, which here are the events' cursors (usable as since).
type reply struct {
	Channel   string   `json:"channel"`
	MessageID string   `json:"messageId"`
	Serials   []string `json:"serials"`
}

// ServeHTTP authenticates, validates every message, then publishes them in
// order. Nothing is published if any message is invalid. If the backend
// fails midway, the messages before it stay published and the reply is
// 503: a retry with the same ids publishes only the rest.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	keyName, capability, ok := h.authenticate(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="handoff"`)
		httpx.WriteError(w, httpx.Errorf(http.StatusUnauthorized, "unauthorized", "a valid API key (HTTP Basic keyName:secret) is required"))
		return
	}
	channel := r.PathValue("channel")
	if !hub.ValidChannel(channel) {
		httpx.WriteError(w, httpx.Errorf(http.StatusBadRequest, "bad_channel", "channel must be 1-%d characters of letters, digits and -_.:@", hub.MaxChannelLen))
		return
	}
	if !capability.Allows(channel, auth.OpPublish) {
		httpx.WriteError(w, httpx.Errorf(http.StatusForbidden, "capability_denied", "this API key may not publish on this channel"))
		return
	}
	msgs, pubs, err := h.decode(w, r)
	if err != nil {
		httpx.WriteError(w, err)
		return
	}
	serials := make([]string, 0, len(msgs))
	for i, m := range msgs {
		serial, err := h.publishOne(r, channel, m, pubs[i])
		if err != nil {
			h.fail(w, keyName, err)
			return
		}
		serials = append(serials, serial)
	}
	httpx.WriteJSON(w, http.StatusCreated, reply{Channel: channel, MessageID: serials[0], Serials: serials})
}

func (h *Handler) authenticate(r *http.Request) (string, auth.Capability, bool) {
	name, secret, ok := r.BasicAuth()
	if !ok || h.keys == nil {
		return name, auth.Capability{}, false
	}
	c, ok := h.keys.Authenticate(name, secret)
	return name, c, ok
}

// decode reads and validates the whole request before anything is published.
func (h *Handler) decode(w http.ResponseWriter, r *http.Request) ([]ablyproto.Message, []hub.Publication, error) {
	msgs, err := decodeMessages(w, r, h.cfg.MaxBodyBytes)
	switch {
	case err != nil:
		return nil, nil, err
	case len(msgs) == 0:
		return nil, nil, httpx.Errorf(http.StatusBadRequest, "no_messages", "the request holds no messages")
	case len(msgs) > h.cfg.MaxMessages:
		return nil, nil, httpx.Errorf(http.StatusRequestEntityTooLarge, "too_many_messages", "at most %d messages per request", h.cfg.MaxMessages)
	}
	pubs := make([]hub.Publication, len(msgs))
	for i, m := range msgs {
		if pubs[i], err = publication(m); err != nil {
			return nil, nil, err
		}
	}
	return msgs, pubs, nil
}

// publishOne publishes one message, or returns the serial of its earlier
// publish when its id was seen on this channel within the window.
func (h *Handler) publishOne(r *http.Request, channel string, m ablyproto.Message, p hub.Publication) (string, error) {
	if m.ID == "" {
		ev, err := h.hub.Publish(r.Context(), channel, p)
		return ev.ID, err
	}
	// The channel is part of the key: Ably scopes ids to a channel.
	serial, c, err := h.ids.begin(r.Context(), channel+"\x00"+m.ID)
	if err != nil || c == nil {
		return serial, err
	}
	ev, err := h.hub.Publish(r.Context(), channel, p)
	h.ids.end(c, ev.ID, err == nil)
	return ev.ID, err
}

// fail answers a publish error: the hub's input errors are 4xx (they are
// checked up front, so this is a backstop), an unreachable backend 503.
func (h *Handler) fail(w http.ResponseWriter, keyName string, err error) {
	switch {
	case errors.Is(err, hub.ErrBadChannel), errors.Is(err, hub.ErrBadType):
		httpx.WriteError(w, httpx.Errorf(http.StatusBadRequest, "invalid_message", "the message was refused: %v", err))
	case errors.Is(err, hub.ErrTooLarge):
		httpx.WriteError(w, httpx.Errorf(http.StatusRequestEntityTooLarge, "data_too_large", "data exceeds %d bytes", hub.MaxDataBytes))
	case errors.Is(err, context.Canceled):
		// The client hung up while waiting on a duplicate in flight: not a
		// backend fault, and nobody reads the reply.
		httpx.WriteError(w, httpx.Errorf(http.StatusServiceUnavailable, "canceled", "the request was canceled"))
	default:
		// Route template and key name only: never the secret or the data.
		h.log.Warn().Str("route", Route).Str("key", keyName).Err(err).Msg("publish failed")
		httpx.WriteError(w, httpx.Errorf(http.StatusServiceUnavailable, "unavailable", "the realtime backend is unavailable; retry with the same message ids"))
	}
}
