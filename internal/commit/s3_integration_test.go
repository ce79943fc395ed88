//go:build integration

package commit

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/handoff-health/handoff/internal/blob"
	"github.com/handoff-health/handoff/internal/testutil"
)

// S3 on a real versitygw joins the integrity tests under the integration tag;
// each store made gets its own bucket.
func init() { blobKindSetups = append(blobKindSetups, s3BlobKind) }

func s3BlobKind(t *testing.T) blobKind {
	v := testutil.StartVersity(t)
	return blobKind{"s3", func(t *testing.T) blob.Store {
		s, err := blob.NewS3(context.Background(), blob.S3Config{
			Endpoint: v.Endpoint, Region: v.Region, PathStyle: true,
			Bucket:      "commit-" + strings.ToLower(rand.Text()),
			AccessKeyID: v.AccessKey, SecretAccessKey: v.SecretKey, CreateBucket: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}}
}
