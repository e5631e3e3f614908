package blob_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/blob"
)

func TestFS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("keys are files under the root", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		s, err := blob.NewFS(root)
		require.NoError(t, err)
		put(t, s, "thumbs/grid/aa.jpg", []byte("jpeg"))
		b, err := os.ReadFile(filepath.Join(root, "thumbs", "grid", "aa.jpg"))
		require.NoError(t, err)
		require.Equal(t, "jpeg", string(b))
	})

	t.Run("failed writes leave no temporary files", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		s, err := blob.NewFS(root)
		require.NoError(t, err)
		require.Error(t, s.Put(ctx, "images/aa", strings.NewReader("short"), 100, ""))
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		require.Error(t, s.Put(cctx, "images/bb", strings.NewReader("x"), 1, ""))
		require.NoError(t, s.Ping(ctx))
		entries, err := os.ReadDir(filepath.Join(root, "images"))
		require.NoError(t, err)
		require.Empty(t, entries)
	})

	t.Run("List ignores what Put cannot have written", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		s, err := blob.NewFS(root)
		require.NoError(t, err)
		put(t, s, "images/aa", []byte("a"))
		require.NoError(t, os.WriteFile(filepath.Join(root, "images", ".tmp-123"), []byte("half"), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(root, "images", "README.txt"), []byte("?"), 0o644))
		require.Equal(t, []string{"images/aa"}, list(t, s, ""))
	})

	t.Run("Touch ages a blob", func(t *testing.T) {
		t.Parallel()
		s, err := blob.NewFS(t.TempDir())
		require.NoError(t, err)
		put(t, s, "images/aa", []byte("a"))
		old := time.Now().Add(-48 * time.Hour)
		require.NoError(t, s.Touch("images/aa", old))
		info, err := s.Stat(ctx, "images/aa")
		require.NoError(t, err)
		require.WithinDuration(t, old, info.ModTime, time.Second)
	})

	t.Run("no URLs", func(t *testing.T) {
		t.Parallel()
		s, err := blob.NewFS(t.TempDir())
		require.NoError(t, err)
		u, ok, err := s.URL(ctx, "images/aa", time.Minute)
		require.NoError(t, err)
		require.False(t, ok, "a folder has no URLs; the app serves the bytes")
		require.Empty(t, u)
	})

	t.Run("ping fails on a folder it cannot write", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		s, err := blob.NewFS(root)
		require.NoError(t, err)
		require.NoError(t, os.RemoveAll(root))
		require.NoError(t, os.WriteFile(root, nil, 0o644)) // a file where the folder was
		require.Error(t, s.Ping(ctx))
	})
}

func TestOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	dir := t.TempDir()
	for _, u := range []string{"file://" + dir, "file://localhost" + dir} {
		s, err := blob.Open(ctx, u)
		require.NoError(t, err, u)
		require.IsType(t, &blob.FS{}, s)
	}
	s, err := blob.Open(ctx, "s3://bucket/some/prefix?endpoint=http://127.0.0.1:1&path_style=true&region=eu-west-1",
		blob.WithStaticCredentials("a", "b"))
	require.NoError(t, err)
	require.IsType(t, &blob.S3{}, s)

	for _, bad := range []string{
		"", "::", "ftp://x", "/abs/path", "file://relative/path", "file:", "file:///abs?x=1",
		"s3://", "s3:///prefix",
		"s3://bucket?pathstyle=true",
		"s3://bucket?path_style=maybe",
		"s3://bucket?endpoint=127.0.0.1:7070",
		"s3://bucket?public_endpoint=ftp://x",
		"s3://bucket/../up",
		"s3://bucket/UPPER",
		"s3://key:secret@bucket",
	} {
		_, err := blob.Open(ctx, bad)
		require.Error(t, err, bad)
	}
	_, err = blob.Open(ctx, "s3://key:secret@bucket")
	require.NotContains(t, err.Error(), "secret", "the error does not repeat a secret")
}
