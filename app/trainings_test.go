package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/config"
	"github.com/deepimageshub/imagehub/dataset/datasettest"
	"github.com/deepimageshub/imagehub/dbtest"
	"github.com/deepimageshub/imagehub/training"
	"github.com/deepimageshub/imagehub/worker"
	"github.com/deepimageshub/imagehub/worker/onnxworker"
)

// testModelMagic starts every artifact the test's checker accepts; the
// labels it predicts follow, comma-separated, up to the first newline.
const testModelMagic = "TESTMODEL "

// trainingWorld is a dataset world whose server knows a test recipe, an
// artifact checker standing in for the CPU trainer's, and a worker that
// serves the trained model "trained"; a model "today" proposes.
type trainingWorld struct {
	*datasetWorld
	cfg       config.Config
	topts     training.Options
	datasetID string
	version   int
	trainer   *client // holds a trainer token
	// noONNX, when set, is why the trained models' worker cannot serve
	// ONNX files (training.Options.ServeONNX).
	noONNX *atomic.Pointer[string]
	// endpoint, when set, replaces the worker that serves trained models.
	endpoint *atomic.Pointer[string]
}

func newTrainingWorld(t *testing.T, mods ...func(*config.Config)) *trainingWorld {
	t.Helper()
	pool := dbtest.NewPool(t)
	cfg := testConfig(t)
	for _, m := range mods {
		m(&cfg)
	}
	blobs, err := blob.Open(context.Background(), "file://"+t.TempDir())
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg.BaseURL = "http://" + ln.Addr().String()

	trained := httptest.NewServer(worker.New(worker.Config{Model: "trained", Synthetic: true, Capacity: 2}))
	t.Cleanup(trained.Close)
	noONNX := &atomic.Pointer[string]{}
	endpoint := &atomic.Pointer[string]{}
	topts := training.Options{
		ServeONNX: func() error {
			if why := noONNX.Load(); why != nil {
				return errors.New(*why)
			}
			return nil
		},
		Recipes: []training.Recipe{{
			Name: "test-recipe", Description: "the test's", Format: training.FormatCOCO,
			Params: map[string]training.Param{"epochs": {Type: "int", Min: 1, Max: 10, Default: 2}},
		}},
		CheckArtifact: map[string]training.Checker{
			// As imagehub serve wires it: ONNX files are loaded.
			training.ArtifactONNX: onnxworker.CheckLoads(onnxworker.Library(os.Getenv), t.TempDir()),
			training.ArtifactRegion: func(_ context.Context, data []byte) ([]string, error) {
				rest, ok := bytes.CutPrefix(data, []byte(testModelMagic))
				if !ok {
					return nil, errors.New("not a test model")
				}
				line, _, _ := bytes.Cut(rest, []byte("\n"))
				return strings.Split(string(line), ","), nil
			},
		},
		Endpoint: func() string {
			if u := endpoint.Load(); u != nil {
				return *u
			}
			return trained.URL
		},
	}
	tb := startBundleWith(t, cfg, pool, blobs, ln, topts)
	w := &trainingWorld{cfg: cfg, topts: topts, noONNX: noONNX, endpoint: endpoint, datasetWorld: &datasetWorld{testBundle: tb, fx: datasettest.New(t, tb.pool, tb.blobs),
		anns: map[string][]datasettest.Annotation{}, images: map[string]datasettest.Image{}}}
	w.admin, _ = tb.userWithRole(t, "admin@example.com", auth.RoleAdmin)
	w.premium, _ = tb.userWithRole(t, "premium@example.com", auth.RolePremium)
	// 32 images, 16 with a cat: the 60/40 split falls on random dataset
	// ids, and with 16 images (8 cats) none reached val about once in 60
	// runs (0.6^8): a fresh-clone make test saw it.
	w.addImages(t, 32)
	w.datasetID = w.createDataset(t, map[string]any{"name": "train-me", "splits": map[string]float64{"train": 0.6, "val": 0.4, "test": 0}})
	w.version = int(w.publish(t, w.datasetID)["number"].(float64))

	res := w.admin.json(http.MethodPost, "/api/v1/tokens", map[string]any{"name": "gpu pod", "role": "trainer"})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	w.trainer = w.client(t)
	w.trainer.header.Set("Authorization", "Bearer "+res.json(t)["token"].(string))
	return w
}

// registerToday registers an enabled model, the one that proposes today.
func (w *trainingWorld) registerToday(t *testing.T) {
	t.Helper()
	srv := httptest.NewServer(worker.New(worker.Config{Model: "today", Synthetic: true, Capacity: 2}))
	t.Cleanup(srv.Close)
	res := w.admin.json(http.MethodPost, "/api/v1/models", map[string]any{"name": "today", "version": "1",
		"endpoints": []string{srv.URL}, "capacity": 2, "enabled": true})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
}

func (w *trainingWorld) start(t *testing.T, c *client, body map[string]any) string {
	t.Helper()
	full := map[string]any{"dataset_id": w.datasetID, "version": w.version, "recipe": "test-recipe"}
	for k, v := range body {
		full[k] = v
	}
	res := c.json(http.MethodPost, "/api/v1/trainings", full)
	require.Equal(t, http.StatusAccepted, res.StatusCode, "%s", res.body)
	tr := res.json(t)["training"].(map[string]any)
	require.Equal(t, "queued", tr["state"])
	return tr["id"].(string)
}

// leased is a run as the test trainer holds it.
type leased struct {
	ID      string             `json:"id"`
	Recipe  string             `json:"recipe"`
	Params  map[string]float64 `json:"params"`
	Seed    int64              `json:"seed"`
	Labels  []string           `json:"labels"`
	Attempt int                `json:"attempt"`
	Data    struct {
		Format string `json:"format"`
		Train  struct {
			URL string `json:"url"`
		} `json:"train"`
		Val struct {
			URL string `json:"url"`
		} `json:"val"`
	} `json:"data"`
	Lease struct {
		Token       string    `json:"token"`
		ExpiresAt   time.Time `json:"expires_at"`
		RenewEveryS int       `json:"renew_every_s"`
	} `json:"lease"`
}

