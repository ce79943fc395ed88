package publish

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/auth"
)

// BatchRoute is Ably's batch publish: the same messages to many channels,
// or different messages to different channels, in one request.
const BatchRoute = "POST /messages"

// Batch publish limits. A request is checked whole before anything is
// published, so the bound is on what one request may ask for.
const (
	// MaxBatchChannels bounds the channels of one spec.
	MaxBatchChannels = 1000
	// MaxBatchPublishes bounds the events one request publishes: the sum
	// over its specs of channels × messages.
	MaxBatchPublishes = 1000
)

// batchSpec is one BatchPublishSpec as sent: channels and messages may each
// be one value or an array of them.
type batchSpec struct {
	Channels json.RawMessage `json:"channels"`
	Messages json.RawMessage `json:"messages"`
}

// batchResult is Ably's BatchResult for one spec: one result per channel,
// in the spec's order.
type batchResult struct {
	SuccessCount int                  `json:"successCount"`
	FailureCount int                  `json:"failureCount"`
	Results      []batchChannelResult `json:"results"`
}

// batchChannelResult is a BatchPublishSuccessResult (messageId, serials)
// or a BatchPublishFailureResult (error).
type batchChannelResult struct {
	Channel   string               `json:"channel"`
	MessageID string               `json:"messageId,omitempty"`
	Serials   []string             `json:"serials,omitempty"`
	Error     *ablyproto.ErrorInfo `json:"error,omitempty"`
}

// checkedSpec is a spec that passed every check.
type checkedSpec struct {
	channels []string
	msgs     []ablyproto.Message
	pubs     []hub.Publication
}

