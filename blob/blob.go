// Package blob stores image originals and derived files behind one small
// interface, with two backends: a folder on disk (the default for a laptop)
// and any S3-compatible store. Keys are content addresses: the SHA-256 of the
// bytes in hex, under a prefix that says what the bytes are.
package blob

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"time"
)

// ErrNotFound is returned (wrapped) for a key that holds nothing.
var ErrNotFound = errors.New("blob not found")

// Info describes a stored blob.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Store is a blob store.
type Store interface {
	// Put stores r under key, replacing what was there. size is the length
	// of r, or -1 when unknown. A reader is never visible half written.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	// Get opens a blob; the caller closes it.
	Get(ctx context.Context, key string) (io.ReadCloser, Info, error)
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes a blob; a missing one is not an error.
	Delete(ctx context.Context, key string) error
	// List calls fn for every blob whose key starts with prefix.
	List(ctx context.Context, prefix string, fn func(Info) error) error
	// URL returns a short-lived URL a browser can fetch the blob from, when
	// the backend has such URLs (S3); ok is false otherwise and the caller
	// serves the bytes itself.
	URL(ctx context.Context, key string, ttl time.Duration) (u string, ok bool, err error)
	// Ping checks the store answers (for /readyz).
	Ping(ctx context.Context) error
}

// Open opens the store a URL names:
//
//	file:///abs/path                     a folder
//	s3://bucket/prefix?endpoint=…&region=…&path_style=true
//
// For S3, credentials come from the AWS SDK's standard chain (AWS_ACCESS_KEY_ID
// and AWS_SECRET_ACCESS_KEY, a profile, or an instance role); endpoint points
// at an S3-compatible server (MinIO, versitygw, R2…) and path_style=true
// addresses buckets by path, as most of them want. AWS_ENDPOINT_URL_S3 and
// AWS_REGION from the environment are honoured by the SDK too.
func Open(ctx context.Context, rawURL string, opts ...Option) (Store, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("error parsing blob store URL: %w", err)
	}
	switch u.Scheme {
	case "file":
		if u.Path == "" || u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("blob store URL %q: want file:///absolute/path", rawURL)
		}
		return NewFS(u.Path)
	case "s3":
		return openS3(ctx, u, o)
	default:
		return nil, fmt.Errorf("blob store URL %q: scheme must be file or s3", rawURL)
	}
}

// Option adjusts how Open connects.
type Option func(*options)

type options struct {
	accessKey, secretKey string
}

// WithStaticCredentials uses the given S3 keys instead of the SDK's standard
// chain (tests use it; deployments should prefer the chain).
func WithStaticCredentials(accessKey, secretKey string) Option {
	return func(o *options) { o.accessKey, o.secretKey = accessKey, secretKey }
}

var keyRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_.-]*)*$`)

// ValidKey reports whether key may be used: lower-case path segments of
// letters, digits, '-', '_' and '.', none starting with a dot, so a key can
// never climb out of the store's root.
func ValidKey(key string) error {
	if len(key) > 512 || !keyRE.MatchString(key) {
		return fmt.Errorf("invalid blob key %q", key)
	}
	return nil
}

// Thumbnail sizes.
const (
	ThumbGrid   = "grid"
	ThumbReview = "review"
)

// UploadKey is where the bytes of an upload wait until ingest has made the
// canonical copy; they are deleted after that.
func UploadKey(sha256 []byte) string { return "uploads/" + hex.EncodeToString(sha256) }

// ImageKey is where an image's canonical bytes live.
func ImageKey(sha256 []byte) string { return "images/" + hex.EncodeToString(sha256) }

// ThumbKey is where a thumbnail of an image lives.
func ThumbKey(size string, sha256 []byte) string {
	return "thumbs/" + size + "/" + hex.EncodeToString(sha256) + ".jpg"
}
