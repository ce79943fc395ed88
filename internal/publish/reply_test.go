package publish

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestPublishedReplyMatchesGeneralPath: the publish reply written by hand
// (JSON, and msgpack for a client that asks for it) is what writeReply's
// general path writes for the same ablyproto.PublishReply, value for
// value, with the same status and Content-Type.
func TestPublishedReplyMatchesGeneralPath(t *testing.T) {
	t.Parallel()
	for _, accept := range []string{"", "application/json", "application/x-msgpack", "application/x-msgpack, application/json"} {
		for _, serials := range [][]string{{"e1-1"}, {"e1-1", "e1-2", "e1-3"}, make([]string, 20)} {
			for i := range serials {
				if serials[i] == "" {
					serials[i] = "abcdefghijklmnopqrstuvwxyz0123456789-" + string(rune('a'+i))
				}
			}
			channel := "session:r<&>\"é"
			req := httptest.NewRequest(http.MethodPost, "/channels/x/messages", nil)
			if accept != "" {
				req.Header.Set("Accept", accept)
			}
			fast, general := httptest.NewRecorder(), httptest.NewRecorder()
			writePublished(fast, req, channel, serials)
			writeReply(general, req, http.StatusCreated, ablyproto.PublishReply{Channel: channel, MessageID: serials[0], Serials: serials}, nil)
			testutil.Equal(t, accept+": status", general.Code, fast.Code)
			ct := general.Header().Get("Content-Type")
			testutil.Equal(t, accept+": Content-Type", ct, fast.Header().Get("Content-Type"))
			testutil.Equal(t, accept+": Cache-Control", general.Header().Get("Cache-Control"), fast.Header().Get("Cache-Control"))
			if ct != msgpackType {
				testutil.Equal(t, accept+": JSON body", general.Body.String(), fast.Body.String())
				continue
			}
			var got, want any
			if err := msgpack.Unmarshal(fast.Body.Bytes(), &got); err != nil {
				t.Fatalf("%s: the reply is not msgpack: %v", accept, err)
			}
			if err := msgpack.Unmarshal(general.Body.Bytes(), &want); err != nil {
				t.Fatal(err)
			}
			testutil.Equal(t, accept+": msgpack body", want, got)
		}
	}
}
