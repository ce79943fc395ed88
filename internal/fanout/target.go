package fanout

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/handoff-health/handoff/internal/auth"
)

// Setup limits.
const (
	// requestTimeout bounds each setup request (token, session).
	requestTimeout = 10 * time.Second
	// sessionConcurrency bounds the capture sessions created at once.
	sessionConcurrency = 16
	// tokenTTL outlives any run (maxDuration plus setup).
	tokenTTL = 2 * time.Hour
	// fdHeadroom covers the descriptors besides the sockets: publishers,
	// setup connections, files.
	fdHeadroom = 256
)

// raiseFileLimit lifts RLIMIT_NOFILE to the hard limit and fails when that
// cannot cover need descriptors, saying what to raise.
func raiseFileLimit(need int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("reading the open-file limit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return fmt.Errorf("raising the open-file limit to %d: %w", lim.Max, err)
		}
	}
	if lim.Cur < uint64(need) {
		return fmt.Errorf("the open-file limit is %d (hard limit) but this run needs about %d: raise it (ulimit -Hn / limits.conf) for the bench and the server alike", lim.Cur, need)
	}
	return nil
}

// token returns a desktop JWT: minted with the server's secret, or a dev
// token from a --dev server.
func token(ctx context.Context, t Target) (string, error) {
	if t.Server == ServerCentrifugo {
		return centrifugoToken(t.JWTSecret, "bench", time.Now().Add(tokenTTL))
	}
	if t.JWTSecret != "" {
		v, err := auth.NewVerifier([]byte(t.JWTSecret))
		if err != nil {
			return "", err
		}
		return v.Issue(auth.Claims{Facility: "bench-facility", Provider: "bench-gp", Expires: time.Now().Add(tokenTTL)})
	}
	var reply struct {
		Token string `json:"token"`
	}
	if err := postJSON(ctx, t.URL+"/api/dev/token", "", nil, &reply); err != nil {
		return "", fmt.Errorf("fetching a dev token (is the server running with --dev?): %w", err)
	}
	if reply.Token == "" {
		return "", errors.New("fetching a dev token: empty reply")
	}
	return reply.Token, nil
}

// createChannels opens n capture sessions and returns their channels.
// Sockets may only subscribe to sessions of their own facility, so each
// bench channel is a real session, with an encounter id unique to the run.
func createChannels(ctx context.Context, t Target, tok string, n int) ([]string, error) {
	run := randomHex(4)
	if t.Server == ServerCentrifugo {
		// Centrifugo's channels need no setup: its config lets any
		// authenticated client subscribe in the bench's namespace.
		return centrifugoChannels(t.Namespace, run, n), nil
	}
	channels := make([]string, n)
	errs := make([]error, n)
	sem := make(chan struct{}, sessionConcurrency)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			req := map[string]string{
				"encounterId": fmt.Sprintf("bench-%s-%d", run, i),
				"patientId":   fmt.Sprintf("bench-pt-%d", i),
				// The capture API requires a name and an NHI; these are
				// fictional (Z-prefixed NHIs are never issued).
				"patientNhi":     "ZZZ0016",
				"patientDisplay": "Bench Patient",
			}
			var reply struct {
				Channel   string `json:"channel"`
				SessionID string `json:"sessionId"`
			}
			errs[i] = postJSON(ctx, t.URL+"/api/medtech/session/tokens", tok, req, &reply)
			channels[i] = reply.Channel
			if errs[i] == nil && channels[i] == "" && reply.SessionID != "" {
				channels[i] = "session:" + reply.SessionID
			}
			if errs[i] == nil && channels[i] == "" {
				errs[i] = errors.New("reply has no channel")
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("creating the bench's capture sessions: %w", err)
		}
	}
	return channels, nil
}

var setupClient = &http.Client{Timeout: requestTimeout}

// postJSON posts body (nil: none) with an optional bearer token and
// decodes a 2xx reply into out.
func postJSON(ctx context.Context, u, bearer string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := setupClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s: %s", req.URL.Path, resp.Status, bytes.TrimSpace(b))
	}
	return json.Unmarshal(b, out)
}

// sourceAddrs returns the local addresses to spread sockets over: the
// target's loopback network, 127.0.0.1 to 127.0.0.n. Nil means the
// system's choice (a target that is not an IPv4 loopback address).
func sourceAddrs(target string, n int) []*net.TCPAddr {
	u, err := url.Parse(target)
	if err != nil {
		return nil
	}
	ip := net.ParseIP(u.Hostname())
	if ip == nil || ip.To4() == nil || !ip.IsLoopback() || n <= 1 {
		return nil
	}
	addrs := make([]*net.TCPAddr, n)
	for i := range addrs {
		addrs[i] = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i))}
	}
	return addrs
}

// dialClients returns one HTTP client per source address for WebSocket
// dials (coder/websocket dials through an http.Client).
func dialClients(target string, n int) []*http.Client {
	addrs := sourceAddrs(target, n)
	if addrs == nil {
		return []*http.Client{{Transport: &http.Transport{DisableCompression: true}}}
	}
	clients := make([]*http.Client, len(addrs))
	for i, a := range addrs {
		d := &net.Dialer{LocalAddr: a, Timeout: requestTimeout}
		clients[i] = &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableCompression: true}}
	}
	return clients
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
