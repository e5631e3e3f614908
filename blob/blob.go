// Package blob stores image originals and derived files behind one small
// interface, with two backends: a folder on disk (the default for a laptop)
// and any S3-compatible store. Keys are content addresses: the SHA-256 of the
// bytes in hex, under a prefix that says what the bytes are (see ImageKey,
// ThumbKey, UploadKey).
package blob

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// ErrNotFound is returned (wrapped) by Get and Stat for a key that holds
// nothing.
var ErrNotFound = errors.New("blob not found")

// Info describes a stored blob.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Store is a blob store. Every method validates its key (see ValidKey) and
// returns when its context ends, so a caller that sets a deadline never
// waits on a store that does not answer.
type Store interface {
	// Put stores r under key, replacing what was there. size is the length
	// of r, or -1 when unknown; when it is known and r yields more or fewer
	// bytes, Put fails and stores nothing. Readers never see a half-written
	// blob, and concurrent Puts of one key leave one of them whole. r is read
	// as a stream: memory stays bounded whatever the size. contentType is
	// kept where the backend has a place for it (S3 serves it with
	// presigned GETs); a folder drops it.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	// Get opens a blob; the caller closes it. A missing key gives an error
	// wrapping ErrNotFound.
	Get(ctx context.Context, key string) (io.ReadCloser, Info, error)
	// Stat describes a blob. A missing key gives an error wrapping
	// ErrNotFound.
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes a blob; a missing one is not an error.
	Delete(ctx context.Context, key string) error
	// List calls fn, in no particular order, for every blob whose key starts
	// with prefix ("" for all). It stops at, and returns, fn's first error.
	// Files that no Put could have written (temporary files, foreign
	// objects with invalid keys) are not listed.
	List(ctx context.Context, prefix string, fn func(Info) error) error
	// URL returns a URL that anyone can GET the blob from until ttl has
	// passed, when the backend has such URLs (S3: a presigned GET); ok is
	// false otherwise (a folder), and the caller serves the bytes itself.
	URL(ctx context.Context, key string, ttl time.Duration) (u string, ok bool, err error)
	// Ping checks the store answers and can be used (for /readyz).
	Ping(ctx context.Context) error
}

// Open opens the store a URL names:
//
//	file:///abs/path
//	s3://bucket[/prefix][?endpoint=URL&public_endpoint=URL&region=NAME&path_style=true]
//
// A file URL is a folder, created if missing.
//
// An s3 URL is a bucket (which must exist), with every key under the
// optional prefix. Its query parameters, all optional:
//
//   - endpoint: the S3 API's base URL, for S3-compatible servers (MinIO,
//     versitygw, Ceph, R2…), e.g. http://127.0.0.1:7070. Without it, the
//     environment variable S3_ENDPOINT, then the SDK's own
//     AWS_ENDPOINT_URL_S3 and AWS_ENDPOINT_URL, then AWS itself.
//   - public_endpoint: the base URL that browsers reach the same server at,
//     when it differs from endpoint (the app talks to http://minio:9000
//     inside a cluster, browsers to https://s3.example.com); presigned URLs
//     are made for it. Defaults to endpoint.
//   - region: defaults to the SDK's (AWS_REGION, the profile), then
//     us-east-1.
//   - path_style: true addresses the bucket as endpoint/bucket/key rather
//     than bucket.endpoint/key; most S3-compatible servers want it.
//
// Credentials never go in the URL (it is logged): they come from the AWS
// SDK's standard chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a shared
// profile, web identity, an instance or task role), or from
// WithStaticCredentials.
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
		if u.Path == "" || u.Host != "" && u.Host != "localhost" || u.RawQuery != "" {
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

// Segments are lower-case letters, digits, '-', '_' and '.', and start with
// a letter or digit, so no segment is "." or ".." and no key names a
// temporary file (".tmp-…"). The first segment has no dot at all.
var keyRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_.-]*)*$`)

// maxKeyLen is far below S3's 1024 bytes and any file system's path limit.
const maxKeyLen = 512

// ValidKey returns an error unless key may be used: slash-separated
// segments of lower-case letters, digits, '-', '_' and '.', each starting
// with a letter or digit, at most 512 bytes. A valid key can never climb out
// of the store's root.
func ValidKey(key string) error {
	if len(key) > maxKeyLen || !keyRE.MatchString(key) {
		return fmt.Errorf("invalid blob key %q", key)
	}
	return nil
}

// validPrefix accepts what a List prefix may be: "", a valid key, or a
// valid key followed by "/".
func validPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := ValidKey(strings.TrimSuffix(prefix, "/")); err != nil {
		return fmt.Errorf("invalid blob prefix %q", prefix)
	}
	return nil
}

// Thumbnail sizes, for ThumbKey.
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

// sizeReader fails a read that ends before, or goes past, the size the
// caller promised, so a short or long body is an error rather than a blob
// of the wrong length. The error reaches the backend while it is still
// writing, so it abandons the write.
type sizeReader struct {
	r    io.Reader
	left int64
	key  string
}

func (s *sizeReader) Read(p []byte) (int, error) {
	if int64(len(p)) > s.left+1 {
		p = p[:s.left+1] // one more than promised, to see a body that is too long
	}
	n, err := s.r.Read(p)
	s.left -= int64(n)
	switch {
	case s.left < 0:
		return 0, fmt.Errorf("blob %s: body is longer than its declared size", s.key)
	case err == io.EOF && s.left > 0:
		return n, fmt.Errorf("blob %s: body ended %d bytes short of its declared size", s.key, s.left)
	}
	return n, err
}
