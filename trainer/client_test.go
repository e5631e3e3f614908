package trainer_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/regionmodel"
	"github.com/deepimageshub/imagehub/trainer"
	"github.com/deepimageshub/imagehub/trainer/trainertest"
)

// hub is a real HTTP server that speaks the hub's side of the trainer
// protocol for one run, and records what the trainer sent.
type hub struct {
	t      *testing.T
	srv    *httptest.Server
	format string // the run's data format
	trainZ []byte
	valZ   []byte
	// onProgress answers the n-th progress report (from 1); nil answers 200.
	onProgress     func(n int) (status int, cancel bool)
	artifactStatus int
	// dropUploads closes the connection on this many uploads before one
	// is taken.
	dropUploads int
	uploads     int

	mu        sync.Mutex
	leases    int
	progress  []map[string]any
	artifact  []byte
	artFormat string
	failed    []string
	auth      []string
}

func newHub(t *testing.T) *hub {
	h := &hub{t: t, format: "coco", artifactStatus: http.StatusOK,
		trainZ: trainertest.Shapes("train", 80, 96, 1, 1), valZ: trainertest.Shapes("val", 20, 96, 5001, 2)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/trainer/lease", h.lease)
	mux.HandleFunc("GET /data/{split}", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("split") {
		case "train.zip":
			_, _ = w.Write(h.trainZ)
		case "val.zip":
			_, _ = w.Write(h.valZ)
		default:
			http.NotFound(w, r)
		}
	})
	mux.HandleFunc("POST /api/v1/trainer/runs/{id}/progress", h.report)
	mux.HandleFunc("PUT /api/v1/trainer/runs/{id}/artifact", h.upload)
	mux.HandleFunc("POST /api/v1/trainer/runs/{id}/fail", h.fail)
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hub) lease(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.auth = append(h.auth, r.Header.Get("Authorization"))
	if r.Header.Get("Authorization") != "Bearer tok" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var body struct {
		Recipes []string `json:"recipes"`
		Trainer string   `json:"trainer"`
	}
	require.NoError(h.t, json.NewDecoder(r.Body).Decode(&body))
	require.Equal(h.t, []string{"region-classifier"}, body.Recipes)
	require.Equal(h.t, trainer.Agent, body.Trainer)
	h.leases++
	if h.leases > 1 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"run": map[string]any{
		"id": 7, "recipe": "region-classifier", "params": map[string]any{"epochs": 15}, "seed": 3,
		"labels": trainertest.Labels, "attempt": 1,
		"data":  map[string]any{"format": h.format, "train": map[string]string{"url": h.srv.URL + "/data/train.zip"}, "val": map[string]string{"url": h.srv.URL + "/data/val.zip"}},
		"lease": map[string]any{"token": "L1", "expires_at": time.Now().Add(time.Minute), "renew_every_s": 0.2},
	}})
}