func (w *trainingWorld) lease(t *testing.T, c *client) *leased {
	t.Helper()
	res := c.json(http.MethodPost, "/api/v1/trainer/lease", map[string]any{"recipes": []string{"test-recipe"}, "trainer": "test-trainer/1.0"})
	if res.StatusCode == http.StatusNoContent {
		return nil
	}
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	var body struct {
		Run leased `json:"run"`
	}
	require.NoError(t, json.Unmarshal(res.body, &body))
	return &body.Run
}

func (c *client) withLease(r *leased) http.Header {
	return http.Header{"X-Lease-Token": {r.Lease.Token}, "Content-Type": {"application/json"}}
}

func (w *trainingWorld) progress(c *client, r *leased, step int, loss float64) *response {
	b, _ := json.Marshal(map[string]any{"step": step, "steps": 10, "epoch": step / 5, "loss": loss})
	return c.do(http.MethodPost, "/api/v1/trainer/runs/"+r.ID+"/progress", bytes.NewReader(b), c.withLease(r))
}

func (w *trainingWorld) upload(c *client, r *leased, data []byte) *response {
	h := c.withLease(r)
	h.Set("X-Artifact-Format", training.ArtifactRegion)
	h.Set("Content-Type", "application/octet-stream")
	return c.do(http.MethodPut, "/api/v1/trainer/runs/"+r.ID+"/artifact", bytes.NewReader(data), h)
}

func (w *trainingWorld) get(t *testing.T, id string) map[string]any {
	t.Helper()
	res := w.admin.get("/api/v1/trainings/" + id) // admins see every training
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	return res.json(t)
}

func (w *trainingWorld) waitState(t *testing.T, id, state string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		tr := w.get(t, id)
		if tr["state"] == state {
			return tr
		}
		require.True(t, time.Now().Before(deadline), "training still %s, want %s: %v", tr["state"], state, tr)
		time.Sleep(100 * time.Millisecond)
	}
}

func (w *trainingWorld) artifactBlobs(t *testing.T) []string {
	t.Helper()
	var keys []string
	require.NoError(t, w.blobs.List(context.Background(), "trainings/", func(i blob.Info) error {
		keys = append(keys, i.Key)
		return nil
	}))
	return keys
}

// TestTrainingProtocol runs a training through the whole trainer protocol
// with a trainer written here: it leases the run, downloads the real zips
// without its token, reports progress, has a corrupt artifact refused, then
// uploads one the checker accepts; the hub registers it as version 1 of
// model "trained" (disabled), evaluates it on the val split beside the
// model that proposes today, and the run succeeds with the figures.
func TestTrainingProtocol(t *testing.T) {
	t.Parallel()
	w := newTrainingWorld(t)
	w.registerToday(t)
	recordEvents(t, w.pool)

	res := w.premium.get("/api/v1/trainings/recipes")
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	require.Contains(t, string(res.body), `"name":"test-recipe"`)

	id := w.start(t, w.premium, map[string]any{"labels": []string{"cat"}, "params": map[string]any{"epochs": 3}, "model_name": "trained"})
	run := w.lease(t, w.trainer)
	require.NotNil(t, run)
	require.Equal(t, id, run.ID)
	require.Equal(t, []string{"cat"}, run.Labels)
	require.Equal(t, 3.0, run.Params["epochs"])
	require.Equal(t, 1, run.Attempt)
	require.Equal(t, "coco", run.Data.Format)
	require.Positive(t, run.Lease.RenewEveryS)
	require.Nil(t, w.lease(t, w.trainer), "one queued run is handed out once")

	// The data: plain GETs, no token; only cat instances, only the split.
	for split, u := range map[string]string{"train": run.Data.Train.URL, "val": run.Data.Val.URL} {
		resp, err := http.Get(u)
		require.NoError(t, err)
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", data)
		z := openZip(t, data)
		var coco evalCOCO
		require.NoError(t, json.Unmarshal(z.files["annotations.json"], &coco))
		require.NotEmpty(t, coco.Images, split)
		require.NotEmpty(t, coco.Annotations, split)
		for _, c := range coco.Categories {
			if c.Name != "cat" {
				for _, a := range coco.Annotations {
					require.NotEqual(t, c.ID, a.CategoryID, "a %s instance in a cat-only run", c.Name)
				}
			}
		}
	}
	resp, err := http.Get(strings.Replace(run.Data.Train.URL, "key=", "key=x", 1))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "a wrong key gets nothing")

	for step, loss := range []float64{2.5, 1.2, 0.6} {
		res := w.progress(w.trainer, run, step+1, loss)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
		require.Equal(t, false, res.json(t)["cancel"])
	}
	tr := w.get(t, id)
	require.Equal(t, "running", tr["state"])
	require.Equal(t, map[string]any{"step": 3.0, "steps": 10.0, "epoch": 0.0, "loss": 0.6, "phase": "running"}, tr["progress"])
	require.Equal(t, "test-trainer/1.0", tr["trainer"])

	// The trainer's own validation pass is shown as such while it runs.
	b, _ := json.Marshal(map[string]any{"step": 10, "steps": 10, "state": "evaluating"})
	res = w.trainer.do(http.MethodPost, "/api/v1/trainer/runs/"+run.ID+"/progress", bytes.NewReader(b), w.trainer.withLease(run))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	tr = w.get(t, id)
	require.Equal(t, "running", tr["state"])
	require.Equal(t, "evaluating", tr["progress"].(map[string]any)["phase"])
	res = w.premium.get("/trainings/" + id + "/status")
	require.Contains(t, res.doc(t).Find(".training-phase").Text(), "the trainer is evaluating")

	// A corrupt artifact, and one predicting a label the run did not train.
	for _, bad := range []string{"\x00garbage", testModelMagic + "cat,dog", testModelMagic + "cat,cat", ""} {
		res = w.upload(w.trainer, run, []byte(bad))
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s", res.body)
		code, _ := res.apiError(t)
		require.Equal(t, "invalid_artifact", code)
	}
	require.Empty(t, w.artifactBlobs(t))
	require.Equal(t, "running", w.get(t, id)["state"])

	model := []byte(testModelMagic + "cat")
	res = w.upload(w.trainer, run, model)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	require.Equal(t, map[string]any{"name": "trained", "version": "1"}, res.json(t)["model"])
	res = w.progress(w.trainer, run, 4, 0.5)
	require.Equal(t, http.StatusConflict, res.StatusCode, "the lease ends with the upload")

	tr = w.waitState(t, id, "succeeded")
	require.Equal(t, map[string]any{"name": "trained", "version": "1"}, tr["model"])
	metrics := tr["metrics"].(map[string]any)
	ev := metrics["evaluation"].(map[string]any)
	require.Equal(t, "done", ev["state"])
	require.Equal(t, "val", ev["split"])
	require.Equal(t, "trained", ev["model"].(map[string]any)["name"])
	base := metrics["baseline"].(map[string]any)
	require.Equal(t, "today", base["model"].(map[string]any)["name"])
	require.Equal(t, "done", base["state"])

	// Registered disabled, served from the configured worker.
	res = w.admin.get("/api/v1/models")
	require.Equal(t, http.StatusOK, res.StatusCode)
	var models struct {
		Items []struct {
			Name, Version string
			Enabled       bool
		} `json:"items"`
	}
	require.NoError(t, json.Unmarshal(res.body, &models))
	found := false
	for _, m := range models.Items {
		if m.Name == "trained" {
			found = true
			require.Equal(t, "1", m.Version)
			require.False(t, m.Enabled)
		}
	}
	require.True(t, found, "%s", res.body)

	// The worker's loader and the owner's download read the same bytes.
	rc, format, err := training.NewStore(w.pool, w.blobs).Artifact(context.Background(), "trained", "1")
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	rc.Close()
	require.NoError(t, err)
	require.Equal(t, model, got)
	require.Equal(t, training.ArtifactRegion, format)
	res = w.premium.get("/api/v1/trainings/" + id + "/artifact")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, model, res.body)

	// The loss curve is on the page.
	res = w.premium.get("/trainings/" + id)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	doc := res.doc(t)
	require.Equal(t, 1, doc.Find("svg.loss-curve polyline").Length(), "%s", res.body)
	require.Equal(t, "succeeded", doc.Find("#training-status").AttrOr("data-state", ""))
	require.Zero(t, doc.Find("#training-status[hx-get]").Length(), "a finished training polls no more")
	require.Equal(t, 1, doc.Find(`#training-classes tr[data-label="cat"] td.base-ap50`).Length(), "%s", res.body)
	require.Equal(t, "/api/v1/trainings/"+id+"/artifact", doc.Find("#artifact-download").AttrOr("href", ""))
	res = w.premium.get("/trainings")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, 1, res.doc(t).Find(`#trainings tr[data-id="`+id+`"]`).Length())
	require.Contains(t, emitted(t, w.pool), "training.finished")
	var state string
	require.NoError(t, w.pool.QueryRow(context.Background(), `SELECT object_state FROM webhook_deliveries WHERE event = 'training.finished' AND object_id = $1`, id).Scan(&state))
	require.Equal(t, "succeeded", state)
}

