package blob_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/blob/blobtest"
)

// backends runs the same contract against every backend: a folder, and a real
// S3-compatible server (versitygw) on loopback.
func backends(t *testing.T) map[string]func(t *testing.T) blob.Store {
	t.Helper()
	srv := blobtest.Start(t)
	return map[string]func(t *testing.T) blob.Store{
		"fs": func(t *testing.T) blob.Store {
			s, err := blob.Open(context.Background(), "file://"+t.TempDir())
			require.NoError(t, err)
			return s
		},
		"s3": func(t *testing.T) blob.Store { return srv.Open(t) },
	}
}

func put(t *testing.T, s blob.Store, key string, b []byte) {
	t.Helper()
	require.NoError(t, s.Put(context.Background(), key, bytes.NewReader(b), int64(len(b)), "application/octet-stream"))
}

func get(t *testing.T, s blob.Store, key string) []byte {
	t.Helper()
	rc, info, err := s.Get(context.Background(), key)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.EqualValues(t, len(b), info.Size)
	return b
}

func TestContract(t *testing.T) {
	t.Parallel()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()

			t.Run("round trip", func(t *testing.T) {
				s := open(t)
				put(t, s, "images/abc", []byte("hello"))
				require.Equal(t, []byte("hello"), get(t, s, "images/abc"))
				info, err := s.Stat(ctx, "images/abc")
				require.NoError(t, err)
				require.EqualValues(t, 5, info.Size)
				require.WithinDuration(t, time.Now(), info.ModTime, time.Minute)
			})
			t.Run("not found", func(t *testing.T) {
				s := open(t)
				_, _, err := s.Get(ctx, "images/missing")
				require.ErrorIs(t, err, blob.ErrNotFound)
				_, err = s.Stat(ctx, "images/missing")
				require.ErrorIs(t, err, blob.ErrNotFound)
			})
			t.Run("overwrite", func(t *testing.T) {
				s := open(t)
				put(t, s, "a/b", []byte("one"))
				put(t, s, "a/b", []byte("two two"))
				require.Equal(t, []byte("two two"), get(t, s, "a/b"))
			})
			t.Run("delete is idempotent", func(t *testing.T) {
				s := open(t)
				put(t, s, "a/b", []byte("x"))
				require.NoError(t, s.Delete(ctx, "a/b"))
				require.NoError(t, s.Delete(ctx, "a/b"))
				_, err := s.Stat(ctx, "a/b")
				require.ErrorIs(t, err, blob.ErrNotFound)
			})
			t.Run("list by prefix", func(t *testing.T) {
				s := open(t)
				for _, k := range []string{"uploads/aa", "uploads/bb", "images/aa", "thumbs/grid/aa.jpg"} {
					put(t, s, k, []byte(k))
				}
				var got []string
				require.NoError(t, s.List(ctx, "uploads/", func(i blob.Info) error {
					got = append(got, i.Key)
					require.EqualValues(t, len(i.Key), i.Size)
					return nil
				}))
				sort.Strings(got)
				require.Equal(t, []string{"uploads/aa", "uploads/bb"}, got)
				got = nil
				require.NoError(t, s.List(ctx, "thumbs/", func(i blob.Info) error { got = append(got, i.Key); return nil }))
				require.Equal(t, []string{"thumbs/grid/aa.jpg"}, got)
				stop := errors.New("stop")
				require.ErrorIs(t, s.List(ctx, "", func(blob.Info) error { return stop }), stop)
			})
			t.Run("concurrent puts of one key", func(t *testing.T) {
				s := open(t)
				body := bytes.Repeat([]byte("same bytes "), 10000)
				var wg sync.WaitGroup
				errs := make(chan error, 8)
				for range 8 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						errs <- s.Put(ctx, "images/same", bytes.NewReader(body), int64(len(body)), "")
					}()
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					require.NoError(t, err)
				}
				require.Equal(t, body, get(t, s, "images/same"))
			})
			t.Run("large object streams", func(t *testing.T) {
				s := open(t)
				const size = 20 << 20
				src := &patternReader{left: size}
				require.NoError(t, s.Put(ctx, "exports/big.zip", src, -1, "application/zip"))
				rc, _, err := s.Get(ctx, "exports/big.zip")
				require.NoError(t, err)
				defer rc.Close()
				h := sha256.New()
				n, err := io.Copy(h, rc)
				require.NoError(t, err)
				require.EqualValues(t, size, n)
				want := sha256.New()
				_, _ = io.Copy(want, &patternReader{left: size})
				require.Equal(t, want.Sum(nil), h.Sum(nil))
			})
			t.Run("bad keys are refused", func(t *testing.T) {
				s := open(t)
				for _, k := range []string{"../etc/passwd", "/abs", "a/../../b", "a//b", "", ".hidden", "a/.tmp-x", "A/B", "a b", strings.Repeat("a", 600)} {
					require.Error(t, s.Put(ctx, k, strings.NewReader("x"), 1, ""), k)
					_, _, err := s.Get(ctx, k)
					require.Error(t, err, k)
				}
			})
			t.Run("ping", func(t *testing.T) {
				require.NoError(t, open(t).Ping(ctx))
			})
			t.Run("size mismatch fails", func(t *testing.T) {
				s := open(t)
				err := s.Put(ctx, "a/short", strings.NewReader("abc"), 10, "")
				require.Error(t, err)
				_, err = s.Stat(ctx, "a/short")
				require.ErrorIs(t, err, blob.ErrNotFound, "nothing is left under the key")
			})
		})
	}
}

func TestPresignedURL(t *testing.T) {
	t.Parallel()
	srv := blobtest.Start(t)
	s := srv.Open(t)
	ctx := context.Background()
	put(t, s, "images/pic", []byte("pixels"))
	u, ok, err := s.URL(ctx, "images/pic", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	res, err := http.Get(u)
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", b)
	require.Equal(t, "pixels", string(b))

	// A tampered URL is refused.
	res2, err := http.Get(strings.Replace(u, "images%2Fpic", "images%2Fpix", 1) + "x")
	require.NoError(t, err)
	res2.Body.Close()
	require.NotEqual(t, http.StatusOK, res2.StatusCode)

	fs, err := blob.Open(ctx, "file://"+t.TempDir())
	require.NoError(t, err)
	_, ok, err = fs.URL(ctx, "images/pic", time.Minute)
	require.NoError(t, err)
	require.False(t, ok, "a folder has no URLs; the app serves the bytes")
}

func TestStoppedServerFailsPromptly(t *testing.T) {
	t.Parallel()
	srv := blobtest.Start(t)
	s := srv.Open(t)
	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	require.Error(t, s.Ping(ctx))
	require.Error(t, s.Put(ctx, "a/b", strings.NewReader("x"), 1, ""))
	require.Less(t, time.Since(start), 10*time.Second)
}

func TestOpenURLs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, bad := range []string{"ftp://x", "file://relative/path", "s3://", "::"} {
		_, err := blob.Open(ctx, bad)
		require.Error(t, err, bad)
	}
	require.Equal(t, "thumbs/grid/"+fmt.Sprintf("%x", []byte{1, 2})+".jpg", blob.ThumbKey(blob.ThumbGrid, []byte{1, 2}))
}

// patternReader yields size bytes of a fixed pseudo-random pattern without
// holding them in memory.
type patternReader struct {
	left int64
	rng  *rand.ChaCha8
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left <= 0 {
		return 0, io.EOF
	}
	if p.rng == nil {
		p.rng = rand.NewChaCha8([32]byte{1})
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n, _ := p.rng.Read(b)
	p.left -= int64(n)
	return n, nil
}
