//go:build integration

package chaos

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/testutil"
)

// deployment is two handoff nodes sharing Redis and one data directory
// (images and the ALEX outbox), behind a balancer whose address is their
// public URL.
type deployment struct {
	t      *testing.T
	nodes  []*node
	bal    *balancer
	url    string // http://<balancer>
	secret string // the nodes' JWT secret
	apiKey string // keyName:secret of the publish API
	jwt    string // a desktop token of facility chaosFacility
}

const chaosFacility = "F-CHAOS-1"

// readyBound bounds a node's start; a failure bound, not a speed claim.
const readyBound = 30 * time.Second

// newDeployment starts two nodes on redisAddrs (and a Sentinel master
// name when sentinelMaster is set) behind a balancer.
func newDeployment(t *testing.T, redisAddrs, sentinelMaster string) *deployment {
	t.Helper()
	d := &deployment{t: t, bal: startBalancer(t), secret: randomHex(t, 32), apiKey: "probe:" + randomHex(t, 16)}
	d.url = "http://" + d.bal.addr()
	dataDir := t.TempDir()
	prefix := "chaos-" + randomHex(t, 4)
	var addrs []string
	for i := range 2 {
		port := testutil.FreePort(t)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		args := []string{"serve", "--addr", addr, "--public-url", d.url, "--data-dir", dataDir,
			"--redis-addrs", redisAddrs, "--redis-prefix", prefix, "--log-level", "warn", "--log-format", "json",
			"--max-conns-per-addr", "0", "--max-unauth-sockets-per-addr", "1000", "--claims-per-minute", "-1",
			"--shutdown-timeout", "2s"}
		if sentinelMaster != "" {
			args = append(args, "--redis-master", sentinelMaster)
		}
		n := &node{t: t, name: fmt.Sprintf("node%d", i+1), addr: addr, args: args,
			env:     []string{"HANDOFF_JWT_SECRET=" + d.secret, "HANDOFF_API_KEYS=" + d.apiKey},
			logPath: filepath.Join(t.TempDir(), "node.log")}
		n.start()
		t.Cleanup(n.kill)
		d.nodes = append(d.nodes, n)
		addrs = append(addrs, addr)
	}
	d.bal.serve(addrs...)
	v, err := auth.NewVerifier([]byte(d.secret))
	if err != nil {
		t.Fatal(err)
	}
	if d.jwt, err = v.Issue(auth.Claims{Facility: chaosFacility, Provider: "gp-chaos", Expires: time.Now().Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return d
}

// node is one `handoff serve` process, which the test can kill -9 and
// start again on the same address.
type node struct {
	t       *testing.T
	name    string
	addr    string
	args    []string
	env     []string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// start runs the binary and waits until /readyz answers 200.
func (n *node) start() {
	n.t.Helper()
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		n.t.Fatal(err)
	}
	cmd := exec.Command(handoffBin, n.args...)
	cmd.Env = append(cleanEnv(), n.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		n.t.Fatalf("start %s: %v", n.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	n.mu.Lock()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()
	deadline := time.Now().Add(readyBound)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			n.t.Fatalf("%s exited at start:\n%s", n.name, n.logTail())
		default:
		}
		if n.ready() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.t.Fatalf("%s was not ready within %v:\n%s", n.name, readyBound, n.logTail())
}

func (n *node) ready() bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + n.addr + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// kill ends the process with SIGKILL: no graceful shutdown, sockets reset.
func (n *node) kill() {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// logTail is the end of the node's log, for failure messages. The nodes
// log at warn, and handoff logs no PHI or tokens.
func (n *node) logTail() string {
	b, _ := os.ReadFile(n.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}

// cleanEnv is this process's environment without HANDOFF_* variables, so
// nothing in the caller's shell points a node elsewhere.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HANDOFF_") {
			env = append(env, kv)
		}
	}
	return env
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
