package publish

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/session"
)

// errMsgpack refuses bodies that are neither JSON nor msgpack (the two
// formats the SDKs send; msgpack is ably-go's default).
var errMsgpack = errorf(http.StatusUnsupportedMediaType, ablyproto.CodeBadRequest,
	"the body must be JSON (application/json) or msgpack (application/x-msgpack)")

// jsonBody reports whether the request body is JSON (or unlabelled).
func jsonBody(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" || ct == "application/json" {
		return true // what every SDK sends: no need to parse it
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// decodeMessages reads the body: one Ably REST message object or an array
// of them (parseMessages), appended to dst[:0]. Fields handoff does not use (size,
// connectionKey, version, …, which the SDKs add) are ignored, as Ably
// ignores them; a known field of the wrong type is still a 400.
func decodeMessages(w http.ResponseWriter, r *http.Request, maxBody int64, dst []ablyproto.Message) ([]ablyproto.Message, error) {
	buf := bodyPool.Get().(*bytes.Buffer)
	defer putBody(buf)
	body, mp, err := readBody(w, r, maxBody, buf)
	switch {
	case err != nil:
		return nil, err
	case mp:
		return parseMsgpackMessages(dst, body)
	}
	return parseMessages(dst, bytes.TrimSpace(body))
}

// readJSONBody reads a publish body of at most maxBody bytes into buf,
// JSON or msgpack (converted to the JSON of the same value), and returns
// its JSON text, trimmed, which may be in buf (a pooled buffer: the text
// must not be kept once buf is put back).
func readJSONBody(w http.ResponseWriter, r *http.Request, maxBody int64, buf *bytes.Buffer) ([]byte, error) {
	body, mp, err := readBody(w, r, maxBody, buf)
	if err == nil && mp {
		if body, err = ablyproto.MsgpackToJSON(body); err != nil {
			err = errBadMsgpack
		}
	}
	return bytes.TrimSpace(body), err
}

// readBody reads a publish body of at most maxBody bytes into buf (a
// pooled buffer: the body must not be kept once buf is put back) and
// says whether it is msgpack rather than JSON.
func readBody(w http.ResponseWriter, r *http.Request, maxBody int64, buf *bytes.Buffer) ([]byte, bool, error) {
	mp := msgpackBody(r)
	if !jsonBody(r) && !mp {
		return nil, false, errMsgpack
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, maxBody))
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		return nil, false, errorf(http.StatusRequestEntityTooLarge, ablyproto.CodeTooLarge, "request body exceeds %d bytes", maxBody)
	case err != nil:
		return nil, false, errorf(http.StatusBadRequest, ablyproto.CodeBadRequest, "the request body could not be read")
	}
	return buf.Bytes(), mp, nil
}

// bodyPool holds request body buffers. A body is only read while it is
// decoded: the decoders copy what they keep (strings, RawMessage data),
// so no decoded message points into a pooled buffer.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// putBody returns buf to bodyPool unless it grew past the usual body size,
// so one large batch does not pin a megabyte per pooled buffer.
func putBody(buf *bytes.Buffer) {
	if buf.Cap() > 64<<10 {
		return
	}
	buf.Reset()
	bodyPool.Put(buf)
}

// errMessageIDs is Ably's 40031 for the ids of messages published together.
var errMessageIDs = errorf(http.StatusBadRequest, ablyproto.CodeInvalidMessageID,
	"client-specified message ids of a multi-message publish must be <base>:<index>, one base, each message's own position as index")

// checkIDs applies Ably's rule to the ids of messages published together
// (ablyproto.ValidMessageIDs).
func checkIDs(msgs []ablyproto.Message) error {
	given := false
	for _, m := range msgs {
		given = given || m.ID != ""
	}
	if !given || len(msgs) < 2 {
		return nil
	}
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	if !ablyproto.ValidMessageIDs(ids) {
		return errMessageIDs
	}
	return nil
}

// publication checks one message and returns what the hub stores.
func publication(m ablyproto.Message) (hub.Publication, error) {
	bad := func(format string, args ...any) (hub.Publication, error) {
		return hub.Publication{}, errorf(http.StatusBadRequest, ablyproto.CodeBadRequest, format, args...)
	}
	switch {
	case len(m.Name) > hub.MaxTypeLen:
		return bad("name is longer than %d bytes", hub.MaxTypeLen)
	case session.ServerEvent(m.Name):
		return hub.Publication{}, errorf(http.StatusForbidden, ablyproto.CodeForbidden,
			"names starting with %s are published only by the server", strings.Join(session.ServerEventNamespaces, ", "))
	case len(m.ID) > maxIDLen:
		return bad("id is longer than %d bytes", maxIDLen)
	case m.Action != nil && *m.Action != 0:
		return bad("only action 0 (message.create) can be published; updates and deletes are not supported")
	}
	data, err := storedData(m.Data, m.Encoding)
	if err != nil {
		return bad("%s", err.Error())
	}
	if len(data) > hub.MaxDataBytes {
		return hub.Publication{}, errorf(http.StatusRequestEntityTooLarge, ablyproto.CodeTooLarge, "data exceeds %d bytes", hub.MaxDataBytes)
	}
	// Data is checked JSON: the decoders checked it as they read it, and
	// storedData checked the text of encoding "json".
	return hub.Publication{Type: m.Name, Data: data, DataIsJSON: true}, nil
}

// storedData is ablyproto.StoredData, without encoding/json's reflection
// for the common encoding "json": data is then a JSON string (checked by
// the decoder) whose text must itself be JSON. Anything else, and every
// refusal, is StoredData's.
func storedData(data json.RawMessage, encoding string) (json.RawMessage, error) {
	if encoding == "json" && len(data) > 1 && data[0] == '"' {
		d := msgDecoder{b: data}
		if s, ok := d.str(); ok && d.i == len(data) && json.Valid(s) {
			return s[:len(s):len(s)], nil // in data, which is the message's own copy, or in d's own scratch
		}
	}
	return ablyproto.StoredData(data, encoding)
}
