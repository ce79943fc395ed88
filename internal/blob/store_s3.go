package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3Config configures the S3 store. Zero values are the AWS defaults, except
// Bucket, which is required.
type S3Config struct {
	// Endpoint is the base URL of an S3-compatible store (MinIO, versitygw, R2,
	// Ceph...). Empty means AWS S3 itself.
	Endpoint string
	// Region signs requests. Empty means the standard AWS chain (AWS_REGION, the
	// shared config file); "us-east-1" suits most S3-compatible stores.
	Region string
	// Bucket holds the objects. Required. A lifecycle rule expiring "sessions/"
	// after a day is a sensible backstop to the server's own sweeps.
	Bucket string
	// PathStyle addresses the bucket as endpoint/bucket/key rather than
	// bucket.endpoint/key; most self-hosted S3-compatible stores need it.
	PathStyle bool
	// AccessKeyID and SecretAccessKey are static credentials. Empty means the
	// standard AWS chain (environment, shared files, instance or task role).
	AccessKeyID     string
	SecretAccessKey string
	// CreateBucket creates Bucket at start if missing. For tests and development;
	// in production the bucket and its policies are provisioned separately.
	CreateBucket bool
	// MaxBytes is the largest object PresignUpload will sign. Zero means
	// DefaultMaxBytes.
	MaxBytes int64
	// Clock stamps presigned URLs. Nil means time.Now; tests set it in the past
	// to mint URLs the store sees as expired.
	Clock func() time.Time
}

// S3 is the Store on an S3-compatible object store, with SigV4 presigned URLs.
// Presigned uploads sign Content-Type and Content-Length as headers, so the store
// itself refuses another type or size (403 SignatureDoesNotMatch) and refuses
// the URL after expiry (403 AccessDenied).
type S3 struct {
	client   *s3.Client
	presign  *s3.PresignClient
	bucket   string
	maxBytes int64
	now      func() time.Time
}

var _ Store = (*S3)(nil)

// NewS3 builds the client and, with CreateBucket, the bucket. It does not contact
// the store otherwise; Ping does.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("blob: s3 store needs a bucket")
	}
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.AccessKeyID != "" || cfg.SecretAccessKey != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("blob: load AWS config: %w", err)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		// Checksums only where the API demands them: by default the SDK adds CRC
		// trailers and headers that several S3-compatible stores reject.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	s := &S3{client: client, bucket: cfg.Bucket, maxBytes: cfg.MaxBytes, now: cfg.Clock}
	if s.maxBytes <= 0 {
		s.maxBytes = DefaultMaxBytes
	}
	var presignOpts []func(*s3.PresignOptions)
	if s.now == nil {
		s.now = time.Now
	} else {
		presignOpts = append(presignOpts, func(o *s3.PresignOptions) {
			o.Presigner = clockPresigner{now: s.now, inner: v4.NewSigner(func(so *v4.SignerOptions) {
				so.DisableURIPathEscaping = true // as the SDK's default S3 presigner
			})}
		})
	}
	s.presign = s3.NewPresignClient(client, presignOpts...)
	if cfg.CreateBucket {
		if err := s.createBucket(ctx, awsCfg.Region); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *S3) createBucket(ctx context.Context, region string) error {
	in := &s3.CreateBucketInput{Bucket: aws.String(s.bucket)}
	if region != "" && region != "us-east-1" { // us-east-1 refuses an explicit constraint
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(region),
		}
	}
	_, err := s.client.CreateBucket(ctx, in)
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("blob: create bucket %s: %w", s.bucket, err)
	}
	return nil
}

// PresignUpload presigns a PUT with Content-Type and Content-Length among the
// signed headers: a request with another type or size no longer matches the
// signature, so the store refuses it before storing anything.
func (s *S3) PresignUpload(ctx context.Context, key, contentType string, size int64, ttl time.Duration) (Upload, error) {
	if err := checkUploadKey(key); err != nil {
		return Upload{}, err
	}
	if err := checkUpload(contentType, size, s.maxBytes, ttl); err != nil {
		return Upload{}, err
	}
	signedAt := s.now()
	req, err := s.presign.PresignPutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(key),
		ContentType:   aws.String(contentType),
		ContentLength: aws.Int64(size),
	}, s3.WithPresignExpires(ttl))
	if err != nil {
		return Upload{}, fmt.Errorf("blob: presign upload: %w", err)
	}
	return Upload{
		Method: req.Method,
		URL:    req.URL,
		// Content-Length is signed too, but every HTTP client (fetch, XHR) sets it
		// from the body and browsers forbid setting it by hand, so only
		// Content-Type is the client's to send.
		Headers: map[string]string{"Content-Type": contentType},
		// SigV4 counts expiry from the signing time in whole seconds.
		ExpiresAt: signedAt.UTC().Truncate(time.Second).Add(ttl.Truncate(time.Second)),
	}, nil
}

// PresignGet presigns a GET whose response is marked uncacheable, like Local's.
func (s *S3) PresignGet(ctx context.Context, key string, ttl time.Duration) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	if err := checkTTL(ttl); err != nil {
		return "", fmt.Errorf("blob: presign get: %w", err)
	}
	req, err := s.presign.PresignGetObject(ctx, &s3.GetObjectInput{
		Bucket:               aws.String(s.bucket),
		Key:                  aws.String(key),
		ResponseCacheControl: aws.String("private, no-store"),
	}, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("blob: presign get: %w", err)
	}
	return req.URL, nil
}

