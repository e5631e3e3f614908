package blob_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/blob/blobtest"
)

func openS3(t *testing.T, srv *blobtest.Server, rawURL string) blob.Store {
	t.Helper()
	s, err := blob.Open(context.Background(), rawURL, blob.WithStaticCredentials(srv.AccessKey, srv.SecretKey))
	require.NoError(t, err)
	return s
}

func httpGet(t *testing.T, u string) (int, string) {
	t.Helper()
	res, err := http.Get(u)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

func TestS3(t *testing.T) {
	t.Parallel()
	srv := blobtest.Start(t)
	ctx := context.Background()

	t.Run("presigned URL", func(t *testing.T) {
		t.Parallel()
		s := srv.Open(t)
		require.NoError(t, s.Put(ctx, "images/pic", strings.NewReader("pixels"), 6, "image/png"))
		u, ok, err := s.URL(ctx, "images/pic", time.Minute)
		require.NoError(t, err)
		require.True(t, ok)
		require.True(t, strings.HasPrefix(u, srv.Endpoint+"/"), u)
		res, err := http.Get(u)
		require.NoError(t, err)
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", body)
		require.Equal(t, "pixels", string(body))
		require.Equal(t, "image/png", res.Header.Get("Content-Type"), "the browser gets the type given to Put")

		// Signed for one key: another key, or a longer life, is refused.
		put(t, s, "images/other", []byte("secret"))
		code, _ := httpGet(t, strings.Replace(u, "images/pic", "images/other", 1))
		require.Equal(t, http.StatusForbidden, code)
		code, _ = httpGet(t, strings.Replace(u, "X-Amz-Expires=60", "X-Amz-Expires=600", 1))
		require.Equal(t, http.StatusForbidden, code)

		for _, ttl := range []time.Duration{0, -time.Second, 8 * 24 * time.Hour} {
			_, _, err := s.URL(ctx, "images/pic", ttl)
			require.Error(t, err, ttl)
		}
	})

	t.Run("presigned URL expires", func(t *testing.T) {
		t.Parallel()
		s := srv.Open(t)
		put(t, s, "images/pic", []byte("pixels"))
		// The signature's X-Amz-Date has whole seconds, so a URL signed late in a
		// second lives up to a second less than its TTL: sign for 3 s, use it at
		// once, then wait past the expiry the URL itself states.
		const ttl = 3 * time.Second
		u, _, err := s.URL(ctx, "images/pic", ttl)
		require.NoError(t, err)
		code, _ := httpGet(t, u)
		require.Equal(t, http.StatusOK, code)
		parsed, err := url.Parse(u)
		require.NoError(t, err)
		signed, err := time.Parse("20060102T150405Z", parsed.Query().Get("X-Amz-Date"))
		require.NoError(t, err)
		time.Sleep(time.Until(signed.Add(ttl + 1100*time.Millisecond)))
		code, _ = httpGet(t, u)
		require.Equal(t, http.StatusForbidden, code)
	})

	t.Run("public endpoint", func(t *testing.T) {
		t.Parallel()
		// The app reaches the server at 127.0.0.1, browsers at localhost.
		_, port, err := net.SplitHostPort(strings.TrimPrefix(srv.Endpoint, "http://"))
		require.NoError(t, err)
		public := "http://localhost:" + port
		bucket := srv.NewBucket(t)
		s := openS3(t, srv, srv.URL(bucket, "")+"&public_endpoint="+url.QueryEscape(public))
		put(t, s, "images/pic", []byte("pixels"))
		u, ok, err := s.URL(ctx, "images/pic", time.Minute)
		require.NoError(t, err)
		require.True(t, ok)
		require.True(t, strings.HasPrefix(u, public+"/"+bucket+"/images/pic?"), u)
		code, body := httpGet(t, u)
		require.Equal(t, http.StatusOK, code, body)
		require.Equal(t, "pixels", body)
	})

	t.Run("keys live under the prefix", func(t *testing.T) {
		t.Parallel()
		bucket := srv.NewBucket(t)
		s := openS3(t, srv, srv.URL(bucket, "deep/hub"))
		put(t, s, "images/aa", []byte("a"))
		raw := srv.Client()
		_, err := raw.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("deep/hub/images/aa")})
		require.NoError(t, err)
		// Objects that are not the store's are neither listed nor reachable.
		for _, k := range []string{"images/bb", "deep/hubx/images/cc", "deep/hub/Images/DD", "deep/hub/images/a b"} {
			_, err := raw.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(k), Body: strings.NewReader("x")})
			require.NoError(t, err)
		}
		require.Equal(t, []string{"images/aa"}, list(t, s, ""))
		_, err = s.Stat(ctx, "images/bb")
		require.ErrorIs(t, err, blob.ErrNotFound)

		whole := openS3(t, srv, srv.URL(bucket, ""))
		require.Equal(t, []string{"images/bb"}, list(t, whole, "images/"))
	})

	t.Run("a failed multipart upload leaves no parts behind", func(t *testing.T) {
		t.Parallel()
		bucket := srv.NewBucket(t)
		s := openS3(t, srv, srv.URL(bucket, ""))
		require.Error(t, s.Put(ctx, "exports/x.zip", &patternReader{left: 40 << 20}, 50<<20, ""))
		out, err := srv.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &bucket})
		require.NoError(t, err)
		require.Empty(t, out.Uploads)
	})

	t.Run("missing bucket", func(t *testing.T) {
		t.Parallel()
		s := openS3(t, srv, srv.URL("no-such-bucket", ""))
		require.Error(t, s.Ping(ctx))
		_, _, err := s.Get(ctx, "images/aa")
		require.Error(t, err)
		require.NotErrorIs(t, err, blob.ErrNotFound, "a missing bucket is a configuration error, not a missing blob")
	})

	t.Run("wrong credentials", func(t *testing.T) {
		t.Parallel()
		s, err := blob.Open(ctx, srv.URL(srv.NewBucket(t), ""), blob.WithStaticCredentials(srv.AccessKey, "wrong"))
		require.NoError(t, err)
		require.Error(t, s.Ping(ctx))
		require.Error(t, s.Put(ctx, "a/b", strings.NewReader("x"), 1, ""))
	})
}