// TestTrainingForm: the start form queues a training and shows its page,
// which polls itself; a refusal re-renders the form naming the field.
func TestTrainingForm(t *testing.T) {
	t.Parallel()
	w := newTrainingWorld(t)
	res := w.premium.get("/trainings")
	require.Equal(t, http.StatusOK, res.StatusCode)
	doc := res.doc(t)
	choice := fmt.Sprintf("%s|%d", w.datasetID, w.version)
	require.Equal(t, 1, doc.Find(`#training-version option[value="`+choice+`"]`).Length(), "%s", res.body)
	require.Equal(t, 1, doc.Find(`#training-recipe option[value="test-recipe"]`).Length())

	res = w.premium.form("/trainings", url.Values{"dataset_version": {choice}, "labels": {"unicorn"}, "recipe": {"test-recipe"}})
	require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s", res.body)
	require.Contains(t, res.doc(t).Find("#training-form").Text(), "unicorn")

	res = w.premium.form("/trainings", url.Values{"dataset_version": {choice}, "labels": {"cat"}, "recipe": {"test-recipe"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "%s", res.body)
	loc := res.Header.Get("Location")
	require.True(t, strings.HasPrefix(loc, "/trainings/"), loc)
	res = w.premium.get(loc)
	require.Equal(t, http.StatusOK, res.StatusCode)
	doc = res.doc(t)
	require.Equal(t, loc+"/status", doc.Find("#training-status").AttrOr("hx-get", ""))
	require.Equal(t, "queued", doc.Find("#training-status").AttrOr("data-state", ""))
	res = w.premium.get(loc + "/status")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, 1, res.doc(t).Find("#training-status progress").Length())
}

// TestTrainingLeaseExpiry: a trainer that stops reporting loses its run to
// the next trainer with attempt 2; its old lease is refused; a run whose
// last attempt lapses ends failed with the reason, with no trainer asking.
func TestTrainingLeaseExpiry(t *testing.T) {
	t.Parallel()
	w := newTrainingWorld(t, func(c *config.Config) { c.TrainingLease = time.Second; c.TrainingMaxAttempts = 2 })
	id := w.start(t, w.premium, nil)
	first := w.lease(t, w.trainer)
	require.NotNil(t, first)
	require.Equal(t, 1, first.Attempt)
	time.Sleep(1500 * time.Millisecond)
	second := w.lease(t, w.trainer)
	require.NotNil(t, second, "the lapsed run is handed out again")
	require.Equal(t, id, second.ID)
	require.Equal(t, 2, second.Attempt)
	res := w.progress(w.trainer, first, 1, 1)
	require.Equal(t, http.StatusConflict, res.StatusCode, "%s", res.body)
	code, _ := res.apiError(t)
	require.Equal(t, "lease_lost", code)
	res = w.upload(w.trainer, first, []byte(testModelMagic+"cat"))
	require.Equal(t, http.StatusConflict, res.StatusCode, "%s", res.body)

	tr := w.waitState(t, id, "failed")
	require.Contains(t, tr["error"], "lease lapsed")
	require.Equal(t, 2.0, tr["attempt"])
	require.Nil(t, w.lease(t, w.trainer))
}

// TestTrainingFailures: a trainer's failure puts the run back; the last
// attempt's failure ends it failed with the trainer's error.
func TestTrainingFailures(t *testing.T) {
	t.Parallel()
	w := newTrainingWorld(t, func(c *config.Config) { c.TrainingMaxAttempts = 2 })
	id := w.start(t, w.premium, nil)
	for attempt, msg := range []string{"CUDA out of memory", "loss became NaN"} {
		run := w.lease(t, w.trainer)
		require.NotNil(t, run)
		require.Equal(t, attempt+1, run.Attempt)
		b, _ := json.Marshal(map[string]string{"error": msg})
		res := w.trainer.do(http.MethodPost, "/api/v1/trainer/runs/"+run.ID+"/fail", bytes.NewReader(b), w.trainer.withLease(run))
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	}
	tr := w.get(t, id)
	require.Equal(t, "failed", tr["state"])
	require.Equal(t, "loss became NaN", tr["error"])
	require.Nil(t, w.lease(t, w.trainer))
}

// TestTrainingBadInput: every refusal is a 400 naming the field and queues
// nothing; a second training of one user waits its turn (429); cancel
// frees the turn and tells a trainer holding the run to stop.
func TestTrainingBadInput(t *testing.T) {
	t.Parallel()
	w := newTrainingWorld(t)
	w.registerToday(t)
	noTrain := w.createDataset(t, map[string]any{"name": "no-train", "splits": map[string]float64{"train": 0, "val": 1, "test": 0}})
	w.publish(t, noTrain)
	ok := map[string]any{"dataset_id": w.datasetID, "version": w.version, "recipe": "test-recipe"}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for a, b := range ok {
			m[a] = b
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for _, c := range []struct {
		body  map[string]any
		field string
	}{
		{with("dataset_id", "not-a-uuid"), "dataset_id"},
		{with("dataset_id", "6f1c2a34-0000-4000-8000-000000000000"), "dataset_id"},
		{with("version", 99), "version"},
		{with("version", nil), "version"},
		{with("labels", []string{"unicorn"}), "labels"},
		{map[string]any{"dataset_id": noTrain, "version": 1, "recipe": "test-recipe"}, "labels"},
		{with("recipe", "nope"), "recipe"},
		{with("recipe", nil), "recipe"},
		{with("params", map[string]any{"epochs": 99}), "params.epochs"},
		{with("params", map[string]any{"epochs": 1.5}), "params.epochs"},
		{with("params", map[string]any{"foo": 1}), "params.foo"},
		{with("enable", true), "enable"},
		{with("model_name", "bad name!"), "model_name"},
		{with("model_name", "today"), "model_name"},
		{with("seed", -1), "seed"},
		{with("seed", 1.5), "seed"},
		{with("seed", int64(1)<<31), "seed"},
		{with("seed", "42"), "seed"},
		{with("seed", []int{1}), "seed"},
	} {
		res := w.premium.json(http.MethodPost, "/api/v1/trainings", c.body)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "%v: %s", c.body, res.body)
		_, field := res.apiError(t)
		require.Equal(t, c.field, field, "%v: %s", c.body, res.body)
	}
	var n int
	require.NoError(t, w.pool.QueryRow(context.Background(), "SELECT count(*) FROM trainings").Scan(&n))
	require.Zero(t, n, "nothing is queued by a refused request")
	contributor, _ := w.userWithRole(t, "c@example.com", auth.RoleContributor)
	require.Equal(t, http.StatusForbidden, contributor.json(http.MethodPost, "/api/v1/trainings", ok).StatusCode)

	first := w.start(t, w.premium, nil)
	res := w.premium.json(http.MethodPost, "/api/v1/trainings", ok)
	require.Equal(t, http.StatusTooManyRequests, res.StatusCode, "%s", res.body)
	run := w.lease(t, w.trainer)
	require.NotNil(t, run)
	res = w.premium.json(http.MethodPost, "/api/v1/trainings/"+first+"/cancel", map[string]any{})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	require.Equal(t, "cancelled", res.json(t)["state"])
	res = w.progress(w.trainer, run, 1, 1)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	require.Equal(t, true, res.json(t)["cancel"])
	res = w.upload(w.trainer, run, []byte(testModelMagic+"cat"))
	require.Equal(t, http.StatusConflict, res.StatusCode, "a cancelled run takes no artifact: %s", res.body)
	require.Empty(t, w.artifactBlobs(t))
	second := w.start(t, w.premium, nil)
	require.NotEqual(t, first, second)

	// Another user's training is not found.
	other, _ := w.userWithRole(t, "p2@example.com", auth.RolePremium)
	require.Equal(t, http.StatusNotFound, other.get("/api/v1/trainings/"+second).StatusCode)
	res = other.get("/api/v1/trainings")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Empty(t, res.json(t)["items"])

	// The list comes a page at a time, newest first.
	var ids []string
	next := ""
	for range 3 {
		res = w.premium.get("/api/v1/trainings?limit=1" + next)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
		page := res.json(t)
		for _, it := range page["items"].([]any) {
			ids = append(ids, it.(map[string]any)["id"].(string))
		}
		c, ok := page["next_cursor"].(string)
		if !ok {
			break
		}
		next = "&cursor=" + url.QueryEscape(c)
	}
	require.Equal(t, []string{second, first}, ids)
	for _, q := range []string{"limit=0", "limit=501", "cursor=nope"} {
		res = w.premium.get("/api/v1/trainings?" + q)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s: %s", q, res.body)
	}
}

// TestTrainerTokenOnlyTrains: a trainer token reaches the trainer routes
// and nothing else; only admins make one; other tokens cannot lease.
func TestTrainerTokenOnlyTrains(t *testing.T) {
	t.Parallel()
	w := newTrainingWorld(t)
	for _, path := range []string{"/api/v1/me", "/api/v1/datasets", "/api/v1/trainings", "/api/v1/labels", "/"} {
		res := w.trainer.get(path)
		require.Equal(t, http.StatusForbidden, res.StatusCode, "%s: %s", path, res.body)
	}
	res := w.trainer.json(http.MethodPost, "/api/v1/auth/logout", map[string]any{})
	require.Equal(t, http.StatusForbidden, res.StatusCode, "%s", res.body)
	res = w.premium.json(http.MethodPost, "/api/v1/tokens", map[string]any{"name": "x", "role": "trainer"})
	require.Equal(t, http.StatusForbidden, res.StatusCode, "%s", res.body)
	res = w.admin.json(http.MethodPost, "/api/v1/tokens", map[string]any{"name": "x", "role": "boss"})
	require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s", res.body)
	// The account page makes one for an admin, and lists it as such.
	res = w.admin.get("/account")
	require.Equal(t, 1, res.doc(t).Find("#token-trainer").Length())
	res = w.premium.get("/account")
	require.Zero(t, res.doc(t).Find("#token-trainer").Length())
	res = w.admin.form("/account/tokens", url.Values{"name": {"pod 2"}, "role": {"trainer"}})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	pod := w.client(t)
	pod.header.Set("Authorization", "Bearer "+res.doc(t).Find("#new-token").Text())
	res = pod.json(http.MethodPost, "/api/v1/trainer/lease", map[string]any{"recipes": []string{"test-recipe"}, "trainer": "x"})
	require.Equal(t, http.StatusNoContent, res.StatusCode, "%s", res.body)
	require.Equal(t, http.StatusForbidden, pod.get("/api/v1/me").StatusCode)
	res = w.premium.form("/account/tokens", url.Values{"name": {"sneaky"}, "role": {"trainer"}})
	require.Equal(t, http.StatusForbidden, res.StatusCode, "%s", res.body)
	res = w.admin.get("/api/v1/tokens")
	require.Contains(t, string(res.body), `"role":"trainer"`)

	admin := w.tokenClient(t, w.admin)
	res = admin.json(http.MethodPost, "/api/v1/trainer/lease", map[string]any{"recipes": []string{"test-recipe"}, "trainer": "x"})
	require.Equal(t, http.StatusForbidden, res.StatusCode, "%s", res.body)
}

// TestTrainingUploadCut: an upload whose connection closes mid-body stores
// nothing and leaves the run running, as does one too large; the trainer
// uploads again, megabytes streamed, and an admin's "enable" registers the
// model enabled.
func TestTrainingUploadCut(t *testing.T) {
	t.Parallel()
	w := newTrainingWorld(t, func(c *config.Config) { c.TrainingArtifactMaxBytes = 2 << 20 })
	id := w.start(t, w.admin, map[string]any{"model_name": "trained", "enable": true})
	run := w.lease(t, w.trainer)
	require.NotNil(t, run)

	conn, err := net.Dial("tcp", strings.TrimPrefix(w.base, "http://"))
	require.NoError(t, err)
	_, err = fmt.Fprintf(conn, "PUT /api/v1/trainer/runs/%s/artifact HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"+
		"X-Lease-Token: %s\r\nX-Artifact-Format: imagehub-region\r\nContent-Length: 1000000\r\n\r\n%s",
		run.ID, w.trainer.header.Get("Authorization"), run.Lease.Token, testModelMagic+"cat"+strings.Repeat(",cat", 1000))
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond)
	require.NoError(t, conn.Close())
	time.Sleep(300 * time.Millisecond)
	require.Empty(t, w.artifactBlobs(t))
	require.Equal(t, "running", w.get(t, id)["state"])

	res := w.upload(w.trainer, run, []byte(testModelMagic+"cat\n"+strings.Repeat("weights ", 300_000)))
	require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode, "%s", res.body)
	require.Empty(t, w.artifactBlobs(t))
	require.Equal(t, "running", w.get(t, id)["state"])

	model := []byte(testModelMagic + "cat\n" + strings.Repeat("weights ", 200_000))
	res = w.upload(w.trainer, run, model)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	require.Len(t, w.artifactBlobs(t), 1)
	w.waitState(t, id, "succeeded")
	res = w.admin.get("/api/v1/trainings/" + id + "/artifact")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, model, res.body)
	res = w.admin.get("/api/v1/models")
	require.Contains(t, string(res.body), `"name":"trained"`)
	var models struct {
		Items []struct {
			Name    string `json:"name"`
			Enabled bool   `json:"enabled"`
		} `json:"items"`
	}
	require.NoError(t, json.Unmarshal(res.body, &models))
	for _, m := range models.Items {
		if m.Name == "trained" {
			require.True(t, m.Enabled, "an admin's enable registers it enabled")
		}
	}
}

