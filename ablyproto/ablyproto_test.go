package ablyproto_test

import (
	"encoding/json"
	"testing"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestErrorBodyWire: the error body is the shape ably-go reads, byte for
// byte as ABLY-PROTOCOL.md quotes it.
func TestErrorBodyWire(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(ablyproto.ErrorBody{Error: ablyproto.ErrorInfo{
		Message: "Token expired", Code: 40142, StatusCode: 401, HRef: "https://help.ably.io/error/40142",
	}})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "error body",
		`{"error":{"message":"Token expired","code":40142,"statusCode":401,"href":"https://help.ably.io/error/40142"}}`, string(b))
}

// TestMessageWire: a message as ably-go sends a map (data as a JSON
// string with encoding "json") decodes field by field.
func TestMessageWire(t *testing.T) {
	t.Parallel()
	in := `{"id":"b1f:0","name":"image.added","data":"{\"imageId\":\"i1\"}","encoding":"json","clientId":"desk-42","extras":{"headers":{"k":"v"}}}`
	var m ablyproto.Message
	if err := json.Unmarshal([]byte(in), &m); err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "decoded message", ablyproto.Message{
		ID: "b1f:0", Name: "image.added", Data: json.RawMessage(`"{\"imageId\":\"i1\"}"`), Encoding: "json",
		ClientID: "desk-42", Extras: json.RawMessage(`{"headers":{"k":"v"}}`),
	}, m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "re-encoded message", in, string(out))
}
