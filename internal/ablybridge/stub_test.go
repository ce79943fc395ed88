package ablybridge

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ably/ably-go/ably"
)

// Stub behaviours.
const (
	stubOK      int32 = iota
	stubFail500       // answer 500 with an Ably error body
	stubHang          // store the messages, then never answer (the ack is lost)
)

const (
	testKeyName   = "appid.keyid"
	testKeySecret = "stub-secret-never-logged"
	testKey       = testKeyName + ":" + testKeySecret
)

// stubMessage is a message as the stub stored it.
type stubMessage struct {
	ID       string          `json:"id"`
	Name     string          `json:"name"`
	Data     json.RawMessage `json:"data"`
	Encoding string          `json:"encoding"`
}

// ablyStub is a local stand-in for Ably's REST API: POST
// /channels/{name}/messages with Basic auth, Ably's idempotency (a message
// id already stored on the channel is accepted and discarded) and Ably's
// rule for client-supplied ids in multi-message publishes, and GET /time.
// It can fail, hang, and go down (connection refused) and come back on the
// same port.
type ablyStub struct {
	t    *testing.T
	port int
	mode atomic.Int32
	// reject makes the stub answer 400 for messages with this name.
	reject atomic.Value

	mu       sync.Mutex
	channels map[string][]stubMessage
	seen     map[string]map[string]bool
	posts    int // POSTs received, whatever the answer
	dups     int // messages discarded as duplicates
	srv      *http.Server
	hung     chan struct{} // closed to release hung handlers
}

func newAblyStub(t *testing.T) *ablyStub {
	t.Helper()
	s := &ablyStub{t: t, channels: make(map[string][]stubMessage), seen: make(map[string]map[string]bool), hung: make(chan struct{})}
	s.reject.Store("")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	s.serve(l)
	t.Cleanup(func() {
		s.Down()
		s.mu.Lock()
		select {
		case <-s.hung:
		default:
			close(s.hung)
		}
		s.mu.Unlock()
	})
	return s
}

// options point ably-go at the stub.
func (s *ablyStub) options() []ably.ClientOption {
	return []ably.ClientOption{
		ably.WithEndpoint("127.0.0.1"),
		ably.WithPort(s.port),
		ably.WithTLS(false),
		ably.WithUseBinaryProtocol(false),
		ably.WithInsecureAllowBasicAuthWithoutTLS(),
	}
}

func (s *ablyStub) serve(l net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /channels/{name}/messages", s.publish)
	mux.HandleFunc("GET /time", func(w http.ResponseWriter, r *http.Request) {
		writeAbly(w, http.StatusOK, []int64{time.Now().UnixMilli()})
	})
	srv := &http.Server{Handler: mux}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

// Down closes the listener and every connection: clients get
// "connection refused" until Up.
func (s *ablyStub) Down() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Up listens again on the same port.
func (s *ablyStub) Up() {
	s.t.Helper()
	var l net.Listener
	var err error
	for i := 0; i < 100; i++ {
		if l, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(s.port)); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("stub: listen again on %d: %v", s.port, err)
	}
	s.serve(l)
}

func writeAbly(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func ablyError(w http.ResponseWriter, status, code int, msg string) {
	writeAbly(w, status, map[string]any{"error": map[string]any{"message": msg, "code": code, "statusCode": status}})
}

var multiID = regexp.MustCompile(`^(.+):(\d+)$`)

func (s *ablyStub) publish(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.posts++
	s.mu.Unlock()
	if name, secret, ok := r.BasicAuth(); !ok || name != testKeyName || secret != testKeySecret {
		ablyError(w, http.StatusUnauthorized, 40101, "invalid credentials")
		return
	}
	if s.mode.Load() == stubFail500 {
		ablyError(w, http.StatusInternalServerError, 50000, "stub outage")
		return
	}
	var msgs []stubMessage
	if err := json.NewDecoder(r.Body).Decode(&msgs); err != nil {
		ablyError(w, http.StatusBadRequest, 40000, "invalid body")
		return
	}
	if err := checkIDs(msgs); err != nil {
		ablyError(w, http.StatusBadRequest, 40031, err.Error())
		return
	}
	for _, m := range msgs {
		if rej := s.reject.Load().(string); rej != "" && m.Name == rej {
			ablyError(w, http.StatusBadRequest, 40013, "invalid message data")
			return
		}
	}
	s.store(r.PathValue("name"), msgs)
	if s.mode.Load() == stubHang {
		select {
		case <-r.Context().Done():
		case <-s.hung:
		}
		return
	}
	writeAbly(w, http.StatusCreated, map[string]any{"channel": r.PathValue("name")})
}

// checkIDs applies Ably's rule for client-supplied ids: a lone message may
// carry any non-empty id; in a multi-message publish every id must be
// "<base>:<index>" with one base and the message's index.
func checkIDs(msgs []stubMessage) error {
	if len(msgs) == 1 {
		if msgs[0].ID == "" {
			return errors.New("client-specified message id cannot be empty")
		}
		return nil
	}
	base := ""
	for i, m := range msgs {
		g := multiID.FindStringSubmatch(m.ID)
		if g == nil || g[2] != strconv.Itoa(i) || (base != "" && g[1] != base) {
			return errors.New("client-specified message ids do not match the required format for multi-message ProtocolMessages")
		}
		base = g[1]
	}
	return nil
}

func (s *ablyStub) store(channel string, msgs []stubMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[channel] == nil {
		s.seen[channel] = make(map[string]bool)
	}
	for _, m := range msgs {
		if s.seen[channel][m.ID] {
			s.dups++
			continue
		}
		s.seen[channel][m.ID] = true
		s.channels[channel] = append(s.channels[channel], m)
	}
}

// messages returns a copy of what channel holds.
func (s *ablyStub) messages(channel string) []stubMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]stubMessage(nil), s.channels[channel]...)
}

// total returns the number of distinct messages stored, all channels.
func (s *ablyStub) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.channels {
		n += len(m)
	}
	return n
}

func (s *ablyStub) counts() (posts, dups int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.posts, s.dups
}
