package ablybridge

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/testutil"
)

func TestChannelTemplates(t *testing.T) {
	t.Parallel()
	resolve := func(context.Context, string) (string, error) { return "enc-7", nil }
	cases := []struct {
		template string
		resolve  Resolver
		want     string // Ably channel of session "abc"; "" means New refuses it
	}{
		{"", nil, "session:abc"},
		{"session:{sessionId}", nil, "session:abc"},
		{"clinic:{encounterId}:{sessionId}", resolve, "clinic:enc-7:abc"},
		{"clinic:{sessionId}:{encounterId}", nil, ""}, // no resolver for {encounterId}
		{"clinic:{encounterId}", resolve, ""},         // encounter ids repeat across facilities
		{"encounter:{encounterId}", resolve, ""},      // issue 13's reproduction
		{"clinic:{patientId}", nil, ""},               // unknown placeholder
		{"all-sessions", nil, ""},                     // one channel for every patient
		{"session:*:{sessionId}", nil, ""},            // a capability wildcard
		{"[meta]session:{sessionId}", nil, ""},        // an Ably qualifier
	}
	for _, c := range cases {
		n, err := newNamer(c.template, c.resolve)
		if c.want == "" {
			if err == nil {
				t.Errorf("template %q accepted", c.template)
			}
			continue
		}
		if err != nil {
			t.Errorf("template %q: %v", c.template, err)
			continue
		}
		got, err := n.name(context.Background(), "abc")
		if err != nil {
			t.Errorf("template %q: name: %v", c.template, err)
			continue
		}
		testutil.Check(t, "channel name of template "+c.template, c.want, got)
	}
}

func TestParseEventNames(t *testing.T) {
	t.Parallel()
	got, err := ParseEventNames(" image.added=image-uploaded, image.removed = image-deleted ,")
	want := map[string]string{"image.added": "image-uploaded", "image.removed": "image-deleted"}
	if err != nil {
		t.Fatal(err)
	}
	testutil.Check(t, "ParseEventNames", want, got)
	empty, err := ParseEventNames("")
	if err != nil {
		t.Fatal(err)
	}
	testutil.Check(t, "ParseEventNames of an empty string", map[string]string{}, empty)
	for _, bad := range []string{"a", "a=", "=b", "a=b,a=c"} {
		if _, err := ParseEventNames(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestMessageData(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want any
	}{
		{``, nil},
		{`null`, nil},
		{`{"a":1}`, json.RawMessage(`{"a":1}`)},
		{` [1,2] `, json.RawMessage(`[1,2]`)},
		{`"text"`, "text"},
		{`42`, "42"},
		{`true`, "true"},
	}
	for _, c := range cases {
		if got := messageData(json.RawMessage(c.in)); !reflect.DeepEqual(got, c.want) {
			t.Errorf("messageData(%s) = %#v, want %#v", c.in, got, c.want)
		}
	}
}

func TestMessageIDNamesTheCursor(t *testing.T) {
	t.Parallel()
	ev := hub.Event{Cursor: hub.Cursor{Epoch: "abc123", Offset: 42}}
	if got := messageID(ev); got != "handoff-abc123-42" {
		t.Errorf("messageID = %q", got)
	}
	c, err := hub.ParseCursor(strings.TrimPrefix(messageID(ev), "handoff-"))
	if err != nil {
		t.Fatalf("the id does not parse as a cursor: %v", err)
	}
	testutil.Check(t, "cursor from the message id", ev.Cursor, c)
	// An event an Ably client published on handoff is mirrored under the
	// same kind of id: its own id need not be unique per event.
	ev.Origin = hub.Origin{MsgID: "hK3x9aQ2Lm:5:0", ClientID: "desk-42", ConnectionID: "hK3x9aQ2Lm"}
	testutil.Check(t, "message id of an Ably client's event", "handoff-abc123-42", messageID(ev))
}

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	h := hub.New(hub.NewMemory(hub.MemoryConfig{}))
	cases := map[string]Config{
		"no key":         {},
		"malformed key":  {Key: "secret-only"},
		"bad template":   {Key: testKey, ChannelTemplate: "x:{nope}"},
		"encounter, nil": {Key: testKey, ChannelTemplate: "{encounterId}"},
	}
	for name, cfg := range cases {
		_, err := New(h, cfg, NewMemoryProgress(), nil, prometheus.NewRegistry(), zerolog.Nop())
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "secret-only") {
			t.Errorf("%s: the error echoes the key: %v", name, err)
		}
	}
	if _, err := New(nil, Config{Key: testKey}, NewMemoryProgress(), nil, nil, zerolog.Nop()); err == nil {
		t.Error("nil hub accepted")
	}
}

// TestEncounterTemplateCannotMergeFacilities is issue 13's reproduction:
// with HANDOFF_ABLY_CHANNEL_TEMPLATE='encounter:{encounterId}', two
// facilities using one encounter id shared an Ably channel. The template
// is now refused, by the bridge and by CheckChannelTemplate (the config
// check), and the error says why.
func TestEncounterTemplateCannotMergeFacilities(t *testing.T) {
	t.Parallel()
	resolve := func(context.Context, string) (string, error) { return "enc-1", nil }
	_, err := New(hub.New(hub.NewMemory(hub.MemoryConfig{})), Config{Key: "app.key:secret", ChannelTemplate: "encounter:{encounterId}"},
		NewMemoryProgress(), resolve, prometheus.NewRegistry(), zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "{sessionId}") {
		t.Fatalf("New with an encounter-only template: err = %v, want one naming {sessionId}", err)
	}
	for _, tpl := range []string{"encounter:{encounterId}", "all", ""} {
		err := CheckChannelTemplate(tpl)
		if (err == nil) != (tpl == "") {
			t.Errorf("CheckChannelTemplate(%q) = %v", tpl, err)
		}
	}
	// With {sessionId} in it, the encounter may still be part of the name,
	// and two sessions of one encounter get two channels.
	n, err := newNamer("encounter:{encounterId}:{sessionId}", resolve)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := n.name(context.Background(), "s1")
	b, _ := n.name(context.Background(), "s2")
	if a == b {
		t.Fatalf("two sessions of one encounter share Ably channel %q", a)
	}
}
