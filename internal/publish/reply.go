package publish

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/handoff-health/handoff/ablyproto"
)

// replyPool holds the buffers publish replies are written into.
var replyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// writePublished answers a publish with 201 and ablyproto.PublishReply,
// written by hand into a pooled buffer, in JSON or, for a client that
// wants it (ably-go's and Node ably-js's default), msgpack: the reply is on
// every publish, and encoding/json's reflection was a tenth of the route's
// CPU (the general msgpack path, JSON then converted, doubled it). With
// envelope=json it takes the general path.
func writePublished(w http.ResponseWriter, r *http.Request, channel string, serials []string) {
	if wantsEnvelope(r) {
		writeReply(w, r, http.StatusCreated, ablyproto.PublishReply{Channel: channel, MessageID: serials[0], Serials: serials}, nil)
		return
	}
	buf := replyPool.Get().(*bytes.Buffer)
	defer func() {
		buf.Reset()
		replyPool.Put(buf)
	}()
	contentType := "application/json"
	if wantsMsgpack(r) {
		contentType = msgpackType
		appendPublishedMsgpack(buf, channel, serials)
	} else {
		b := buf.AvailableBuffer()
		b = append(b, `{"channel":`...)
		b = appendJSONString(b, channel)
		b = append(b, `,"messageId":`...)
		b = appendJSONString(b, serials[0])
		b = append(b, `,"serials":[`...)
		for i, s := range serials {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, s)
		}
		b = append(b, "]}\n"...)
		buf.Write(b) // b is buf's spare capacity, or grew past it: kept for the next reply
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(buf.Bytes())
}

// appendPublishedMsgpack writes ablyproto.PublishReply as the msgpack map
// writeReply's general path would: {channel, messageId, serials}.
func appendPublishedMsgpack(buf *bytes.Buffer, channel string, serials []string) {
	enc := msgpack.GetEncoder()
	defer msgpack.PutEncoder(enc)
	enc.Reset(buf)
	// Writing to a bytes.Buffer cannot fail.
	_ = enc.EncodeMapLen(3)
	_ = enc.EncodeString("channel")
	_ = enc.EncodeString(channel)
	_ = enc.EncodeString("messageId")
	_ = enc.EncodeString(serials[0])
	_ = enc.EncodeString("serials")
	_ = enc.EncodeArrayLen(len(serials))
	for _, s := range serials {
		_ = enc.EncodeString(s)
	}
}

// appendJSONString appends s as a JSON string. Serials and most channel
// names are plain ASCII; anything else goes through encoding/json, so the
// output is always what json.Marshal would write.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