// TestTrainingLeaseConcurrent: trainers asking at once each get a run of
// their own (FOR UPDATE SKIP LOCKED), and none is handed out twice.
func TestTrainingLeaseConcurrent(t *testing.T) {
	t.Parallel()
	w := newTrainingWorld(t)
	want := map[string]bool{}
	for i := range 4 {
		c, _ := w.userWithRole(t, fmt.Sprintf("p%d@example.com", i), auth.RolePremium)
		want[w.start(t, c, nil)] = true
	}
	got := make(chan string, 8)
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			res := w.trainer.json(http.MethodPost, "/api/v1/trainer/lease", map[string]any{"recipes": []string{"test-recipe"}, "trainer": "t/1"})
			if res.StatusCode == http.StatusOK {
				var body struct {
					Run leased `json:"run"`
				}
				if json.Unmarshal(res.body, &body) == nil {
					got <- body.Run.ID
				}
			} else if res.StatusCode != http.StatusNoContent {
				got <- fmt.Sprintf("status %d: %s", res.StatusCode, res.body)
			}
		}()
	}
	for range 8 {
		<-done
	}
	close(got)
	seen := map[string]bool{}
	for id := range got {
		require.True(t, want[id], "unexpected lease answer %s", id)
		require.False(t, seen[id], "run %s handed out twice", id)
		seen[id] = true
	}
	require.Len(t, seen, 4)
}