// TestS3Environment opens a store whose endpoint and credentials come only
// from the environment, as a deployment's do. It sets process-wide
// variables, so it is not parallel.
func TestS3Environment(t *testing.T) {
	srv := blobtest.Start(t)
	bucket := srv.NewBucket(t)
	t.Setenv("S3_ENDPOINT", srv.Endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_REGION", blobtest.Region)
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	s, err := blob.Open(context.Background(), "s3://"+bucket+"/hub?path_style=true")
	require.NoError(t, err)
	require.NoError(t, s.Ping(context.Background()))
	put(t, s, "images/aa", []byte("a"))
	require.Equal(t, []byte("a"), get(t, s, "images/aa"))

	// Without S3_ENDPOINT, the SDK's own variable is honoured.
	t.Setenv("S3_ENDPOINT", "")
	t.Setenv("AWS_ENDPOINT_URL_S3", srv.Endpoint)
	s, err = blob.Open(context.Background(), "s3://"+bucket+"/hub?path_style=true")
	require.NoError(t, err)
	require.Equal(t, []byte("a"), get(t, s, "images/aa"))
}

// TestS3Unreachable: a store that is down or hangs gives errors, promptly,
// and never hangs its caller.
func TestS3Unreachable(t *testing.T) {
	t.Parallel()

	t.Run("stopped server", func(t *testing.T) {
		t.Parallel()
		srv := blobtest.Start(t)
		s := srv.Open(t)
		put(t, s, "images/aa", []byte("a"))
		srv.Stop()
		// Connections are refused at once; the SDK retries a few times
		// with a short backoff, then gives up.
		for name, op := range unreachableOps(s) {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				start := time.Now()
				require.Error(t, op(context.Background()))
				require.Less(t, time.Since(start), 10*time.Second)
			})
		}
	})

	t.Run("server that never answers", func(t *testing.T) {
		t.Parallel()
		ln := silentServer(t)
		s, err := blob.Open(context.Background(), "s3://bucket?path_style=true&endpoint=http://"+ln.Addr().String(),
			blob.WithStaticCredentials("key", "secret"))
		require.NoError(t, err)
		for name, op := range unreachableOps(s) {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				defer cancel()
				start := time.Now()
				require.ErrorIs(t, op(ctx), context.DeadlineExceeded)
				require.Less(t, time.Since(start), 3*time.Second)
			})
		}
	})
}

func unreachableOps(s blob.Store) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"ping": s.Ping,
		"put": func(ctx context.Context) error {
			return s.Put(ctx, "images/bb", strings.NewReader("b"), 1, "")
		},
		"put large": func(ctx context.Context) error {
			return s.Put(ctx, "exports/big", &patternReader{left: 20 << 20}, -1, "")
		},
		"get": func(ctx context.Context) error {
			_, _, err := s.Get(ctx, "images/aa")
			return err
		},
		"stat": func(ctx context.Context) error {
			_, err := s.Stat(ctx, "images/aa")
			return err
		},
		"delete": func(ctx context.Context) error { return s.Delete(ctx, "images/aa") },
		"list": func(ctx context.Context) error {
			return s.List(ctx, "", func(blob.Info) error { return nil })
		},
	}
}

// silentServer accepts connections and reads them, but never answers.
func silentServer(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(io.Discard, c) })
		}
	})
	return ln
}

// TestS3LargePutMemory: a large upload of unknown size streams in parts,
// so the heap holds a few parts, never the whole object. It samples the
// heap while it uploads, so it is not parallel: it runs alone.
func TestS3LargePutMemory(t *testing.T) {
	srv := blobtest.Start(t)
	s := srv.Open(t)
	const size = 200 << 20
	// Collect often, so the heap is what is live rather than garbage.
	defer debug.SetGCPercent(debug.SetGCPercent(20))
	runtime.GC()

	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak atomic.Uint64
	done := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	err := s.Put(context.Background(), "exports/huge.zip", &patternReader{left: size}, -1, "application/zip")
	close(done)
	sampler.Wait()
	require.NoError(t, err)
	info, err := s.Stat(context.Background(), "exports/huge.zip")
	require.NoError(t, err)
	require.EqualValues(t, size, info.Size)
	// About (partConcurrency+2) parts of 16 MiB are live at once.
	require.Less(t, peak.Load(), uint64(150<<20), "peak heap while uploading %d MiB", size>>20)
	t.Logf("peak heap while uploading %d MiB: %d MiB", size>>20, peak.Load()>>20)
}