func (h *hub) report(w http.ResponseWriter, r *http.Request) {
	require.Equal(h.t, "7", r.PathValue("id"))
	require.Equal(h.t, "L1", r.Header.Get("X-Lease-Token"))
	var p map[string]any
	require.NoError(h.t, json.NewDecoder(r.Body).Decode(&p))
	h.mu.Lock()
	h.progress = append(h.progress, p)
	n := len(h.progress)
	h.mu.Unlock()
	status, cancel := http.StatusOK, false
	if h.onProgress != nil {
		status, cancel = h.onProgress(n)
	}
	if status != http.StatusOK {
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"error":{"code":"lease_lost","message":"the lease was taken back"}}`))
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"lease": map[string]any{"token": "L1", "expires_at": time.Now().Add(time.Minute), "renew_every_s": 0.2}, "cancel": cancel})
}

func (h *hub) upload(w http.ResponseWriter, r *http.Request) {
	require.Equal(h.t, "L1", r.Header.Get("X-Lease-Token"))
	h.mu.Lock()
	h.uploads++
	drop := h.uploads <= h.dropUploads
	h.mu.Unlock()
	if drop {
		// A lost connection: half the body read, then nothing answered.
		_, _ = io.CopyN(io.Discard, r.Body, 100)
		conn, _, err := http.NewResponseController(w).Hijack()
		require.NoError(h.t, err)
		conn.Close()
		return
	}
	b, err := io.ReadAll(r.Body)
	require.NoError(h.t, err)
	h.mu.Lock()
	h.artifact, h.artFormat = b, r.Header.Get("X-Artifact-Format")
	h.mu.Unlock()
	if h.artifactStatus != http.StatusOK {
		w.WriteHeader(h.artifactStatus)
		_, _ = w.Write([]byte(`{"error":{"code":"invalid_artifact","message":"labels unknown"}}`))
		return
	}
	_, _ = w.Write([]byte(`{}`))
}

func (h *hub) fail(w http.ResponseWriter, r *http.Request) {
	require.Equal(h.t, "L1", r.Header.Get("X-Lease-Token"))
	var body struct {
		Error string `json:"error"`
	}
	require.NoError(h.t, json.NewDecoder(r.Body).Decode(&body))
	h.mu.Lock()
	h.failed = append(h.failed, body.Error)
	h.mu.Unlock()
	_, _ = w.Write([]byte(`{}`))
}

func (h *hub) run(t *testing.T, token string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return trainer.Run(ctx, trainer.Options{Hub: h.srv.URL, Token: token, Once: true, TempDir: t.TempDir()})
}

func TestTrainerClient(t *testing.T) {
	t.Parallel()

	t.Run("TrainsAndUploads", func(t *testing.T) {
		t.Parallel()
		h := newHub(t)
		require.NoError(t, h.run(t, "tok"))
		h.mu.Lock()
		defer h.mu.Unlock()
		require.Empty(t, h.failed)
		require.Equal(t, regionmodel.Format, h.artFormat)
		labels, err := regionmodel.Check(context.Background(), h.artifact)
		require.NoError(t, err)
		require.Equal(t, trainertest.Labels, labels)
		require.NotEmpty(t, h.progress)
		last := h.progress[len(h.progress)-1]
		require.Equal(t, "evaluating", last["state"])
		require.Equal(t, last["steps"], last["step"])
		metrics := last["metrics"].(map[string]any)
		require.Greater(t, metrics["AP50"].(float64), metrics["baseline_AP50"].(float64))
		var sawEpoch bool
		for _, p := range h.progress {
			if _, ok := p["loss"]; ok && p["epoch"] != nil {
				sawEpoch = true
			}
		}
		require.True(t, sawEpoch, "progress must carry the epoch and loss")
	})

	t.Run("RetriesALostUpload", func(t *testing.T) {
		t.Parallel()
		h := newHub(t)
		h.dropUploads = 1
		require.NoError(t, h.run(t, "tok"))
		h.mu.Lock()
		defer h.mu.Unlock()
		require.Equal(t, 2, h.uploads)
		require.Empty(t, h.failed)
		_, err := regionmodel.Check(context.Background(), h.artifact)
		require.NoError(t, err, "the artifact that arrives is whole")
	})

	t.Run("StopsOnConflict", func(t *testing.T) {
		t.Parallel()
		h := newHub(t)
		h.onProgress = func(n int) (int, bool) {
			if n >= 2 {
				return http.StatusConflict, false
			}
			return http.StatusOK, false
		}
		require.NoError(t, h.run(t, "tok"))
		h.mu.Lock()
		defer h.mu.Unlock()
		require.Len(t, h.progress, 2, "nothing is sent after the 409")
		require.Nil(t, h.artifact)
		require.Empty(t, h.failed)
	})

	t.Run("StopsOnCancel", func(t *testing.T) {
		t.Parallel()
		h := newHub(t)
		h.onProgress = func(n int) (int, bool) { return http.StatusOK, n >= 1 }
		require.NoError(t, h.run(t, "tok"))
		h.mu.Lock()
		defer h.mu.Unlock()
		require.Len(t, h.progress, 1)
		require.Nil(t, h.artifact)
		require.Empty(t, h.failed)
	})

	t.Run("ReportsAFailure", func(t *testing.T) {
		t.Parallel()
		h := newHub(t)
		h.valZ = []byte("not a zip")
		require.NoError(t, h.run(t, "tok"))
		h.mu.Lock()
		defer h.mu.Unlock()
		require.Len(t, h.failed, 1)
		require.Contains(t, h.failed[0], "val split")
		require.Nil(t, h.artifact)
	})

	t.Run("ReportsAWrongFormat", func(t *testing.T) {
		t.Parallel()
		h := newHub(t)
		h.format = "yolo-seg"
		require.NoError(t, h.run(t, "tok"))
		h.mu.Lock()
		defer h.mu.Unlock()
		require.Len(t, h.failed, 1)
		require.Contains(t, h.failed[0], "coco")
	})

	t.Run("ReportsARefusedArtifact", func(t *testing.T) {
		t.Parallel()
		h := newHub(t)
		h.artifactStatus = http.StatusBadRequest
		require.NoError(t, h.run(t, "tok"))
		h.mu.Lock()
		defer h.mu.Unlock()
		require.NotNil(t, h.artifact)
		require.Len(t, h.failed, 1)
		require.True(t, strings.Contains(h.failed[0], "invalid_artifact"), h.failed[0])
	})

	t.Run("NothingWaits", func(t *testing.T) {
		t.Parallel()
		h := newHub(t)
		h.leases = 1
		require.NoError(t, h.run(t, "tok"))
		require.Nil(t, h.artifact)
	})

	t.Run("RefusedToken", func(t *testing.T) {
		t.Parallel()
		h := newHub(t)
		require.ErrorIs(t, h.run(t, "wrong"), trainer.ErrUnauthorized)
	})
}