// TestTrainingHubRestart: a second HTTP server on the same database carries
// on with the run a trainer holds: its lease, progress and upload live in the
// database, not in the server that handed them out. The first bundle's River
// client keeps running, so this is no process restart; TestTrainingServeKilled
// (cmd/imagehub) SIGKILLs a whole serve mid-training and mid-evaluation.
func TestTrainingHubRestart(t *testing.T) {
	t.Parallel()
	w := newTrainingWorld(t)
	id := w.start(t, w.premium, map[string]any{"model_name": "trained"})
	run := w.lease(t, w.trainer)
	require.NotNil(t, run)
	require.Equal(t, http.StatusOK, w.progress(w.trainer, run, 1, 2).StatusCode)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, w.server.Shutdown(ctx))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg := w.cfg
	cfg.BaseURL = "http://" + ln.Addr().String()
	tb := startBundleWith(t, cfg, w.pool, w.blobs, ln, w.topts)
	w.trainer.base, w.premium.base, w.admin.base = tb.base, tb.base, tb.base

	res := w.progress(w.trainer, run, 2, 1)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	res = w.upload(w.trainer, run, []byte(testModelMagic+"cat"))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	tr := w.waitState(t, id, "succeeded")
	require.Equal(t, 1.0, tr["attempt"])
}