// batchPublish serves BatchRoute. The body is one spec {channels, messages}
// or an array of them; the reply is one BatchResult, or an array of them
// in the specs' order. Every spec is checked before anything is published:
// a malformed body, a bad channel name or a bad message refuses the whole
// request. A channel the credentials may not publish to gets its own
// failure result (40160), as on Ably, and the others are published. Each
// channel's messages are published in order; channels are published
// concurrently.
func (h *Handler) batchPublish(w http.ResponseWriter, r *http.Request) {
	c, err := h.authenticate(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	specs, single, err := h.decodeBatch(w, r)
	for i := 0; err == nil && i < len(specs); i++ {
		if err = c.origins(specs[i].msgs, specs[i].pubs); err != nil {
			e := asAbly(err)
			err = &ablyError{Status: e.Status, Code: e.Code, Message: "spec " + strconv.Itoa(i) + ": " + e.Message}
		}
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	results := make([]batchResult, len(specs))
	type job struct{ spec, idx int }
	work := make(map[string][]job) // channel -> its publishes, in request order
	var order []string
	for si, s := range specs {
		results[si].Results = make([]batchChannelResult, len(s.channels))
		for ci, ch := range s.channels {
			res := &results[si].Results[ci]
			res.Channel = ch
			if !c.Allows(ch, auth.OpPublish) {
				res.Error = errorInfo(errorf(http.StatusUnauthorized, ablyproto.CodeCapability, "these credentials may not publish on this channel"))
				continue
			}
			if _, ok := work[ch]; !ok {
				order = append(order, ch)
			}
			work[ch] = append(work[ch], job{si, ci})
		}
	}
	// publishChannel publishes every message of the request for one
	// channel, in request order.
	publishChannel := func(ch string) {
		var failed error
		for _, j := range work[ch] {
			res := &results[j.spec].Results[j.idx]
			s := specs[j.spec]
			if failed != nil {
				// An earlier publish to this channel failed: later ones
				// would land out of order, so they are not tried.
				res.Error = errorInfo(failed)
				continue
			}
			serials := make([]string, 0, len(s.msgs))
			for i, m := range s.msgs {
				serial, err := h.publishOne(r, h.hubChannel(c.keyName, ch), m, s.pubs[i])
				if err != nil {
					failed = h.publishError(r, err)
					break
				}
				serials = append(serials, serial)
			}
			if failed != nil {
				// Messages before the failure are published: their
				// serials are not reported, as Ably reports a channel's
				// publish as a whole; a retry with the same message ids
				// does not publish them twice.
				res.Error = errorInfo(failed)
				continue
			}
			res.MessageID, res.Serials = serials[0], serials
		}
	}
	h.publishChannels(order, publishChannel)
	for i := range results {
		for _, res := range results[i].Results {
			if res.Error != nil {
				results[i].FailureCount++
			} else {
				results[i].SuccessCount++
			}
		}
	}
	if single {
		writeReply(w, r, http.StatusCreated, results[0], nil)
		return
	}
	writeReply(w, r, http.StatusCreated, results, nil)
}

// publishChannels runs publish for every channel of order on
// Config.BatchWorkers goroutines, which take the channels in turn; with
// one worker (or one channel), on the request's own goroutine.
func (h *Handler) publishChannels(order []string, publish func(string)) {
	if h.cfg.BatchWorkers == 1 || len(order) == 1 {
		for _, ch := range order {
			publish(ch)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(h.cfg.BatchWorkers, len(order)) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(order); i = int(next.Add(1)) - 1 {
				publish(order[i])
			}
		})
	}
	wg.Wait()
}

// decodeBatch reads and checks the request: every channel name and every
// message, and the limits.
func (h *Handler) decodeBatch(w http.ResponseWriter, r *http.Request) ([]checkedSpec, bool, error) {
	buf := bodyPool.Get().(*bytes.Buffer)
	defer putBody(buf)
	body, err := readJSONBody(w, r, h.cfg.MaxBodyBytes, buf)
	if err != nil {
		return nil, false, err
	}
	var raw []batchSpec
	single := false
	switch {
	case len(body) > 0 && body[0] == '{':
		raw, single = make([]batchSpec, 1), true
		err = json.Unmarshal(body, &raw[0])
	case len(body) > 0 && body[0] == '[':
		err = json.Unmarshal(body, &raw)
	default:
		return nil, false, badBatch("body must be a batch spec {channels, messages} or an array of them")
	}
	if err != nil {
		return nil, false, badBatch("request body is not valid JSON, or a spec is not an object")
	}
	if len(raw) == 0 {
		return nil, false, badBatch("the request holds no batch specs")
	}
	specs := make([]checkedSpec, len(raw))
	total := 0
	for i, rs := range raw {
		where := "spec " + strconv.Itoa(i) + ": "
		s := &specs[i]
		if err := oneOrMany(rs.Channels, &s.channels); err != nil || len(s.channels) == 0 {
			return nil, false, badBatch(where + "channels must be a channel name or a non-empty array of them")
		}
		if len(s.channels) > MaxBatchChannels {
			return nil, false, errorf(http.StatusRequestEntityTooLarge, ablyproto.CodeTooLarge, "%sat most %d channels per spec", where, MaxBatchChannels)
		}
		for _, ch := range s.channels {
			if !hub.ValidChannel(ch) {
				return nil, false, errorf(http.StatusBadRequest, errBadChannel.Code, "%s%s", where, errBadChannel.Message)
			}
		}
		if err := oneOrMany(rs.Messages, &s.msgs); err != nil {
			var typeErr *json.UnmarshalTypeError
			if errors.As(err, &typeErr) && typeErr.Field != "" {
				return nil, false, badBatch(where + "message field " + strconv.Quote(typeErr.Field) + " has the wrong type")
			}
			return nil, false, badBatch(where + "messages must be a message object or an array of them")
		}
		switch {
		case len(s.msgs) == 0:
			return nil, false, badBatch(where + "the spec holds no messages")
		case len(s.msgs) > h.cfg.MaxMessages:
			return nil, false, errorf(http.StatusRequestEntityTooLarge, ablyproto.CodeTooLarge, "%sat most %d messages per spec", where, h.cfg.MaxMessages)
		}
		if err := checkIDs(s.msgs); err != nil {
			e := asAbly(err)
			return nil, false, &ablyError{Status: e.Status, Code: e.Code, Message: where + e.Message}
		}
		s.pubs = make([]hub.Publication, len(s.msgs))
		for j, m := range s.msgs {
			if s.pubs[j], err = publication(m); err != nil {
				e := asAbly(err)
				return nil, false, &ablyError{Status: e.Status, Code: e.Code, Message: where + "message " + strconv.Itoa(j) + ": " + e.Message}
			}
		}
		total += len(s.channels) * len(s.msgs)
		if total > MaxBatchPublishes {
			return nil, false, errorf(http.StatusRequestEntityTooLarge, ablyproto.CodeTooLarge,
				"a request may publish at most %d messages in all (channels × messages, summed over its specs)", MaxBatchPublishes)
		}
	}
	return specs, single, nil
}

func badBatch(msg string) error {
	return errorf(http.StatusBadRequest, ablyproto.CodeBadRequest, "%s", msg)
}

// oneOrMany decodes raw, a JSON value or an array of such values, into
// out.
func oneOrMany[T any](raw json.RawMessage, out *[]T) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return errors.New("missing")
	}
	if raw[0] == '[' {
		return json.Unmarshal(raw, out)
	}
	*out = make([]T, 1)
	return json.Unmarshal(raw, &(*out)[0])
}
