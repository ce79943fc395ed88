//go:build integration

package blob

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-cmp/cmp"
	"github.com/handoff-health/handoff/internal/testutil"
)

func init() {
	storeImpls = append(storeImpls, storeImpl{"s3", func(t *testing.T) newStoreFunc {
		v := testutil.StartVersity(t)
		return func(t *testing.T, clock func() time.Time) Store { return newTestS3(t, v, clock) }
	}})
}

func newTestS3(t *testing.T, v testutil.VersityServer, clock func() time.Time) *S3 {
	t.Helper()
	s, err := NewS3(context.Background(), S3Config{
		Endpoint: v.Endpoint, Region: v.Region, PathStyle: true,
		Bucket:      "test-" + strings.ToLower(rand.Text()),
		AccessKeyID: v.AccessKey, SecretAccessKey: v.SecretKey,
		CreateBucket: true, MaxBytes: 1 << 20, Clock: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestS3 covers what only the S3 store does; shared behaviour is in
// TestStoreContract. One versitygw serves every subtest, each with its own bucket.
func TestS3(t *testing.T) {
	t.Parallel()
	v := testutil.StartVersity(t)
	for _, tc := range []struct {
		name string
		test func(t *testing.T, v testutil.VersityServer)
	}{
		{"expired download", testS3ExpiredDownload},
		{"delete prefix pages through listings", testS3DeletePrefixPages},
		{"missing bucket", testS3MissingBucket},
		{"wrong credentials", testS3WrongCredentials},
		{"create bucket twice", testS3CreateBucketTwice},
	} {
		t.Run(tc.name, func(t *testing.T) { t.Parallel(); tc.test(t, v) })
	}
	if _, err := NewS3(context.Background(), S3Config{Endpoint: v.Endpoint}); err == nil ||
		!strings.Contains(err.Error(), "bucket") {
		t.Fatalf("NewS3 without a bucket: %v", err)
	}
}

func testS3ExpiredDownload(t *testing.T, v testutil.VersityServer) {
	var signedAgo atomic.Int64
	s := newTestS3(t, v, func() time.Time { return time.Now().Add(-time.Duration(signedAgo.Load())) })
	key := UploadKey("s", "i")
	put(t, s, key, testutil.JPEGPrefixed(10, 0))
	signedAgo.Store(int64(time.Hour))
	got := httpGet(t, mustPresignGet(t, s, key))
	testutil.Equal(t, "expired GET", refusal{403, "AccessDenied"}, refusal{got.status, errorCode(string(got.body))}, cmp.AllowUnexported(refusal{}))
}

func testS3DeletePrefixPages(t *testing.T, v testutil.VersityServer) {
	s := newTestS3(t, v, nil)
	// versitygw's posix backend serves files put in the bucket directory as
	// objects, which makes more than one listing page (1000 keys) cheap to set up.
	dir := filepath.Join(v.Dir, s.bucket, "sessions", "big")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 1005 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("img%04d", i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	put(t, s, UploadKey("keep", "img"), testutil.JPEGPrefixed(10, 0))
	ctx := context.Background()
	if err := s.DeletePrefix(ctx, SessionPrefix("big")); err != nil {
		t.Fatal(err)
	}
	out, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, o := range out.Contents {
		left = append(left, aws.ToString(o.Key))
	}
	testutil.Equal(t, "objects left", []string{UploadKey("keep", "img")}, left)
}

func testS3MissingBucket(t *testing.T, v testutil.VersityServer) {
	ctx := context.Background()
	s, err := NewS3(ctx, S3Config{
		Endpoint: v.Endpoint, Region: v.Region, PathStyle: true, Bucket: "never-created",
		AccessKeyID: v.AccessKey, SecretAccessKey: v.SecretKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping succeeded without a bucket")
	}
	// A broken deployment must not look like a missing image.
	if _, err := s.Open(ctx, UploadKey("s", "i")); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Open without a bucket: %v", err)
	}
}

func testS3WrongCredentials(t *testing.T, v testutil.VersityServer) {
	ctx := context.Background()
	s, err := NewS3(ctx, S3Config{
		Endpoint: v.Endpoint, Region: v.Region, PathStyle: true, Bucket: newTestS3(t, v, nil).bucket,
		AccessKeyID: v.AccessKey, SecretAccessKey: "not-the-secret",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping succeeded with a wrong secret")
	}
	if _, err := s.Stat(ctx, UploadKey("s", "i")); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Stat with a wrong secret: %v", err)
	}
}

func testS3CreateBucketTwice(t *testing.T, v testutil.VersityServer) {
	_, err := NewS3(context.Background(), S3Config{
		Endpoint: v.Endpoint, Region: v.Region, PathStyle: true, Bucket: newTestS3(t, v, nil).bucket,
		AccessKeyID: v.AccessKey, SecretAccessKey: v.SecretKey, CreateBucket: true,
	})
	if err != nil {
		t.Fatalf("second CreateBucket: %v", err)
	}
}
