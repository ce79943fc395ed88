//go:build integration

package testutil

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestStartVersity(t *testing.T) {
	t.Parallel()
	var srv VersityServer
	t.Run("serves", func(t *testing.T) {
		srv = StartVersity(t)
		if !strings.HasPrefix(srv.Endpoint, "http://127.0.0.1:") {
			t.Fatalf("Endpoint %q is not on loopback", srv.Endpoint)
		}
		Check(t, "Region", "us-east-1", srv.Region)
		for field, v := range map[string]string{"AccessKey": srv.AccessKey, "SecretKey": srv.SecretKey, "Dir": srv.Dir} {
			if v == "" {
				t.Fatalf("%s is empty", field)
			}
		}
		resp, err := http.Get(srv.Endpoint + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		// Without credentials the gateway must refuse, proving it is S3 and not
		// some other listener on the port.
		Check(t, "anonymous GET status", http.StatusForbidden, resp.StatusCode)
		Check(t, "anonymous GET Server header", "VERSITYGW", resp.Header.Get("Server"))
	})
	// The subtest's cleanup has stopped the gateway; its port must be closed.
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(srv.Endpoint, "http://"), time.Second)
	if err == nil {
		conn.Close()
		t.Fatal("versitygw still listening after its test ended")
	}
}

func TestVersityBinaryFound(t *testing.T) {
	t.Parallel()
	if _, err := versityBinary(); err != nil {
		t.Fatalf("%v; make test installs it: %s", err, versityInstall)
	}
}
