package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3 is a Store in an S3 bucket, under an optional key prefix.
type S3 struct {
	client   *s3.Client
	presign  *s3.PresignClient
	uploader *transfermanager.Client
	bucket   string
	prefix   string
}

// openS3 opens s3://bucket/prefix?endpoint=…&region=…&path_style=true.
func openS3(ctx context.Context, u *url.URL, o options) (*S3, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("blob store URL %q: no bucket", u.String())
	}
	q := u.Query()
	var loadOpts []func(*awsconfig.LoadOptions) error
	if r := q.Get("region"); r != "" {
		loadOpts = append(loadOpts, awsconfig.WithRegion(r))
	}
	if o.accessKey != "" {
		loadOpts = append(loadOpts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(o.accessKey, o.secretKey, "")))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("error loading AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	pathStyle, _ := strconv.ParseBool(q.Get("path_style"))
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if ep := q.Get("endpoint"); ep != "" {
			o.BaseEndpoint = aws.String(ep)
		}
		o.UsePathStyle = pathStyle
		// Since early 2025 the SDK adds CRC checksums (and streaming
		// checksum trailers) to every upload by default. Several
		// S3-compatible servers, versitygw among them, reject those
		// requests; asking for checksums only where the API requires them
		// works with AWS and with them alike.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	return &S3{
		client:  client,
		presign: s3.NewPresignClient(client),
		uploader: transfermanager.New(client, func(o *transfermanager.Options) {
			o.Concurrency = 2 // parts in memory at once: bounded, whatever the object size
		}),
		bucket: u.Host,
		prefix: strings.Trim(u.Path, "/"),
	}, nil
}

func (s *S3) objectKey(key string) (string, error) {
	if err := ValidKey(key); err != nil {
		return "", err
	}
	if s.prefix == "" {
		return key, nil
	}
	return path.Join(s.prefix, key), nil
}

func (s *S3) blobKey(objectKey string) string {
	if s.prefix == "" {
		return objectKey
	}
	return strings.TrimPrefix(objectKey, s.prefix+"/")
}

func isNotFound(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NoSuchKey", "NotFound", "404":
			return true
		}
	}
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	return errors.As(err, &nsk) || errors.As(err, &nf)
}

// Put implements Store. Small blobs of known size go up in one request;
// anything else streams in parts, so memory stays bounded for a dataset
// export of many gigabytes.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	k, err := s.objectKey(key)
	if err != nil {
		return err
	}
	if size >= 0 && size <= 16<<20 {
		_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &s.bucket, Key: &k, Body: r, ContentLength: aws.Int64(size), ContentType: optionalString(contentType),
		})
	} else {
		_, err = s.uploader.UploadObject(ctx, &transfermanager.UploadObjectInput{
			Bucket: &s.bucket, Key: &k, Body: r, ContentType: optionalString(contentType),
		})
	}
	if err != nil {
		return fmt.Errorf("error putting blob %s: %w", key, err)
	}
	return nil
}

func optionalString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Get implements Store.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	k, err := s.objectKey(key)
	if err != nil {
		return nil, Info{}, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &k})
	if isNotFound(err) {
		return nil, Info{}, fmt.Errorf("blob %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, Info{}, fmt.Errorf("error getting blob %s: %w", key, err)
	}
	return out.Body, Info{Key: key, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
}

// Stat implements Store.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	k, err := s.objectKey(key)
	if err != nil {
		return Info{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &k})
	if isNotFound(err) {
		return Info{}, fmt.Errorf("blob %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return Info{}, fmt.Errorf("error reading blob %s: %w", key, err)
	}
	return Info{Key: key, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
}

// Delete implements Store.
func (s *S3) Delete(ctx context.Context, key string) error {
	k, err := s.objectKey(key)
	if err != nil {
		return err
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &k}); err != nil && !isNotFound(err) {
		return fmt.Errorf("error deleting blob %s: %w", key, err)
	}
	return nil
}

// List implements Store.
func (s *S3) List(ctx context.Context, prefix string, fn func(Info) error) error {
	full := prefix
	if s.prefix != "" {
		full = s.prefix + "/" + prefix
	}
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &full})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("error listing blobs under %q: %w", prefix, err)
		}
		for _, o := range page.Contents {
			if err := fn(Info{Key: s.blobKey(aws.ToString(o.Key)), Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// URL implements Store with a presigned GET.
func (s *S3) URL(ctx context.Context, key string, ttl time.Duration) (string, bool, error) {
	k, err := s.objectKey(key)
	if err != nil {
		return "", false, err
	}
	req, err := s.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &k}, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", false, fmt.Errorf("error presigning blob %s: %w", key, err)
	}
	return req.URL, true, nil
}

// Ping implements Store: the bucket must answer.
func (s *S3) Ping(ctx context.Context) error {
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket}); err != nil {
		return fmt.Errorf("bucket %s does not answer: %w", s.bucket, err)
	}
	return nil
}
