//go:build integration

package ablyrt_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/ablyrt"
	"github.com/handoff-health/handoff/internal/testutil"
)

// jsDriver runs testdata/ablyjs-faults.mjs and sends it one command at a
// time.
type jsDriver struct {
	t     *testing.T
	stdin io.Writer
	out   *bufio.Scanner
}

func startJSDriver(t *testing.T, version string, env ...string) *jsDriver {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("testdata", "ablyjs-faults.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	cmd := exec.CommandContext(ctx, testutil.Node(t), script)
	cmd.Env = append(append(os.Environ(), "ABLY_JS="+testutil.AblyJS(t, version), "ABLY_KEY="+testKey), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &testutil.LogBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		if err := cmd.Wait(); err != nil && !t.Failed() {
			t.Errorf("ably-js %s: %v\nstderr:\n%s", version, err, stderr.String())
		}
		cancel()
	})
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	return &jsDriver{t: t, stdin: stdin, out: sc}
}

// do sends a command and decodes its answer into out (nil: ignored).
func (d *jsDriver) do(cmd map[string]any, out any) {
	d.t.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := d.stdin.Write(append(b, '\n')); err != nil {
		d.t.Fatalf("%s: %v", b, err)
	}
	if !d.out.Scan() {
		d.t.Fatalf("%s: ably-js ended without an answer", b)
	}
	var ans struct {
		OK    json.RawMessage `json:"ok"`
		Error *jsError        `json:"error"`
	}
	if err := json.Unmarshal(d.out.Bytes(), &ans); err != nil {
		d.t.Fatalf("%s: answer %q: %v", b, d.out.Text(), err)
	}
	if ans.Error != nil {
		d.t.Fatalf("%s: %+v", b, *ans.Error)
	}
	if out != nil {
		if err := json.Unmarshal(ans.OK, out); err != nil {
			d.t.Fatalf("%s: %v", b, err)
		}
	}
}

type jsError struct {
	Code       int    `json:"code"`
	StatusCode int    `json:"statusCode"`
	Message    string `json:"message"`
}

// TestAblyJSFaults: ably-js 2.28.0 in Node, JSON and msgpack, through the
// same faults as the ably-go tests (fault_test.go). The path stalls until
// ably-js's idle timer starves (DISCONNECTED 80003), then it resumes the
// same connection; one REST publish is answered 401 with Ably's 40142 and
// ably-js renews its token and retries; another has its answer lost after
// the node published it, and the retry's idempotent id is deduplicated.
// Everything published meanwhile, by REST on another client, arrives
// once, in order.
func TestAblyJSFaults(t *testing.T) {
	t.Parallel()
	n := startNode(t, startHub(t), ablyrt.Config{MaxIdleInterval: time.Second})
	addr := n.http.Listener.Addr().String()
	const version = "2.28.0"
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			channel := "session:jsfault-" + f.name
			tcp := testutil.StartProxy(t, addr)
			hp := testutil.StartHTTPProxy(t, addr)
			js := startJSDriver(t, version, "FORMAT="+f.name, "CHANNEL="+channel, "NODE_PORT="+strconv.Itoa(n.port),
				"TCP_PROXY_PORT="+strconv.Itoa(tcp.Port()), "HTTP_PROXY_PORT="+strconv.Itoa(hp.Port()))
			js.do(map[string]any{"cmd": "start"}, nil)
			rest := restJSON(t, n.port).Channels.Get(channel)
			next := 0
			publish := func(k int) {
				t.Helper()
				for range k {
					if err := rest.Publish(ctx(t), "m", strconv.Itoa(next)); err != nil {
						t.Fatal(err)
					}
					next++
				}
			}
			publish(5)
			js.do(map[string]any{"cmd": "waitCount", "n": next}, nil)

			tcp.Stall()
			publish(10)
			js.do(map[string]any{"cmd": "waitDisconnected", "code": 80003}, nil)
			publish(5)
			tcp.Unstall()
			publish(5)
			js.do(map[string]any{"cmd": "waitCount", "n": next}, nil)
			var again struct {
				SameConnection bool `json:"sameConnection"`
			}
			js.do(map[string]any{"cmd": "waitConnected"}, &again)
			if !again.SameConnection {
				t.Error("after the stall the connection was not resumed")
			}

			for _, forward := range []bool{false, true} {
				hp.FailNext(testutil.HTTPFault{
					Match: func(r *http.Request) bool {
						return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/messages")
					},
					Status: http.StatusUnauthorized, Forward: forward,
					Body: []byte(`{"error":{"code":40142,"statusCode":401,"message":"token expired","href":"https://help.ably.io/error/40142"}}`),
					Header: http.Header{"Content-Type": {"application/json"},
						"X-Ably-Errorcode": {"40142"}, "X-Ably-Errormessage": {"token expired"}},
				})
				js.do(map[string]any{"cmd": "restPublish", "from": next, "to": next + 5}, nil)
				next += 5
			}
			js.do(map[string]any{"cmd": "waitCount", "n": next}, nil)

			var rep struct {
				Received []any `json:"received"`
				States   []struct {
					State string `json:"state"`
					Code  int    `json:"code"`
				} `json:"states"`
				AuthCalls      int  `json:"authCalls"`
				SameConnection bool `json:"sameConnection"`
			}
			js.do(map[string]any{"cmd": "report"}, &rep)
			want := make([]any, next)
			for i := range want {
				want[i] = strconv.Itoa(i)
			}
			testutil.Equal(t, "every message once, in order", want, rep.Received)
			testutil.Equal(t, "requests answered 401", 2, hp.Faulted())
			// The first token, and one renewal per 401.
			testutil.Equal(t, "authCallback calls", 3, rep.AuthCalls)
			if !rep.SameConnection {
				t.Errorf("the connection was replaced: states %+v", rep.States)
			}
			t.Logf("ably-js %s %s connection states: %+v", version, f.name, rep.States)
		})
	}
}
