package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/dbtest"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/openapi/openapitest"
)

// workerProc is a running `imagehub worker`.
type workerProc struct {
	cmd  *exec.Cmd
	base string
	logs *syncBuffer
	done chan error
}

// startWorkerProc runs `imagehub worker` with the flags and waits for the
// line that says where it listens.
func startWorkerProc(t testing.TB, addr string, flags ...string) *workerProc {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"worker", "--addr", addr}, flags...)...)
	cmd.Env = environ(map[string]string{})
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	w := &workerProc{cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = w.logs
	require.NoError(t, cmd.Start())
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			first <- sc.Text()
		}
		for sc.Scan() {
		}
		w.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-w.done
		}
	})
	select {
	case line := <-first:
		m := workerURL.FindStringSubmatch(line)
		require.NotNil(t, m, "first line: %q\n%s", line, w.logs)
		w.base = m[3]
	case err := <-w.done:
		t.Fatalf("imagehub worker exited early: %v\n%s", err, w.logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("imagehub worker did not start in time\n%s", w.logs)
	}
	return w
}

type simStats struct {
	Requests  int64 `json:"requests"`
	Succeeded int64 `json:"succeeded"`
	Busy      int64 `json:"busy"`
	Peak      int64 `json:"peak_in_flight"`
	Malformed int64 `json:"malformed"`
}

func (w *workerProc) stats(t testing.TB) simStats {
	t.Helper()
	res, err := http.Get(w.base + "/v2/sim/stats")
	require.NoError(t, err)
	defer res.Body.Close()
	var s simStats
	require.NoError(t, json.NewDecoder(res.Body).Decode(&s))
	return s
}

// hub is a database with an admin, shared by the hub processes of a test.
type hub struct {
	vars  map[string]string
	pool  *pgxpool.Pool
	token string
}

// newHub migrates a fresh database, creates an admin with a token and
// returns the environment for `imagehub serve` without the built-in worker
// and with short timeouts, so that faults resolve within a test.
func newHub(t testing.TB, extra map[string]string) *hub {
	t.Helper()
	vars := map[string]string{
		"DATABASE_URL": dbtest.NewURL(t), "DATA_DIR": t.TempDir(), "BUILTIN_WORKER": "false",
		"JOB_TIMEOUT": "8s", "JOB_RESCUE_AFTER": "8s", "INFER_MAX_BACKOFF": "1s", "ENDPOINT_COOLOFF": "1s",
		"INFER_WORKERS": "12",
	}
	for k, v := range extra {
		vars[k] = v
	}
	_, errOut, err := runCmd(t, vars, "migrate")
	require.NoError(t, err, errOut)
	_, errOut, err = runCmdInput(t, vars, "a long password\n", "users", "create", "--email", "admin@example.com", "--role", "admin")
	require.NoError(t, err, errOut)
	token, errOut, err := runCmd(t, vars, "tokens", "create", "--email", "admin@example.com", "--name", "test")
	require.NoError(t, err, errOut)
	pool, err := pgxpool.New(context.Background(), vars["DATABASE_URL"])
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return &hub{vars: vars, pool: pool, token: strings.TrimSpace(token)}
}

func (h *hub) env() map[string]string {
	m := make(map[string]string, len(h.vars))
	for k, v := range h.vars {
		m[k] = v
	}
	return m
}

// importPhotos writes n distinct photos to a folder and imports them.
func (h *hub) importPhotos(t *testing.T, n int, seed uint64) {
	t.Helper()
	dir := t.TempDir()
	for i := range n {
		p := imagingtest.JPEG(imagingtest.Photo(480, 360, seed+uint64(i)))
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("photo-%03d.jpg", i)), p, 0o644))
	}
	out, errOut, err := runCmd(t, h.vars, "import", "--quiet", dir)
	require.NoError(t, err, errOut)
	require.Contains(t, out, fmt.Sprintf("%d created", n))
}

func (h *hub) register(t *testing.T, base string, endpoints []string, capacity, timeoutMS int) (int, map[string]any) {
	t.Helper()
	status, body, _ := call(t, "POST", base+"/api/v1/models", h.token, map[string]any{
		"name": "imagehub-segmenter", "version": "1", "task": "segmentation",
		"endpoints": endpoints, "capacity": capacity, "timeout_ms": timeoutMS, "enabled": true,
	})
	return status, body
}

