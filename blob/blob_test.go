package blob_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/blob/blobtest"
)

type backend struct {
	name string
	open func(t *testing.T) blob.Store
}

// backends are the stores the contract runs against: a folder, and a real
// S3-compatible server (versitygw) on loopback, a fresh bucket per test.
func backends(t *testing.T) []backend {
	t.Helper()
	srv := blobtest.Start(t)
	return []backend{
		{"fs", func(t *testing.T) blob.Store {
			s, err := blob.Open(context.Background(), "file://"+t.TempDir())
			require.NoError(t, err)
			return s
		}},
		{"s3", func(t *testing.T) blob.Store { return srv.Open(t) }},
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
	require.Equal(t, key, info.Key)
	require.EqualValues(t, len(b), info.Size)
	return b
}

func list(t *testing.T, s blob.Store, prefix string) []string {
	t.Helper()
	var keys []string
	require.NoError(t, s.List(context.Background(), prefix, func(i blob.Info) error {
		keys = append(keys, i.Key)
		return nil
	}))
	slices.Sort(keys)
	return keys
}

// TestContract is what every Store must do, run against each backend.
func TestContract(t *testing.T) {
	t.Parallel()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			open := b.open
			ctx := context.Background()

			t.Run("round trip", func(t *testing.T) {
				t.Parallel()
				s := open(t)
				put(t, s, "images/abc", []byte("hello"))
				require.Equal(t, []byte("hello"), get(t, s, "images/abc"))
				info, err := s.Stat(ctx, "images/abc")
				require.NoError(t, err)
				require.Equal(t, "images/abc", info.Key)
				require.EqualValues(t, 5, info.Size)
				require.WithinDuration(t, time.Now(), info.ModTime, time.Minute)

				put(t, s, "thumbs/grid/empty.jpg", nil)
				require.Empty(t, get(t, s, "thumbs/grid/empty.jpg"))
			})

			t.Run("not found", func(t *testing.T) {
				t.Parallel()
				s := open(t)
				_, _, err := s.Get(ctx, "images/missing")
				require.ErrorIs(t, err, blob.ErrNotFound)
				_, err = s.Stat(ctx, "images/missing")
				require.ErrorIs(t, err, blob.ErrNotFound)
				// A key that is only the folder of other keys holds nothing.
				put(t, s, "a/b", []byte("x"))
				_, _, err = s.Get(ctx, "a")
				require.ErrorIs(t, err, blob.ErrNotFound)
				_, err = s.Stat(ctx, "a")
				require.ErrorIs(t, err, blob.ErrNotFound)
			})

			t.Run("overwrite", func(t *testing.T) {
				t.Parallel()
				s := open(t)
				put(t, s, "a/b", []byte("one"))
				put(t, s, "a/b", []byte("two two"))
				require.Equal(t, []byte("two two"), get(t, s, "a/b"))
			})

			t.Run("delete is idempotent", func(t *testing.T) {
				t.Parallel()
				s := open(t)
				put(t, s, "a/b", []byte("x"))
				require.NoError(t, s.Delete(ctx, "a/b"))
				require.NoError(t, s.Delete(ctx, "a/b"))
				require.NoError(t, s.Delete(ctx, "never/stored"))
				_, err := s.Stat(ctx, "a/b")
				require.ErrorIs(t, err, blob.ErrNotFound)

				put(t, s, "c/d", []byte("y"))
				require.NoError(t, s.Delete(ctx, "c"), "a folder of keys is not a blob")
				require.Equal(t, []byte("y"), get(t, s, "c/d"))
			})

			t.Run("list by prefix", func(t *testing.T) {
				t.Parallel()
				s := open(t)
				for _, k := range []string{"uploads/aa", "uploads/ab", "uploads/b", "images/aa", "thumbs/grid/aa.jpg", "thumbs/review/aa.jpg"} {
					put(t, s, k, []byte(k))
				}
				require.Equal(t, []string{"uploads/aa", "uploads/ab", "uploads/b"}, list(t, s, "uploads/"))
				require.Equal(t, []string{"uploads/aa", "uploads/ab"}, list(t, s, "uploads/a"))
				require.Equal(t, []string{"thumbs/grid/aa.jpg", "thumbs/review/aa.jpg"}, list(t, s, "thumbs/"))
				require.Equal(t, []string{"thumbs/grid/aa.jpg"}, list(t, s, "thumbs/grid"))
				require.Len(t, list(t, s, ""), 6)
				require.Empty(t, list(t, s, "exports/"))

				before := time.Now().Add(-time.Minute)
				require.NoError(t, s.List(ctx, "images/", func(i blob.Info) error {
					require.Equal(t, "images/aa", i.Key)
					require.EqualValues(t, len("images/aa"), i.Size)
					require.True(t, i.ModTime.After(before), i.ModTime)
					return nil
				}))

				stop := errors.New("stop")
				calls := 0
				require.ErrorIs(t, s.List(ctx, "", func(blob.Info) error { calls++; return stop }), stop)
				require.Equal(t, 1, calls, "List stops at fn's first error")

				for _, bad := range []string{"../", "/", "uploads/../..", "UP"} {
					require.Error(t, s.List(ctx, bad, func(blob.Info) error { return nil }), bad)
				}
			})

			t.Run("concurrent puts of one key", func(t *testing.T) {
				t.Parallel()
				s := open(t)
				const writers = 8
				var bodies [][]byte
				for i := range writers {
					bodies = append(bodies, bytes.Repeat([]byte{byte('a' + i)}, 256<<10))
				}
				whole := func(b []byte) bool {
					return slices.ContainsFunc(bodies, func(w []byte) bool { return bytes.Equal(b, w) })
				}

				errs := make(chan error, 2*writers)
				done := make(chan struct{})
				var readers sync.WaitGroup
				for range 2 {
					readers.Go(func() {
						for {
							select {
							case <-done:
								return
							default:
							}
							rc, _, err := s.Get(ctx, "images/same")
							if errors.Is(err, blob.ErrNotFound) {
								continue
							}
							if err != nil {
								errs <- err
								return
							}
							b, err := io.ReadAll(rc)
							rc.Close()
							if err == nil && !whole(b) {
								err = errors.New("a reader saw a blob that no writer wrote whole")
							}
							if err != nil {
								errs <- err
								return
							}
						}
					})
				}
				var writes sync.WaitGroup
				for _, body := range bodies {
					writes.Go(func() {
						errs <- s.Put(ctx, "images/same", bytes.NewReader(body), int64(len(body)), "")
					})
				}
				writes.Wait()
				close(done)
				readers.Wait()
				close(errs)
				for err := range errs {
					require.NoError(t, err)
				}
				require.True(t, whole(get(t, s, "images/same")))
				require.Equal(t, []string{"images/same"}, list(t, s, ""), "no temporary files are listed")
			})

			t.Run("large objects stream", func(t *testing.T) {
				t.Parallel()
				s := open(t)
				// Not a multiple of any part size, generated on the fly.
				const size = 20<<20 + 12345
				want := patternSum(size)
				for name, declared := range map[string]int64{"exports/unsized.zip": -1, "exports/sized.zip": size} {
					require.NoError(t, s.Put(ctx, name, &patternReader{left: size}, declared, "application/zip"), name)
					rc, info, err := s.Get(ctx, name)
					require.NoError(t, err)
					require.EqualValues(t, size, info.Size)
					h := sha256.New()
					n, err := io.Copy(h, rc)
					rc.Close()
					require.NoError(t, err)
					require.EqualValues(t, size, n)
					require.Equal(t, want, h.Sum(nil), name)
				}
			})

			t.Run("a body of the wrong size stores nothing", func(t *testing.T) {
				t.Parallel()
				s := open(t)
				cases := []struct {
					name     string
					body     io.Reader
					declared int64
				}{
					{"short seekable", strings.NewReader("abc"), 10},
					{"long seekable", strings.NewReader("abcdef"), 3},
					{"short stream", &patternReader{left: 3}, 10},
					{"long stream", &patternReader{left: 6}, 3},
					{"short large stream", &patternReader{left: 17 << 20}, 18 << 20},
					{"long large stream", &patternReader{left: 18 << 20}, 17 << 20},
				}
				for _, c := range cases {
					key := "a/" + strings.ReplaceAll(c.name, " ", "-")
					require.Error(t, s.Put(ctx, key, c.body, c.declared, ""), c.name)
					_, err := s.Stat(ctx, key)
					require.ErrorIs(t, err, blob.ErrNotFound, "%s: nothing is left under the key", c.name)
				}
				require.Empty(t, list(t, s, ""))
			})

			t.Run("a cancelled put stores nothing", func(t *testing.T) {
				t.Parallel()
				s := open(t)
				cctx, cancel := context.WithCancel(ctx)
				r := &patternReader{left: 30 << 20, after: 5 << 20, do: cancel}
				require.Error(t, s.Put(cctx, "exports/cancelled.zip", r, -1, ""))
				_, err := s.Stat(ctx, "exports/cancelled.zip")
				require.ErrorIs(t, err, blob.ErrNotFound)
			})

			t.Run("bad keys are refused", func(t *testing.T) {
				t.Parallel()
				s := open(t)
				for _, k := range []string{
					"", "../etc/passwd", "/abs", "a/../../b", "a/./b", "a//b", "a/", ".hidden",
					"a/.tmp-x", "a/..", "A/B", "a b", "a\\b", "a/b\x00", "ü", "a.b/c",
					strings.Repeat("a", 600),
				} {
					require.Error(t, blob.ValidKey(k), "%q", k)
					require.Error(t, s.Put(ctx, k, strings.NewReader("x"), 1, ""), "%q", k)
					_, _, err := s.Get(ctx, k)
					require.Error(t, err, "%q", k)
					require.NotErrorIs(t, err, blob.ErrNotFound, "%q", k)
					_, err = s.Stat(ctx, k)
					require.Error(t, err, "%q", k)
					require.Error(t, s.Delete(ctx, k), "%q", k)
					_, _, err = s.URL(ctx, k, time.Minute)
					require.Error(t, err, "%q", k)
				}
				require.Empty(t, list(t, s, ""))
			})

			t.Run("ping", func(t *testing.T) {
				t.Parallel()
				require.NoError(t, open(t).Ping(ctx))
			})
		})
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	sum := sha256.Sum256([]byte("pixels"))
	for _, k := range []string{blob.UploadKey(sum[:]), blob.ImageKey(sum[:]), blob.ThumbKey(blob.ThumbGrid, sum[:]), blob.ThumbKey(blob.ThumbReview, sum[:])} {
		require.NoError(t, blob.ValidKey(k), k)
	}
	require.Equal(t, "thumbs/grid/0102.jpg", blob.ThumbKey(blob.ThumbGrid, []byte{1, 2}))
	require.Equal(t, "images/0102", blob.ImageKey([]byte{1, 2}))
	require.Equal(t, "uploads/0102", blob.UploadKey([]byte{1, 2}))
}

// patternReader yields left bytes of a fixed pseudo-random pattern without
// holding them in memory. When after bytes have been read it calls do.
type patternReader struct {
	left  int64
	rng   *rand.ChaCha8
	after int64
	do    func()
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
	if p.do != nil {
		if p.after -= int64(n); p.after <= 0 {
			p.do()
			p.do = nil
		}
	}
	return n, nil
}

func patternSum(size int64) []byte {
	h := sha256.New()
	_, _ = io.Copy(h, &patternReader{left: size})
	return h.Sum(nil)
}
