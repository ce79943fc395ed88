package ablyproto_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/handoff-health/handoff/ablyproto"
)

// StoredData is the data rule of both publishes (REST and realtime).
func TestStoredData(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		data, enc string
		want      string
		err       error
	}{
		{"", "", "", nil},
		{"null", "", "", nil},
		{`"hi"`, "", `"hi"`, nil},
		{`{"a":1}`, "", `{"a":1}`, nil},
		{`"{\"a\":1}"`, "json", `{"a":1}`, nil},
		{`"[1,2]"`, "json", `[1,2]`, nil},
		{`"not json"`, "json", "", ablyproto.ErrJSONEncoding},
		{`{"a":1}`, "json", "", ablyproto.ErrJSONEncoding},
		{"", "json", "", ablyproto.ErrJSONEncoding},
		{`"aGk="`, "base64", "", ablyproto.ErrUnsupportedEncoding},
		{`"x"`, "json/utf-8", "", ablyproto.ErrUnsupportedEncoding},
		{`"x"`, "cipher+aes-128-cbc/base64", "", ablyproto.ErrUnsupportedEncoding},
	} {
		var in json.RawMessage
		if c.data != "" {
			in = json.RawMessage(c.data)
		}
		got, err := ablyproto.StoredData(in, c.enc)
		if !errors.Is(err, c.err) || string(got) != c.want {
			t.Errorf("StoredData(%s, %q) = %s, %v; want %s, %v", c.data, c.enc, got, err, c.want, c.err)
		}
		if c.want == "" && got != nil {
			t.Errorf("StoredData(%s, %q) = %q; want nil", c.data, c.enc, got)
		}
	}
}
