package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/dataset/datasettest"
	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/openapi/openapitest"
)

// apiProxy passes requests to target through openapitest.Transport: the
// requests of a program the test runs (imagehub download) and the hub's
// answers to them are held to the API description.
func apiProxy(t *testing.T, target string) *httptest.Server {
	u, err := url.Parse(target)
	require.NoError(t, err)
	srv := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(u) },
		Transport: openapitest.Transport(t, nil),
	})
	t.Cleanup(srv.Close)
	return srv
}

// cutProxy passes requests to target and, for the first len(cuts)
// requests, breaks the connection after cuts[i] bytes of the body.
func cutProxy(t *testing.T, target string, cuts ...int64) *httptest.Server {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		req, err := http.NewRequestWithContext(r.Context(), r.Method, target+r.URL.RequestURI(), nil)
		if err != nil {
			panic(err)
		}
		req.Header = r.Header.Clone()
		res, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		for k, v := range res.Header {
			w.Header()[k] = v
		}
		if i < len(cuts) {
			w.Header().Del("Content-Length")
		}
		w.WriteHeader(res.StatusCode)
		if i >= len(cuts) {
			_, _ = io.Copy(w, res.Body)
			return
		}
		_, _ = io.CopyN(w, res.Body, cuts[i])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection drops mid-body
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestDownload publishes a small version and downloads it with the real
// `imagehub download`: straight, through connections cut mid-way (the hub
// streams, so the command re-requests and skips what it has, checking
// it), after the command itself gave up and was run again, over a partial
// file that is not of this zip, and from a server that takes ranges. Every
// time the bytes are the uninterrupted download's. A bad token, an unknown
// version and a full disk fail with a message saying so.
func TestDownload(t *testing.T) {
	t.Parallel()
	h := newHub(t, nil)
	_, errOut, err := runCmdInput(t, h.vars, "a long password\n", "users", "create", "--email", "premium@example.com", "--role", "premium")
	require.NoError(t, err, errOut)
	tok, errOut, err := runCmd(t, h.vars, "tokens", "create", "--email", "premium@example.com", "--name", "test")
	require.NoError(t, err, errOut)
	premium := strings.TrimSpace(tok)
	srv := startServer(t, h.env())
	status, body, _ := call(t, "POST", srv.base+"/api/v1/labels", h.token, map[string]any{"name": "cat"})
	require.Contains(t, []int{http.StatusCreated, http.StatusConflict}, status, "%v", body)

	blobs, err := blob.Open(context.Background(), "file://"+filepath.Join(h.vars["DATA_DIR"], "blobs"))
	require.NoError(t, err)
	fx := datasettest.New(t, h.pool, blobs)
	for range 4 {
		img := fx.Image(datasettest.ImageOpts{W: 320, H: 240, PNG: true})
		m := mask.NewBitmap(320, 240)
		for y := 40; y < 200; y++ {
			for x := 60; x < 250; x++ {
				m.Set(x, y, true)
			}
		}
		fx.Review(img, datasettest.Instance{Label: "cat", Mask: m})
	}
	status, body, _ = call(t, "POST", srv.base+"/api/v1/datasets", h.token, map[string]any{
		"name": "shots", "splits": map[string]float64{"train": 0.5, "val": 0.5, "test": 0}})
	require.Equal(t, http.StatusCreated, status, "%v", body)
	id := body["dataset"].(map[string]any)["id"].(string)
	status, body, _ = call(t, "POST", srv.base+"/api/v1/datasets/"+id+"/versions", h.token, map[string]any{})
	require.Equal(t, http.StatusAccepted, status, "%v", body)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, v, _ := call(t, "GET", srv.base+"/api/v1/datasets/"+id+"/versions/1", premium, nil)
		if v["state"] == "published" {
			break
		}
		require.True(t, time.Now().Before(deadline), "not published: %v", v)
	}

	// The command talks to the hub through a proxy that checks its calls;
	// the test's own servers below (ranges, a flipped byte) are not the
	// hub and are not held to its description.
	hub := apiProxy(t, srv.base).URL
	dir := t.TempDir()
	dl := func(base, out string, extra ...string) (string, string, error) {
		args := append([]string{"download", "--token", premium, "--url", base, id, "1", "-o", filepath.Join(dir, out),
			"--retry-wait", "10ms"}, extra...)
		return runCmd(t, nil, args...)
	}
	stdout, stderr, err := dl(hub, "a.zip")
	require.NoError(t, err, stderr)
	require.Contains(t, stdout, "4 images, verified")
	want, err := os.ReadFile(filepath.Join(dir, "a.zip"))
	require.NoError(t, err)
	size := int64(len(want))
	require.Greater(t, size, int64(100_000))
	same := func(name string) {
		t.Helper()
		got, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, got), "%s: %d bytes, the uninterrupted download %d", name, len(got), len(want))
		_, err = os.Stat(filepath.Join(dir, name+".part"))
		require.True(t, os.IsNotExist(err), "no .part left")
	}

	// Two connections cut, at a third and two thirds: taken up again.
	stdout, stderr, err = dl(cutProxy(t, hub, size/3, 2*size/3).URL, "b.zip", "--retries", "3")
	require.NoError(t, err, stderr)
	require.Contains(t, stdout, "resumed 2 times")
	require.Contains(t, stderr, "broke off")
	same("b.zip")

	// The command gives up (no retries) and is run again, as after a kill.
	proxy := cutProxy(t, hub, size/2)
	_, stderr, err = dl(proxy.URL, "c.zip", "--retries", "0")
	require.Error(t, err)
	require.Contains(t, stderr, "run the same command again")
	st, err := os.Stat(filepath.Join(dir, "c.zip.part"))
	require.NoError(t, err)
	require.Equal(t, size/2, st.Size())
	_, stderr, err = dl(proxy.URL, "c.zip", "--retries", "0")
	require.NoError(t, err, stderr)
	require.Contains(t, stderr, "resuming")
	same("c.zip")

	// A partial file of something else: replaced from where it differs.
	junk := bytes.Clone(want[:size/2])
	junk[size/4] ^= 0xff
	require.NoError(t, os.WriteFile(filepath.Join(dir, "d.zip.part"), junk, 0o644))
	_, stderr, err = dl(hub, "d.zip")
	require.NoError(t, err, stderr)
	require.Contains(t, stderr, fmt.Sprintf("differ from %s's from byte %d", filepath.Join(dir, "d.zip.part"), size/4))
	same("d.zip")

	// A server that takes ranges (a prepared export's file): 206 appended.
	var ranged atomic.Int32
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" {
			ranged.Add(1)
		}
		http.ServeContent(w, r, "a.zip", time.Time{}, bytes.NewReader(want))
	}))
	t.Cleanup(files.Close)
	_, stderr, err = dl(cutProxy(t, files.URL, size/3).URL, "e.zip", "--retries", "1")
	require.NoError(t, err, stderr)
	require.Equal(t, int32(1), ranged.Load(), "the second request asked for the rest only")
	same("e.zip")

	// By name, with a subset.
	stdout, stderr, err = runCmd(t, nil, "download", "--token", premium, "--url", hub, "shots", "1", "--split", "train", "-o", filepath.Join(dir, "f.zip"))
	require.NoError(t, err, stderr)
	require.Contains(t, stdout, "verified")

	for _, tc := range []struct{ token, version, want string }{
		{"nonsense", "1", "401"},
		{premium, "9", "404"},
		{h.token + "x", "1", "401"},
	} {
		_, stderr, err := runCmd(t, nil, "download", "--token", tc.token, "--url", hub, id, tc.version, "-o", filepath.Join(dir, "g.zip"))
		require.Error(t, err)
		require.Contains(t, stderr, tc.want)
	}
	if _, err := os.Stat("/dev/full"); err == nil {
		// A full disk: /dev/full refuses every write.
		require.NoError(t, os.Symlink("/dev/full", filepath.Join(dir, "h.zip.part")))
		_, stderr, err := dl(hub, "h.zip")
		require.Error(t, err)
		require.Contains(t, stderr, "cannot write")
	}
	// A zip that does not verify (a server that flipped a byte of an
	// image): removed, and the command fails.
	bad := bytes.Clone(want)
	bad[size/2] ^= 0x55
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "a.zip", time.Time{}, bytes.NewReader(bad))
	}))
	t.Cleanup(broken.Close)
	_, stderr, err = dl(broken.URL, "i.zip")
	require.Error(t, err)
	require.Contains(t, stderr, "not sound")
	_, err = os.Stat(filepath.Join(dir, "i.zip.part"))
	require.True(t, os.IsNotExist(err))
}
