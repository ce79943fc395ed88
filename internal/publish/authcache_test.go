package publish

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestTokenCache: a remembered token is refused once it expires, a token
// with the same claims but another signature never matches it, and a
// token refused is not remembered.
func TestTokenCache(t *testing.T) {
	t.Parallel()
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	keys, err := auth.ParseAPIKeys(testKeys, testCaps)
	noErr(t, err)
	h := New(hub.New(hub.NewMemory(hub.MemoryConfig{})), keys, Config{Now: clock}, zerolog.Nop())
	mux := http.NewServeMux()
	h.Register(mux)
	token, err := h.tokens.issue(tokenClaims{KeyName: keyName, Issued: now.UnixMilli(),
		Expires: now.Add(time.Minute).UnixMilli(), Capability: `{"session:*":["history"]}`})
	noErr(t, err)
	get := func(channel, token string) (int, int) {
		req := httptest.NewRequest(http.MethodGet, "/channels/"+channel+"/history", nil)
		req.Header.Set("Authorization", "Bearer "+base64Std(token))
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		var body ablyproto.ErrorBody
		_ = json.Unmarshal(w.Body.Bytes(), &body)
		return w.Code, body.Error.Code
	}
	type reply struct{ Status, Code int }
	for range 2 { // verified, then remembered
		s, c := get("session:a", token)
		testutil.Equal(t, "history with the token", reply{200, 0}, reply{s, c})
		s, c = get("other", token)
		testutil.Equal(t, "history outside the token's capability", reply{401, ablyproto.CodeCapability}, reply{s, c})
	}
	testutil.Equal(t, "tokens remembered", 1, len(h.tokenCache.m))

	signed, sig, _ := strings.Cut(strings.TrimPrefix(token, tokenPrefix), ".")
	forged := tokenPrefix + signed + "." + strings.Repeat("A", len(sig))
	s, c := get("session:a", forged)
	testutil.Equal(t, "the same claims with a forged signature", reply{401, ablyproto.CodeTokenError}, reply{s, c})
	testutil.Equal(t, "tokens remembered after a refusal", 1, len(h.tokenCache.m))

	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	s, c = get("session:a", token)
	testutil.Equal(t, "the remembered token once expired", reply{401, ablyproto.CodeTokenError}, reply{s, c})
	testutil.Equal(t, "tokens remembered after it expired", 0, len(h.tokenCache.m))
}

// TestPublishReplyIsJSON: the hand-written publish reply is what
// encoding/json writes for ablyproto.PublishReply, whatever the strings.
func TestPublishReplyIsJSON(t *testing.T) {
	t.Parallel()
	for _, serials := range [][]string{
		{"abc-1"}, {"abc-1", "abc-2", "abc-3"}, {`q"uote\\`, "ctl\x01", "<html>&", "é"},
	} {
		w := httptest.NewRecorder()
		writePublished(w, httptest.NewRequest(http.MethodPost, "/", nil), "session:x", serials)
		want, _ := json.Marshal(ablyproto.PublishReply{Channel: "session:x", MessageID: serials[0], Serials: serials})
		testutil.Equal(t, "reply", string(want)+"\n", w.Body.String())
		testutil.Equal(t, "status", http.StatusCreated, w.Code)
		testutil.Equal(t, "content type", "application/json", w.Header().Get("Content-Type"))
	}
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestTokenCacheKeyRemoved: a remembered token stops working as soon as
// the key that signed it is removed at runtime (the test provisioner),
// although it has not expired.
func TestTokenCacheKeyRemoved(t *testing.T) {
	t.Parallel()
	keys, err := auth.ParseAPIKeys(testKeys, testCaps)
	noErr(t, err)
	h := New(hub.New(hub.NewMemory(hub.MemoryConfig{})), keys, Config{}, zerolog.Nop())
	mux := http.NewServeMux()
	h.Register(mux)
	now := time.Now()
	token, err := h.tokens.issue(tokenClaims{KeyName: keyName, Issued: now.UnixMilli(),
		Expires: now.Add(time.Hour).UnixMilli(), Capability: `{"*":["history"]}`})
	noErr(t, err)
	get := func() int {
		req := httptest.NewRequest(http.MethodGet, "/channels/x/history", nil)
		req.Header.Set("Authorization", "Bearer "+base64Std(token))
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		return w.Code
	}
	testutil.Equal(t, "history with the token", http.StatusOK, get())
	testutil.Equal(t, "again, remembered", http.StatusOK, get())
	keys.Remove(keyName)
	testutil.Equal(t, "after its key was removed", http.StatusUnauthorized, get())
}
