package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/imaging/imagingtest"
	"github.com/deepimageshub/imagehub/openapi/openapitest"
)

// throwawayPG is a PostgreSQL cluster of this test alone (scripts/localpg.sh
// with its own folder and port), so that it can be stopped and started
// without touching the server other tests share.
type throwawayPG struct {
	t   testing.TB
	dir string // the cluster's data folder
	env []string
}

func startThrowawayPG(t testing.TB) (*throwawayPG, string) {
	t.Helper()
	// Under /var/tmp: the cluster runs as the postgres user, who must be
	// able to reach the folder (t.TempDir is private to root).
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	dir := filepath.Join("/var/tmp", "imagehub-restart-"+hex.EncodeToString(b))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	require.NotEqual(t, 54329, port)
	pg := &throwawayPG{t: t, dir: filepath.Join(dir, "pg"), env: append(os.Environ(), "LOCALPG_DIR="+filepath.Join(dir, "pg"), "LOCALPG_PORT="+strconv.Itoa(port))}
	t.Cleanup(func() {
		pg.run("stop")
		os.RemoveAll(dir)
	})
	url := strings.TrimSpace(pg.run("start"))
	require.Contains(t, url, ":"+strconv.Itoa(port)+"/")
	return pg, url
}

// run runs scripts/localpg.sh on this cluster only.
func (pg *throwawayPG) run(what string) string {
	pg.t.Helper()
	cmd := exec.Command(filepath.Join("..", "..", "scripts", "localpg.sh"), what)
	cmd.Env = pg.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(pg.t, cmd.Run(), "localpg.sh %s: %s", what, errb.String())
	return out.String()
}

// uploadStatus sends one photo and returns the status and the Retry-After
// header of the answer.
func uploadStatus(t testing.TB, base, token string, data []byte) (int, string, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("files", "p.jpg")
	_, _ = fw.Write(data)
	_ = mw.Close()
	req, err := http.NewRequest("POST", base+"/api/v1/images", &buf)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := openapitest.Client(t).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode, res.Header.Get("Retry-After"), nil
}

// TestServeSurvivesADatabaseRestart: PostgreSQL is stopped and started again
// under a steady stream of uploads to a real `imagehub serve`. While it is
// down uploads and pages get 503 with Retry-After, never 500; afterwards the
// hub serves again by itself.
func TestServeSurvivesADatabaseRestart(t *testing.T) {
	t.Parallel()
	pg, dbURL := startThrowawayPG(t)
	srv := startServer(t, map[string]string{"DATABASE_URL": dbURL, "BUILTIN_WORKER": "false"})
	status, body, _ := call(t, "POST", srv.base+"/api/v1/auth/signup", "", map[string]string{"email": "ada@example.com", "password": "a long password", "name": "Ada"})
	require.Equal(t, 201, status, "%v", body)
	token, errOut, err := runCmd(t, envOf(srv), "tokens", "create", "--email", "ada@example.com", "--name", "load")
	require.NoError(t, err, errOut)
	token = strings.TrimSpace(token)

	var stop atomic.Bool
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	t.Cleanup(func() { stop.Store(true); wg.Wait() })
	for u := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				data := imagingtest.JPEG(imagingtest.Photo(320, 240, uint64(20_000+u*10_000+i)))
				code, retry, err := uploadStatus(t, srv.base, token, data)
				if err != nil {
					t.Errorf("upload: %v", err)
					return
				}
				if code == http.StatusServiceUnavailable && retry == "" {
					t.Errorf("503 without Retry-After")
				}
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}
		})
	}
	time.Sleep(time.Second)

	pg.run("stop")
	for range 5 {
		for _, path := range []string{"/api/v1/me", "/api/v1/images"} {
			status, body, hdr := call(t, "GET", srv.base+path, token, nil)
			require.Equal(t, http.StatusServiceUnavailable, status, "%s: %v", path, body)
			require.NotEmpty(t, hdr.Get("Retry-After"))
		}
	}
	status, ready, _ := call(t, "GET", srv.base+"/readyz", "", nil)
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, map[string]any{"database": "down", "blobs": "ok"}, ready["checks"])
	time.Sleep(time.Second)

	pg.run("start")
	require.Eventually(t, func() bool {
		status, _, _ := call(t, "GET", srv.base+"/readyz", "", nil)
		return status == http.StatusOK
	}, 30*time.Second, 200*time.Millisecond)
	time.Sleep(time.Second)
	stop.Store(true)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("uploads by status across the restart: %v", codes)
	require.Positive(t, codes[http.StatusServiceUnavailable])
	for s := range codes {
		require.Contains(t, []int{http.StatusCreated, http.StatusServiceUnavailable}, s, "%v\n%s", codes, srv.logs)
	}
	code, _, err := uploadStatus(t, srv.base, token, imagingtest.JPEG(imagingtest.Photo(320, 240, 99)))
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, code)
}
