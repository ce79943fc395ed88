package ablybridge

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/session"
)

// sessionPrefix is the hub channel prefix of capture sessions. Only these
// channels are bridged: the Ably channel name is derived from the session
// (and its encounter), and integrator channels published through the
// Ably-style REST endpoint have no session to derive one from.
const sessionPrefix = session.ChannelPrefix

// Template placeholders.
const (
	phSession   = "{sessionId}"
	phEncounter = "{encounterId}"
)

// ErrUnknownSession is what a Resolver (or a token authorize function)
// returns, wrapped, for a session that does not exist or is not the
// caller's. The bridge then drops that channel's unmirrored events,
// counted and logged; the token endpoint answers 404.
var ErrUnknownSession = errors.New("ably: unknown capture session")

// Resolver returns the encounter id of a capture session; the capture
// store supplies it. It is only called when the channel template uses
// {encounterId}, once per worker pass over a channel. An error wrapping
// ErrUnknownSession drops the channel's unmirrored events (counted); any
// other error is retried with backoff, the events waiting meanwhile.
type Resolver func(ctx context.Context, sessionID string) (encounterID string, err error)

// namer turns hub channels into Ably channel names.
type namer struct {
	template  string
	encounter bool
	resolve   Resolver
}

// CheckChannelTemplate checks an Ably channel template
// (HANDOFF_ABLY_CHANNEL_TEMPLATE) on its own, so a node refuses a bad one at
// start. An empty template means DefaultChannelTemplate.
//
// It must contain {sessionId}: the Ably channel is then one session's, and
// a token for it (which ably-js exchanges at Ably) reaches one session of
// one facility. A template with only {encounterId} is refused, because
// encounter ids are the PMS's, not unique across facilities: two practices
// with the same encounter id would share one Ably channel, and each one's
// token would read the other's events, signed photo URLs included.
func CheckChannelTemplate(template string) error {
	if template == "" {
		template = DefaultChannelTemplate
	}
	rest := strings.NewReplacer(phSession, "", phEncounter, "").Replace(template)
	if strings.ContainsAny(rest, "{}") {
		return fmt.Errorf("ably: channel template %q: only {sessionId} and {encounterId} may be used", template)
	}
	if !strings.Contains(template, phSession) {
		return fmt.Errorf("ably: channel template %q must contain {sessionId}, so one Ably channel (and one token) never covers more than one session", template)
	}
	if strings.HasPrefix(template, "[") || strings.Contains(template, "*") {
		// "[" starts an Ably channel qualifier and "*" is a capability
		// wildcard; either would widen what a token grants.
		return fmt.Errorf("ably: channel template %q must not start with [ or contain *", template)
	}
	return nil
}

func newNamer(template string, resolve Resolver) (namer, error) {
	if template == "" {
		template = DefaultChannelTemplate
	}
	// Checked again here, not only in config: the bridge is a library, and
	// a template that merges facilities must fail wherever it comes from.
	if err := CheckChannelTemplate(template); err != nil {
		return namer{}, err
	}
	n := namer{template: template, encounter: strings.Contains(template, phEncounter), resolve: resolve}
	if n.encounter && resolve == nil {
		return namer{}, fmt.Errorf("ably: channel template %q uses {encounterId} but no resolver was given", template)
	}
	return n, nil
}

// sessionOf returns the session id of a bridged hub channel.
func sessionOf(channel string) (string, bool) {
	id, ok := strings.CutPrefix(channel, sessionPrefix)
	return id, ok && id != ""
}

// name returns the Ably channel of a capture session.
func (n namer) name(ctx context.Context, sessionID string) (string, error) {
	if sessionID == "" || !hub.ValidChannel(sessionPrefix+sessionID) {
		return "", ErrUnknownSession
	}
	out := strings.ReplaceAll(n.template, phSession, sessionID)
	if n.encounter {
		enc, err := n.resolve(ctx, sessionID)
		if err != nil {
			return "", err
		}
		if enc == "" || strings.ContainsAny(enc, "*[") {
			return "", fmt.Errorf("ably: session has an unusable encounter id")
		}
		out = strings.ReplaceAll(out, phEncounter, enc)
	}
	return out, nil
}

// messageID is the Ably message id of an event: "handoff-" and the
// event's cursor ("<epoch>-<offset>"). The epoch is random per channel
// history, so the id names one event of one channel forever; a retry of
// the same event, from any node, carries the same id and Ably discards
// the copy. Each event is published alone: Ably only accepts
// client-supplied ids of the form "<base>:<index>" in multi-message
// publishes, which would tie an event's id to the batch it happened to
// be sent in. Events an Ably client published on handoff are named the
// same way, not by their publisher's id (hub.Origin.MsgID): the bridge
// mirrors every event handoff accepted, and two events sharing a client's
// id (a REST retry that reached another node, two clients choosing the
// same id) would reach Ably as one.
func messageID(ev hub.Event) string { return "handoff-" + ev.Cursor.String() }

// ParseEventNames parses HANDOFF_ABLY_EVENT_NAMES, "a=b,c=d": hub event
// type a is published to Ably under the name b. Types not listed keep
// their name.
func ParseEventNames(s string) (map[string]string, error) {
	out := make(map[string]string)
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		from, to, ok := strings.Cut(item, "=")
		from, to = strings.TrimSpace(from), strings.TrimSpace(to)
		if !ok || from == "" || to == "" {
			return nil, fmt.Errorf("ably: event name mapping %q must be hubType=ablyName", item)
		}
		if _, dup := out[from]; dup {
			return nil, fmt.Errorf("ably: event type %q is mapped twice", from)
		}
		out[from] = to
	}
	return out, nil
}