// Stat asks the store with HeadObject.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	if err := CheckKey(key); err != nil {
		return Info{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return Info{}, s3Error("stat", key, err)
	}
	return Info{Size: aws.ToInt64(out.ContentLength), ContentType: aws.ToString(out.ContentType)}, nil
}

// Open streams the object with GetObject; the body is read as the caller reads.
func (s *S3) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, s3Error("open", key, err)
	}
	return out.Body, nil
}

// Put streams r to the store with PutObject. A single PUT is atomic on S3: a
// body cut short fails the request and stores nothing. A body longer than size
// is only seen once size bytes are sent and stored, so that object is deleted
// again. The body is not seekable, so it is sent as UNSIGNED-PAYLOAD instead of
// being read twice to hash it for the signature; the request itself is signed.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if err := checkStoredKey(key); err != nil {
		return err
	}
	if !validContentType(contentType) {
		return fmt.Errorf("%w: content type must be type/subtype", ErrInvalidUpload)
	}
	body := &exactReader{r: io.LimitReader(r, size), want: size}
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(key),
		Body:          body,
		ContentLength: aws.Int64(size),
		ContentType:   aws.String(contentType),
	}, s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware))
	switch {
	case body.err != nil:
		return fmt.Errorf("blob: s3 put %s: %w", key, body.err)
	case err != nil:
		return fmt.Errorf("blob: s3 put %s: %w", key, err)
	case extraByte(r):
		if err := s.Delete(ctx, key); err != nil {
			return fmt.Errorf("blob: s3 put %s: %w, and the object stored was not deleted: %w", key, ErrSize, err)
		}
		return fmt.Errorf("blob: s3 put %s: %w: more than %d bytes", key, ErrSize, size)
	}
	return nil
}

// CopyUpload copies the upload to the stored key inside the store
// (CopyObject), with contentType replacing whatever metadata the upload
// carried. A single CopyObject is atomic on S3 and durable when it answers.
func (s *S3) CopyUpload(ctx context.Context, uploadKey, storedKey, contentType string) error {
	if err := checkCopy(uploadKey, storedKey, contentType); err != nil {
		return err
	}
	// The source is "bucket/key", URL-encoded: a bucket name and a checked
	// key ([A-Za-z0-9._-] and slashes) have nothing to encode.
	_, err := s.client.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket:            aws.String(s.bucket),
		Key:               aws.String(storedKey),
		CopySource:        aws.String(s.bucket + "/" + uploadKey),
		ContentType:       aws.String(contentType),
		MetadataDirective: types.MetadataDirectiveReplace,
	})
	if err != nil {
		return s3Error("copy", uploadKey, err)
	}
	return nil
}

// Delete removes one object; S3 itself answers success for a missing key.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		if err := s3Error("delete", key, err); !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}

// DeletePrefix lists the prefix page by page and deletes each page (at most 1000
// keys, the DeleteObjects limit) in one request.
func (s *S3) DeletePrefix(ctx context.Context, prefix string) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(prefix),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("blob: list %s: %w", prefix, err)
		}
		if len(page.Contents) == 0 {
			continue
		}
		ids := make([]types.ObjectIdentifier, len(page.Contents))
		for i, o := range page.Contents {
			ids[i] = types.ObjectIdentifier{Key: o.Key}
		}
		out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(s.bucket),
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return fmt.Errorf("blob: delete %s: %w", prefix, err)
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return fmt.Errorf("blob: delete %s: %d objects failed, first %s: %s",
				prefix, len(out.Errors), aws.ToString(e.Key), aws.ToString(e.Code))
		}
	}
	return nil
}

// Ping checks that the bucket exists and the credentials reach it.
func (s *S3) Ping(ctx context.Context) error {
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)}); err != nil {
		return fmt.Errorf("blob: s3 bucket %s: %w", s.bucket, err)
	}
	return nil
}

// s3Error maps a missing object to ErrNotFound. HeadObject has no body, so its
// 404 arrives as "NotFound" rather than "NoSuchKey". A missing bucket
// (NoSuchBucket) stays an error: it is a broken deployment, not a missing image.
// Stat cannot tell the two apart (a HEAD 404 names neither); Ping, behind
// /readyz, reports the missing bucket.
func s3Error(op, key string, err error) error {
	var api smithy.APIError
	if errors.As(err, &api) && (api.ErrorCode() == "NotFound" || api.ErrorCode() == "NoSuchKey") {
		return fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	return fmt.Errorf("blob: s3 %s %s: %w", op, key, err)
}

// clockPresigner signs with the store's clock instead of the SDK's, so tests can
// mint URLs that are already expired without sleeping.
type clockPresigner struct {
	inner s3.HTTPPresignerV4
	now   func() time.Time
}

func (p clockPresigner) PresignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request,
	payloadHash, service, region string, _ time.Time, optFns ...func(*v4.SignerOptions),
) (string, http.Header, error) {
	return p.inner.PresignHTTP(ctx, creds, r, payloadHash, service, region, p.now(), optFns...)
}