// TestTrainingCancelEvaluating: a run cancelled while the hub evaluates its
// artifact leaves no model half in service: with the cancel its model
// version (registered enabled here) is disabled and its evaluation ends
// failed, its jobs cancelled, instead of going on to score a model no one
// wants.
func TestTrainingCancelEvaluating(t *testing.T) {
	t.Parallel()
	w := newTrainingWorld(t)
	w.registerToday(t)
	// The trained model answers slowly, so its evaluation is still
	// running when the cancel comes.
	slow := httptest.NewServer(worker.New(worker.Config{Model: "trained", Synthetic: true, Capacity: 2, SimulateLatency: time.Minute}))
	t.Cleanup(func() { slow.CloseClientConnections(); slow.Close() })
	w.endpoint.Store(&slow.URL)
	ctx := context.Background()
	count := func(sql string, args ...any) int {
		var n int
		require.NoError(t, w.pool.QueryRow(ctx, sql, args...).Scan(&n))
		return n
	}
	enabled := func() bool {
		var on bool
		require.NoError(t, w.pool.QueryRow(ctx, `SELECT enabled FROM models WHERE name = 'trained' AND version = '1'`).Scan(&on))
		return on
	}

	id := w.start(t, w.admin, map[string]any{"labels": []string{"cat"}, "model_name": "trained", "enable": true})
	run := w.lease(t, w.trainer)
	require.NotNil(t, run)
	res := w.upload(w.trainer, run, []byte(testModelMagic+"cat"))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	require.Equal(t, "evaluating", res.json(t)["state"])
	require.True(t, enabled(), "an admin's training registers its model enabled")
	var evalID string
	require.NoError(t, w.pool.QueryRow(ctx, `SELECT evaluation_id::text FROM trainings WHERE id = $1`, id).Scan(&evalID))
	const evalJobs = `SELECT count(*) FROM river_job WHERE kind IN ('evaluate', 'infer')
		AND args @> jsonb_build_object('evaluation_id', $1::text) AND finalized_at IS NULL`
	deadline := time.Now().Add(30 * time.Second)
	for count(`SELECT count(*) FROM river_job WHERE kind = 'infer' AND args @> jsonb_build_object('evaluation_id', $1::text)`, evalID) == 0 {
		require.True(t, time.Now().Before(deadline), "the evaluation queued no inference")
		time.Sleep(50 * time.Millisecond)
	}

	res = w.admin.json(http.MethodPost, "/api/v1/trainings/"+id+"/cancel", map[string]any{})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	require.Equal(t, "cancelled", res.json(t)["state"])
	require.False(t, enabled(), "the cancelled run's model proposes nothing")
	var state, msg string
	require.NoError(t, w.pool.QueryRow(ctx, `SELECT state::text, coalesce(error, '') FROM evaluations WHERE id = $1`, evalID).Scan(&state, &msg))
	require.Equal(t, "failed", state)
	require.Contains(t, msg, "training was cancelled")
	require.Zero(t, count(`SELECT count(*) FROM evaluations e JOIN trainings t ON e.id = t.baseline_evaluation_id
		WHERE t.id = $1 AND e.state NOT IN ('done', 'failed')`, id), "the baseline's evaluation ends too")
	// A job in the middle of a call learns of its cancel from River soon
	// after; none is left to run.
	deadline = time.Now().Add(20 * time.Second)
	for count(evalJobs, evalID) > 0 {
		require.True(t, time.Now().Before(deadline), "the evaluation's jobs are still live")
		time.Sleep(100 * time.Millisecond)
	}
	require.Zero(t, count(`SELECT count(*) FROM inference_runs r JOIN models m ON m.id = r.model_id
		WHERE m.name = 'trained' AND r.state IN ('queued', 'running')`), "no run of the model is left waiting")
	time.Sleep(500 * time.Millisecond) // the training's watch had its chance
	require.Equal(t, "cancelled", w.get(t, id)["state"])
	require.Equal(t, "failed", func() string {
		require.NoError(t, w.pool.QueryRow(ctx, `SELECT state::text FROM evaluations WHERE id = $1`, evalID).Scan(&state))
		return state
	}())
	res = w.admin.json(http.MethodPost, "/api/v1/trainings/"+id+"/cancel", map[string]any{})
	require.Equal(t, http.StatusConflict, res.StatusCode, "%s", res.body)
}

