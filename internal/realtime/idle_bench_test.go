package realtime

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/handoff-health/handoff/internal/testutil"
)

// The idle-socket benchmark measures the server's memory per connected,
// subscribed, idle socket. Its clients run in a child process (this test
// binary re-executed, see TestMain in main_test.go) so only server memory
// is counted.
const (
	envIdleURL   = "HANDOFF_IDLE_URL"
	envIdleCount = "HANDOFF_IDLE_COUNT"
	envIdleToken = "HANDOFF_IDLE_TOKEN"
)

// idleClients opens n subscribed sockets, says "ready", and holds them
// until stdin closes.
func idleClients(url, token string, n int) int {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 100)
	conns := make([]*websocket.Conn, n)
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
			if err != nil {
				errs <- err
				return
			}
			conns[i] = ws
			_ = ws.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","channel":"session:idle-`+strconv.Itoa(i)+`"}`))
			for range 2 { // connected, subscribed
				if _, _, err := ws.Read(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		fmt.Fprintln(os.Stderr, "idle client:", err)
		return 1
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// BenchmarkIdleSockets reports the server's RSS and Go heap+stack per
// idle socket for 10,000 sockets (HANDOFF_IDLE_SOCKETS overrides). It
// does the work once, whatever b.N.
func BenchmarkIdleSockets(b *testing.B) {
	n := 10_000
	if s := os.Getenv("HANDOFF_IDLE_SOCKETS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	v := newVerifier(b)
	node := startNode(b, memoryHub(b), v, Config{})
	rss0, go0 := serverMemory(b)

	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), envIdleURL+"="+node.url, envIdleCount+"="+strconv.Itoa(n),
		envIdleToken+"="+issue(b, v, "f", "p", time.Hour))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		b.Fatalf("client process: %q %v", line, err)
	}
	testutil.Eventually(b, "all sockets are registered", func() bool { return countConns(node) == n })
	rss1, go1 := serverMemory(b)
	b.ReportMetric(float64(rss1-rss0)/float64(n), "rss-B/socket")
	b.ReportMetric(float64(go1-go0)/float64(n), "go-B/socket")
	b.ReportMetric(float64(runtime.NumGoroutine())/float64(n), "goroutines/socket")
	if f := os.Getenv("HANDOFF_IDLE_HEAPPROFILE"); f != "" {
		out, _ := os.Create(f)
		_ = pprof.Lookup("heap").WriteTo(out, 0)
		out.Close()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.Logf("stack in use %d B/socket, heap in use %d B/socket", ms.StackInuse/uint64(n), ms.HeapInuse/uint64(n))
	}
	b.ReportMetric(0, "ns/op")
}

// serverMemory returns this process's resident set and the Go runtime's
// heap-in-use plus stacks, after a full collection returned what it can.
func serverMemory(b *testing.B) (rss, goMem int64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			rss = kb << 10
		}
	}
	return rss, int64(ms.HeapInuse + ms.StackInuse)
}