// waitSettled waits until no image waits for ingest or inference and no
// inference job is left to run.
func (h *hub) waitSettled(t *testing.T, within time.Duration, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		pending := count(t, h.pool, "SELECT count(*) FROM images WHERE status IN ('uploaded', 'processing', 'awaiting_inference')")
		jobs := count(t, h.pool, "SELECT count(*) FROM river_job WHERE kind IN ('ingest', 'infer') AND finalized_at IS NULL")
		if pending == 0 && jobs == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled after %s: %d images and %d jobs pending\n%s", within, pending, jobs, logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkStored checks what inference left: every image in review has its
// proposals exactly once (as many as its run reported), every mask fits its
// image, every score is in [0, 1], and every failed image says why.
func (h *hub) checkStored(t *testing.T) (reviewed, failed int) {
	t.Helper()
	ctx := context.Background()
	require.Zero(t, count(t, h.pool, `
		SELECT count(*) FROM inference_runs r
		WHERE r.state = 'succeeded'
		  AND r.instances <> (SELECT count(*) FROM proposals p WHERE p.image_id = r.image_id AND p.model_id = r.model_id)`),
		"a run's proposals are stored once, all of them")
	require.Zero(t, count(t, h.pool, `
		SELECT count(*) FROM proposals p JOIN inference_runs r USING (image_id, model_id) WHERE r.state <> 'succeeded'`),
		"nothing is stored for a run that failed")
	require.Zero(t, count(t, h.pool, `
		SELECT count(*) FROM images i WHERE i.status = 'failed'
		  AND NOT EXISTS (SELECT 1 FROM inference_runs r WHERE r.image_id = i.id AND r.state = 'failed' AND r.last_error <> '')`),
		"a failed image has a run that says why")

	rows, err := h.pool.Query(ctx, `
		SELECT p.height, p.width, p.counts, p.score, p.area, i.height, i.width
		FROM proposals p JOIN images i ON i.id = p.image_id`)
	require.NoError(t, err)
	defer rows.Close()
	n := 0
	for rows.Next() {
		var ph, pw, ih, iw, area int32
		var counts string
		var score float32
		require.NoError(t, rows.Scan(&ph, &pw, &counts, &score, &area, &ih, &iw))
		require.Equal(t, [2]int32{ih, iw}, [2]int32{ph, pw}, "mask at the image's size")
		require.True(t, score >= 0 && score <= 1, "score %v", score)
		r := mask.RLE{Size: [2]int{int(ph), int(pw)}, Counts: counts}
		require.NoError(t, r.Validate())
		a, err := r.Area()
		require.NoError(t, err)
		require.Equal(t, int(area), a)
		n++
	}
	require.NoError(t, rows.Err())
	reviewed = count(t, h.pool, "SELECT count(*) FROM images WHERE status = 'awaiting_review'")
	failed = count(t, h.pool, "SELECT count(*) FROM images WHERE status = 'failed'")
	return reviewed, failed
}

// TestDispatchTwoHubsOneWorker: two hub processes share one worker of
// capacity 2, which never sees more than 2 requests at once; one hub is
// killed with SIGKILL mid-dispatch and restarted; every image ends with its
// proposals, stored once.
func TestDispatchTwoHubsOneWorker(t *testing.T) {
	t.Parallel()
	w := startWorkerProc(t, "127.0.0.1:0", "--capacity", "2", "--simulate-latency", "60ms")
	h := newHub(t, nil)
	a := startServer(t, h.env())
	b := startServer(t, h.env())
	status, body := h.register(t, a.base, []string{w.base}, 2, 5000)
	require.Equal(t, http.StatusCreated, status, "%v", body)
	require.Empty(t, body["model"].(map[string]any)["problems"])

	const n = 40
	h.importPhotos(t, n, 7000)
	deadline := time.Now().Add(60 * time.Second)
	for count(t, h.pool, "SELECT count(*) FROM inference_runs WHERE state = 'succeeded'") < 3 {
		require.True(t, time.Now().Before(deadline), "inference never started\n%s\n%s", a.logs, w.logs)
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, a.cmd.Process.Kill())
	<-a.done
	require.Less(t, count(t, h.pool, "SELECT count(*) FROM images WHERE status = 'awaiting_review'"), n, "the kill came mid-dispatch")
	a = startServer(t, h.env())

	h.waitSettled(t, 120*time.Second, func() string { return a.logs.String() + b.logs.String() })
	reviewed, failed := h.checkStored(t)
	require.Equal(t, n, reviewed, "every image has proposals")
	require.Zero(t, failed)
	require.Equal(t, n, count(t, h.pool, "SELECT count(DISTINCT image_id) FROM proposals"))
	st := w.stats(t)
	require.LessOrEqual(t, st.Peak, int64(2), "the worker never saw more than its capacity: %+v", st)
	require.Zero(t, st.Busy, "no request was refused for capacity: %+v", st)
	require.GreaterOrEqual(t, st.Succeeded, int64(n))
}

// TestDispatchFaultyWorker: a worker that fails, hangs and answers against
// the convention. Every image ends with proposals or an explained failure,
// nothing malformed is stored, nothing twice.
func TestDispatchFaultyWorker(t *testing.T) {
	t.Parallel()
	w := startWorkerProc(t, "127.0.0.1:0", "--capacity", "4", "--simulate-latency", "20ms",
		"--fail-rate", "0.1", "--timeout-rate", "0.05", "--malformed-rate", "0.05", "--hang", "5s", "--seed", "42")
	h := newHub(t, map[string]string{"INFER_MAX_ATTEMPTS": "6"})
	srv := startServer(t, h.env())
	status, body := h.register(t, srv.base, []string{w.base}, 4, 1500)
	require.Equal(t, http.StatusCreated, status, "%v", body)

	const n = 40
	h.importPhotos(t, n, 9000)
	h.waitSettled(t, 180*time.Second, srv.logs.String)
	reviewed, failed := h.checkStored(t)
	require.Equal(t, n, reviewed+failed, "every image ended one way or the other")
	require.Positive(t, reviewed)
	st := w.stats(t)
	require.LessOrEqual(t, st.Peak, int64(4), "%+v", st)
	// The malformed answers were recognised and recorded as contract errors.
	contract := count(t, h.pool, "SELECT count(*) FROM inference_runs WHERE state = 'failed' AND error_kind = 'contract'")
	require.Equal(t, failed, count(t, h.pool, "SELECT count(*) FROM inference_runs WHERE state = 'failed'"))
	t.Logf("worker %+v; %d reviewed, %d failed (%d contract errors)", st, reviewed, failed, contract)

	// The image API shows the failure to whoever looks.
	var id string
	if failed > 0 {
		require.NoError(t, h.pool.QueryRow(context.Background(), "SELECT id::text FROM images WHERE status = 'failed' LIMIT 1").Scan(&id))
		status, img, _ := call(t, "GET", srv.base+"/api/v1/images/"+id, h.token, nil)
		require.Equal(t, 200, status)
		runs := img["inference"].([]any)
		require.Len(t, runs, 1)
		require.NotEmpty(t, runs[0].(map[string]any)["last_error"])
	}
}

// TestDispatchWorkerDownAtStart: the model is registered while its worker is
// down; jobs wait, and proceed once it comes up.
func TestDispatchWorkerDownAtStart(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	h := newHub(t, map[string]string{"INFER_MAX_ATTEMPTS": "25"})
	srv := startServer(t, h.env())
	status, body := h.register(t, srv.base, []string{"http://" + addr}, 2, 2000)
	require.Equal(t, http.StatusCreated, status, "an unreachable endpoint is saved: %v", body)
	problems := body["model"].(map[string]any)["problems"].([]any)
	require.Len(t, problems, 1)
	require.Contains(t, problems[0], "not ready")

	const n = 10
	h.importPhotos(t, n, 11000)
	deadline := time.Now().Add(60 * time.Second)
	for count(t, h.pool, "SELECT count(*) FROM inference_runs WHERE error_kind IS NOT NULL") == 0 {
		require.True(t, time.Now().Before(deadline), "no inference was tried\n%s", srv.logs)
		time.Sleep(50 * time.Millisecond)
	}
	require.Zero(t, count(t, h.pool, "SELECT count(*) FROM images WHERE status = 'awaiting_review'"))

	startWorkerProc(t, addr, "--capacity", "2")
	h.waitSettled(t, 90*time.Second, srv.logs.String)
	reviewed, failed := h.checkStored(t)
	require.Equal(t, n, reviewed, "every image proceeded once the worker came up")
	require.Zero(t, failed)
}

// uploadPhoto posts one photo to POST /api/v1/images and returns the image id.
func uploadPhoto(t *testing.T, base, token, name string, data []byte, labels ...string) string {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, l := range labels {
		require.NoError(t, mw.WriteField("labels", l))
	}
	fw, err := mw.CreateFormFile("files", name)
	require.NoError(t, err)
	_, err = fw.Write(data)
	require.NoError(t, err)
	require.NoError(t, mw.Close())
	req, err := http.NewRequest("POST", base+"/api/v1/images", &buf)
	require.NoError(t, err)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := openapitest.Client(t).Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var body struct {
		Results []struct {
			Status string `json:"status"`
			Image  struct {
				ID string `json:"id"`
			} `json:"image"`
		} `json:"results"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
	require.Equal(t, http.StatusCreated, res.StatusCode)
	require.Len(t, body.Results, 1)
	return body.Results[0].Image.ID
}
