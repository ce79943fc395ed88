package testutil

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"go/build"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// versityInstall is what a developer runs when the binary is missing; the Makefile's
// test target runs the same command.
const versityInstall = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// versityStartTimeout bounds how long a fresh gateway may take to answer; it is
// generous because the machine running tests may be busy compiling other packages.
const versityStartTimeout = 20 * time.Second

// VersityServer is a running versitygw S3 gateway with a posix backend, owned by one test.
type VersityServer struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Region    string // always "us-east-1"
	Dir       string // posix backend root; each subdirectory is a bucket
}

// StartVersity starts a versitygw on a free local port over a fresh temporary
// directory and stops it when the test ends. A missing binary fails the test rather
// than skipping it: S3 behaviour is only trusted when checked against a real store.
func StartVersity(t testing.TB) VersityServer {
	t.Helper()
	bin, err := versityBinary()
	if err != nil {
		t.Fatalf("versitygw not found (%v); make test installs it: %s", err, versityInstall)
	}
	srv := VersityServer{
		AccessKey: "handoff" + rand.Text()[:8],
		SecretKey: rand.Text(),
		Region:    "us-east-1",
		Dir:       t.TempDir(),
	}
	// A free port found by listening and closing can be taken by someone else
	// before versitygw binds it, so a failed start is retried on a new port.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		var stop func()
		srv.Endpoint, stop, lastErr = startVersityOnce(bin, srv)
		if lastErr == nil {
			t.Cleanup(stop)
			return srv
		}
	}
	t.Fatalf("start versitygw: %v", lastErr)
	return VersityServer{}
}

// startVersityOnce runs one gateway process and waits for it to answer HTTP.
func startVersityOnce(bin string, srv VersityServer) (endpoint string, stop func(), err error) {
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	out := &lockedBuffer{}
	cmd := exec.Command(bin,
		"--access", srv.AccessKey, "--secret", srv.SecretKey,
		"--region", srv.Region, "--port", addr, "--quiet",
		"posix", srv.Dir)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("run %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop = func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	endpoint = "http://" + addr
	if err := waitHTTP(endpoint, exited); err != nil {
		stop()
		return "", nil, fmt.Errorf("%w; output:\n%s", err, out.String())
	}
	return endpoint, stop, nil
}

// waitHTTP polls until the gateway answers any HTTP response (an unauthenticated
// request gets 403, which is enough to know it serves).
func waitHTTP(endpoint string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(versityStartTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("versitygw exited before serving")
		default:
		}
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, endpoint+"/", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("versitygw did not answer on %s within %s", endpoint, versityStartTimeout)
}

// versityBinary looks in PATH first, then where `go install` puts binaries.
func versityBinary() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	var candidates []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		candidates = append(candidates, filepath.Join(gobin, "versitygw"))
	}
	for _, gopath := range filepath.SplitList(build.Default.GOPATH) {
		candidates = append(candidates, filepath.Join(gopath, "bin", "versitygw"))
	}
	for _, c := range candidates {
		if fi, err := os.Stat(c); err == nil && !fi.IsDir() {
			return c, nil
		}
	}
	return "", fmt.Errorf("not in PATH nor in %v", candidates)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// lockedBuffer collects process output written from exec's copying goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
