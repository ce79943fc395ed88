// Package testutil starts the real servers that handoff's tests run
// against (redis-server, versitygw) on free loopback ports.
package testutil

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Redis is a redis-server owned by one test, on a free loopback port with
// its own temp dir. It can be killed and restarted to test outages.
type Redis struct {
	t    testing.TB
	Addr string
	Port int
	Dir  string
	args []string // extra redis-server flags, e.g. cluster mode
	mu   sync.Mutex
	cmd  *exec.Cmd
}

// RedisBinary finds redis-server or fails the test with how to install it
// (also for tests that run it in another mode, e.g. a Sentinel).
func RedisBinary(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"redis-server", "/usr/bin/redis-server", "/usr/local/bin/redis-server"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatalf("redis-server not found: `make test` installs it (apt-get install -y redis-server); " +
		"tests never skip for a missing dependency")
	return ""
}

// StartRedis starts a fresh redis-server and stops it when the test ends.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	return StartRedisWith(t)
}

// StartRedisWith starts a fresh redis-server with extra flags, which
// override the defaults (no persistence): e.g. "--appendonly", "yes" for a
// server that keeps its data over a kill -9, or "--replicaof" for a
// replica. It stops when the test ends.
func StartRedisWith(t testing.TB, args ...string) *Redis {
	t.Helper()
	r := &Redis{t: t, Dir: t.TempDir(), Port: FreePort(t), args: args}
	r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port))
	r.Start()
	t.Cleanup(r.Kill)
	return r
}

// Pause stops the server's process (SIGSTOP) without killing it: it
// answers nothing, and a replica falls behind its primary, until Resume.
func (r *Redis) Pause() { r.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (r *Redis) Resume() { r.signal(syscall.SIGCONT) }

func (r *Redis) signal(sig syscall.Signal) {
	r.t.Helper()
	r.mu.Lock()
	cmd := r.cmd
	r.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		r.t.Fatalf("%s is not running", r)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		r.t.Fatalf("signal %v to %s: %v", sig, r, err)
	}
}

// Start launches the server (again) on the same port and waits for it.
func (r *Redis) Start() {
	r.t.Helper()
	bin := RedisBinary(r.t)
	args := append([]string{
		"--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1",
		"--dir", r.Dir, "--save", "", "--appendonly", "no",
		"--protected-mode", "no", "--daemonize", "no", "--loglevel", "warning",
	}, r.args...)
	cmd := exec.Command(bin, args...)
	logf, err := os.Create(filepath.Join(r.Dir, "redis.log"))
	if err != nil {
		r.t.Fatalf("redis log: %v", err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	r.mu.Lock()
	r.cmd = cmd
	r.mu.Unlock()
	go func() { _ = cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if pingRedis(r.Addr) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	logText, _ := os.ReadFile(filepath.Join(r.Dir, "redis.log"))
	r.t.Fatalf("redis-server on %s did not answer PING within 30s; its log:\n%s", r.Addr, logText)
}

// Kill stops the server abruptly (SIGKILL); its data is lost.
func (r *Redis) Kill() {
	r.mu.Lock()
	cmd := r.cmd
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Kill()
	for i := 0; i < 200 && pingRedis(r.Addr); i++ {
		time.Sleep(10 * time.Millisecond)
	}
}

// Restart kills the server and starts an empty one on the same address
// (unless Snapshot left a dump behind: then it starts from that).
func (r *Redis) Restart() {
	r.Kill()
	r.Start()
}

// Snapshot writes the dataset to disk now (SAVE) and returns a copy of the
// dump, for RestartFrom. Writes after it are in memory only.
func (r *Redis) Snapshot() string {
	r.t.Helper()
	if reply := redisCommand(r.Addr, "SAVE"); !strings.HasPrefix(reply, "+OK") {
		r.t.Fatalf("SAVE on %s: %q", r.Addr, reply)
	}
	b, err := os.ReadFile(filepath.Join(r.Dir, "dump.rdb"))
	if err != nil {
		r.t.Fatalf("read the snapshot: %v", err)
	}
	f, err := os.CreateTemp(r.Dir, "snapshot-*.rdb")
	if err != nil {
		r.t.Fatalf("keep the snapshot: %v", err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		r.t.Fatalf("keep the snapshot: %v", err)
	}
	return f.Name()
}

// RestartFrom rolls the server back to a snapshot taken earlier, as a
// crash after an old SAVE does: it kills the server (SIGKILL, so it saves
// nothing), puts the snapshot back as its dump and starts it, on the same
// address. Every write after the snapshot is lost.
func (r *Redis) RestartFrom(snapshot string) {
	r.t.Helper()
	r.Kill()
	b, err := os.ReadFile(snapshot)
	if err != nil {
		r.t.Fatalf("read the snapshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(r.Dir, "dump.rdb"), b, 0o600); err != nil {
		r.t.Fatalf("restore the snapshot: %v", err)
	}
	r.Start()
}

// pingRedis checks the server answers.
func pingRedis(addr string) bool { return strings.HasPrefix(redisCommand(addr, "PING"), "+PONG") }

// redisCommand sends one inline command and returns the first line of the
// reply, or "" when the server cannot be reached. It speaks just enough
// RESP for PING and SAVE.
func redisCommand(addr, cmd string) string {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return ""
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return ""
	}
	line, _ := bufio.NewReader(c).ReadString('\n')
	return line
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// String helps failure messages name the server.
func (r *Redis) String() string { return fmt.Sprintf("redis-server %s", r.Addr) }