// TestTrainingRetrain: a retrain training runs again on the next version
// of its dataset, as version 2 of the same model, evaluated against
// version 1.
func TestTrainingRetrain(t *testing.T) {
	t.Parallel()
	w := newTrainingWorld(t)
	id := w.start(t, w.premium, map[string]any{"model_name": "trained", "retrain": true, "labels": []string{"cat"}, "seed": 2147483647})
	run := w.lease(t, w.trainer)
	require.EqualValues(t, 2147483647, run.Seed, "the seed asked for, the largest there is")
	require.Equal(t, http.StatusOK, w.upload(w.trainer, run, []byte(testModelMagic+"cat")).StatusCode)
	w.waitState(t, id, "succeeded")

	w.addImages(t, 4)
	w.publish(t, w.datasetID)
	var again *leased
	deadline := time.Now().Add(30 * time.Second)
	for again == nil {
		require.True(t, time.Now().Before(deadline), "no retrain queued")
		again = w.lease(t, w.trainer)
		time.Sleep(100 * time.Millisecond)
	}
	require.NotEqual(t, id, again.ID)
	require.Equal(t, []string{"cat"}, again.Labels)
	require.Equal(t, run.Seed, again.Seed, "a retrain reuses its training's seed")
	res := w.upload(w.trainer, again, []byte(testModelMagic+"cat"))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	require.Equal(t, map[string]any{"name": "trained", "version": "2"}, res.json(t)["model"])
	require.Equal(t, "evaluating", res.json(t)["state"], "stored, registered, evaluations started")
	tr := w.waitState(t, again.ID, "succeeded")
	require.Equal(t, float64(w.version+1), tr["version"])
	base := tr["metrics"].(map[string]any)["baseline"].(map[string]any)["model"].(map[string]any)
	require.Equal(t, map[string]any{"name": "trained", "version": "1"}, base)

	// The training's page shows the model's series of versions.
	res = w.premium.get("/trainings/" + again.ID)
	require.Equal(t, http.StatusOK, res.StatusCode)
	doc := res.doc(t)
	require.Equal(t, 2, doc.Find("table.model-versions tbody tr").Length(), "%s", res.body)
	require.NotEmpty(t, doc.Find(`table.model-versions tr[data-version="2"] td.ap50`).Text())

	// So does the models page, with the AP50 line over the versions and
	// the figures per class.
	res = w.admin.get("/admin/models")
	require.Equal(t, http.StatusOK, res.StatusCode)
	doc = res.doc(t)
	series := doc.Find(`#trained-models .model-series[data-model="trained"]`)
	require.Equal(t, 1, series.Length(), "%s", res.body)
	rows := series.Find("table.model-versions tbody tr")
	require.Equal(t, 2, rows.Length())
	require.Equal(t, "1", rows.Eq(0).AttrOr("data-version", ""), "oldest first")
	require.Contains(t, rows.Eq(1).Find("td.per-class").Text(), "cat ")
	points := strings.Fields(series.Find("svg.ap50-curve polyline").AttrOr("points", ""))
	require.Len(t, points, 2, "one point per evaluated version")
	for i, p := range points {
		var x, y float64
		_, err := fmt.Sscanf(p, "%f,%f", &x, &y)
		require.NoError(t, err)
		ap50, err := strconv.ParseFloat(rows.Eq(i).Find("td.ap50").Text(), 64)
		require.NoError(t, err)
		require.InDelta(t, 160-8-ap50*(160-24), y, 0.1, "point %d is version %d's AP50", i, i+1)
	}
}

