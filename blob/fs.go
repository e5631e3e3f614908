package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// FS is a Store in a folder: key a/b/c is the file <root>/a/b/c. Writes go
// to a temporary file in the target folder, are synced, then renamed over
// the key, so a crash never leaves a half-written blob under a real key and
// concurrent writers of one key each leave a whole file. Because a key is a
// file, a key cannot also be the folder of another ("a" and "a/b"); the
// content-addressed keys of this project never are.
type FS struct {
	root string
}

// tmpPrefix starts the names of files being written. No valid key segment
// starts with a dot, so they never collide with a blob and List skips them.
const tmpPrefix = ".tmp-"

// NewFS opens (and creates) a folder store.
func NewFS(root string) (*FS, error) {
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("blob folder %q must be an absolute path", root)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("error creating blob folder: %w", err)
	}
	return &FS{root: filepath.Clean(root)}, nil
}

func (s *FS) path(key string) (string, error) {
	if err := ValidKey(key); err != nil {
		return "", err
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// Put implements Store.
func (s *FS) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if size >= 0 {
		r = &sizeReader{r: r, left: size, key: key}
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("error creating blob folder: %w", err)
	}
	tmp, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return fmt.Errorf("error creating blob %s: %w", key, err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	_, err = io.Copy(tmp, ctxReader{ctx, r})
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("error writing blob %s: %w", key, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("error storing blob %s: %w", key, err)
	}
	// The rename is durable only once the folder itself is synced.
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("error storing blob %s: %w", key, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Get implements Store.
func (s *FS) Get(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, Info{}, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Info{}, fmt.Errorf("blob %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, Info{}, fmt.Errorf("error opening blob %s: %w", key, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, Info{}, fmt.Errorf("error reading blob %s: %w", key, err)
	}
	if !st.Mode().IsRegular() { // a folder that holds other keys
		f.Close()
		return nil, Info{}, fmt.Errorf("blob %s: %w", key, ErrNotFound)
	}
	return f, Info{Key: key, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Stat implements Store.
func (s *FS) Stat(ctx context.Context, key string) (Info, error) {
	p, err := s.path(key)
	if err != nil {
		return Info{}, err
	}
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) || err == nil && !st.Mode().IsRegular() {
		return Info{}, fmt.Errorf("blob %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return Info{}, fmt.Errorf("error reading blob %s: %w", key, err)
	}
	return Info{Key: key, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Delete implements Store.
func (s *FS) Delete(ctx context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	st, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) || err == nil && st.IsDir() {
		return nil // nothing stored under this key
	}
	if err == nil {
		err = os.Remove(p)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("error deleting blob %s: %w", key, err)
	}
	return nil
}

// List implements Store.
func (s *FS) List(ctx context.Context, prefix string, fn func(Info) error) error {
	if err := validPrefix(prefix); err != nil {
		return err
	}
	// Walk from the deepest folder the prefix names, not the whole tree.
	start := s.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = filepath.Join(s.root, filepath.FromSlash(prefix[:i]))
	}
	var fnErr error
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // the prefix names no folder, or it went while we walked
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) || ValidKey(key) != nil {
			return nil // outside the prefix, or a temporary file
		}
		st, err := d.Info()
		if err != nil {
			return nil // deleted while we walked
		}
		if err := fn(Info{Key: key, Size: st.Size(), ModTime: st.ModTime()}); err != nil {
			fnErr = err
			return err
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("error listing blobs under %q: %w", prefix, err)
	}
	return nil
}

// URL implements Store: a folder has no URLs of its own.
func (s *FS) URL(ctx context.Context, key string, ttl time.Duration) (string, bool, error) {
	if err := ValidKey(key); err != nil {
		return "", false, err
	}
	return "", false, nil
}

// Ping implements Store: the folder must exist and be writable.
func (s *FS) Ping(ctx context.Context) error {
	f, err := os.CreateTemp(s.root, tmpPrefix+"ping-*")
	if err != nil {
		return fmt.Errorf("blob folder is not writable: %w", err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// Touch sets a blob's modification time; tests use it to age blobs.
func (s *FS) Touch(key string, t time.Time) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	return os.Chtimes(p, t, t)
}

// ctxReader stops a long copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