// TestTrainingONNXArtifact: an ONNX artifact says its layout, and its
// inputs, outputs and class names must fit that layout and the run's
// labels (the fixtures of testdata/onnx: yolo-seg.onnx knows person, car
// and dog); one that does registers with its layout and the run's labels.
func TestTrainingONNXArtifact(t *testing.T) {
	t.Parallel()
	w := newTrainingWorld(t)
	id := w.start(t, w.premium, map[string]any{"labels": []string{"dog"}, "model_name": "trained"})
	run := w.lease(t, w.trainer)
	require.NotNil(t, run)
	put := func(layout string, data []byte) *response {
		h := w.trainer.withLease(run)
		h.Set("Content-Type", "application/octet-stream") // as docs/training.md sends it
		h.Set("X-Artifact-Format", "onnx")
		if layout != "" {
			h.Set("X-Artifact-Layout", layout)
		}
		return w.trainer.do(http.MethodPut, "/api/v1/trainer/runs/"+run.ID+"/artifact", bytes.NewReader(data), h)
	}
	read := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join("..", "testdata", "onnx", name))
		require.NoError(t, err)
		return data
	}
	model, yolo := read("maskrcnn.onnx"), read("yolo-seg.onnx")
	// ir_version 8, then a graph (field 7) holding a node and no tensors.
	noTensors := []byte{0x08, 0x08, 0x3a, 0x06, 0x0a, 0x04, 'n', 'o', 'd', 'e'}
	for _, c := range []struct {
		layout string
		data   []byte
		field  string
	}{
		{"", model, "X-Artifact-Layout"},
		{"resnet", model, "X-Artifact-Layout"},
		{"yolo-seg", []byte("PK\x03\x04 a zip, not a model"), "artifact"},
		{"maskrcnn", model[:len(model)/2], "artifact"},
		{"maskrcnn", noTensors, "artifact"},
		{"yolo-seg", model, "artifact"}, // a maskrcnn file said yolo-seg
		{"maskrcnn", yolo, "artifact"},  // and the other way round
		{"yolo-seg", yolo, "artifact"},  // its names hold person and car, which the run did not train
	} {
		res := put(c.layout, c.data)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s", res.body)
		code, field := res.apiError(t)
		require.Equal(t, "invalid_artifact", code)
		require.Equal(t, c.field, field, "%s", res.body)
	}
	// A file whose graph signature reads well but whose weights ONNX
	// Runtime refuses: initializer BN, [3, 4] in 48 bytes, said to be
	// [3, 5].
	require.NoError(t, onnxworker.LoadRuntime(onnxworker.Library(os.Getenv)), "this test loads ONNX files (make onnxruntime)")
	corrupt := bytes.Clone(model)
	at := bytes.Index(corrupt, []byte{0x08, 0x03, 0x08, 0x04, 0x10, 0x01, 0x42, 0x02, 'B', 'N'})
	require.Positive(t, at, "BN's dims in maskrcnn.onnx")
	corrupt[at+3] = 0x05
	res := put("maskrcnn", corrupt)
	require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s", res.body)
	code, field := res.apiError(t)
	require.Equal(t, []string{"invalid_artifact", "artifact"}, []string{code, field})
	require.Contains(t, string(res.body), "ONNX Runtime cannot load it")
	require.NotContains(t, string(res.body), "upload-", "no temporary file name")
	require.Empty(t, w.artifactBlobs(t))
	res = put("maskrcnn", model)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	require.Equal(t, "evaluating", res.json(t)["state"])
	var layout string
	var labels []string
	require.NoError(t, w.pool.QueryRow(context.Background(),
		`SELECT layout, labels FROM models WHERE name = 'trained' AND version = '1'`).Scan(&layout, &labels))
	require.Equal(t, "maskrcnn", layout)
	require.Equal(t, []string{"dog"}, labels)

	// A hub whose worker cannot serve ONNX files says so: the model is
	// registered disabled with the reason as its problem, the run ends
	// failed with it, and nothing pretends to have evaluated it.
	why := "no ONNX Runtime library at /nowhere"
	w.noONNX.Store(&why)
	// The synthetic worker does not speak maskrcnn: the evaluation would
	// only retry, so the first run makes way (it was seen registered).
	res = w.premium.json(http.MethodPost, "/api/v1/trainings/"+id+"/cancel", map[string]any{})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	id = w.start(t, w.premium, map[string]any{"labels": []string{"dog"}, "model_name": "unserved"})
	run = w.lease(t, w.trainer)
	require.NotNil(t, run)
	res = put("maskrcnn", model)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	require.Equal(t, "failed", res.json(t)["state"])
	tr := w.get(t, id)
	require.Equal(t, "failed", tr["state"])
	require.Contains(t, tr["error"], why)
	require.Contains(t, tr["error"], "not evaluated")
	require.Nil(t, tr["metrics"])
	require.Equal(t, map[string]any{"name": "unserved", "version": "1"}, tr["model"])
	var enabled bool
	var problems []string
	require.NoError(t, w.pool.QueryRow(context.Background(),
		`SELECT enabled, problems FROM models WHERE name = 'unserved' AND version = '1'`).Scan(&enabled, &problems))
	require.False(t, enabled)
	require.Len(t, problems, 1)
	require.Contains(t, problems[0], why)
	doc := w.admin.get("/admin/models").doc(t)
	require.Contains(t, doc.Find("#model-"+w.modelID(t, "unserved", "1")+" .flash.error").Text(), why)
}

func (w *trainingWorld) modelID(t *testing.T, name, version string) string {
	t.Helper()
	var id string
	require.NoError(t, w.pool.QueryRow(context.Background(), `SELECT id::text FROM models WHERE name = $1 AND version = $2`, name, version).Scan(&id))
	return id
}

// TestTrainingUnclaimed: a run of a recipe no trainer asks for says so on
// its page and in the recipes list, ends failed after
// TRAINING_QUEUE_TIMEOUT with the reason, and frees its owner's slot; a run
// whose recipe's trainer is busy on another run (so asks for no work)
// waits on past the timeout.
func TestTrainingUnclaimed(t *testing.T) {
	t.Parallel()
	w := newTrainingWorld(t, func(c *config.Config) { c.TrainingQueueTimeout = 2 * time.Second })
	recipeTrainer := func() any {
		res := w.premium.get("/api/v1/trainings/recipes")
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
		items := res.json(t)["items"].([]any)
		require.Len(t, items, 1)
		return items[0].(map[string]any)["trainer"]
	}
	require.Nil(t, recipeTrainer(), "no trainer ever asked")

	id := w.start(t, w.premium, nil)
	page := w.premium.get("/trainings/" + id)
	require.Equal(t, http.StatusOK, page.StatusCode)
	require.Contains(t, string(page.body), "Waiting for a trainer: no trainer of test-recipe has asked this hub for work")
	form := w.premium.get("/trainings")
	require.Contains(t, string(form.body), "(no trainer of test-recipe has asked this hub for work)")

	tr := w.waitState(t, id, "failed")
	require.Equal(t, "no trainer took this run within 2s: no trainer that trains test-recipe has asked this hub for work "+
		"(docs/training.md: a trainer names the recipes it trains when it asks)", tr["error"])
	require.Equal(t, 0.0, tr["attempt"])
	page = w.premium.get("/trainings/" + id)
	require.NotContains(t, string(page.body), "Waiting for a trainer")

	// The slot is free again; this time a trainer takes the run.
	second := w.start(t, w.premium, nil)
	run := w.lease(t, w.trainer)
	require.NotNil(t, run)
	require.Equal(t, second, run.ID)
	seen, ok := recipeTrainer().(map[string]any)
	require.True(t, ok, "the trainer that asked is listed")
	require.Equal(t, "test-trainer/1.0", seen["name"])
	require.NotContains(t, string(w.premium.get("/trainings").body), "has asked this hub for work")

	// Another user's run waits past the timeout while the trainer works.
	third := w.start(t, w.admin, nil)
	require.NotContains(t, string(w.admin.get("/trainings/"+third).body), "Waiting for a trainer")
	time.Sleep(3 * time.Second)
	require.Equal(t, http.StatusOK, w.progress(w.trainer, run, 1, 0.5).StatusCode)
	// Every lease call sweeps first; one for a recipe the hub does not know
	// records no poll.
	res := w.trainer.json(http.MethodPost, "/api/v1/trainer/lease", map[string]any{"recipes": []string{"no-such-recipe"}, "trainer": "other/1"})
	require.Equal(t, http.StatusNoContent, res.StatusCode, "%s", res.body)
	require.Equal(t, "queued", w.get(t, third)["state"], "a trainer holds a run of its recipe")
}
