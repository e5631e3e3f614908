package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/account"
	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/dataset/datasettest"
	"github.com/deepimageshub/imagehub/trainer"
	"github.com/deepimageshub/imagehub/trainer/trainertest"
)

// trainingHub is a served hub with an admin, a premium user and a
// published dataset version of generated shapes (trainertest: coloured
// shapes on textured backgrounds, which the untrained segmenter labels
// badly and the region classifier learns in seconds).
type trainingHub struct {
	*hub
	srv          *server
	premium      string // token
	datasetID    string
	version      int
	trainedLabel string
}

// Generated images are 200 pixels a side: the least ingest accepts for the
// upload at the end, and the trained model sees the same scale.
const shapeSide = 200

func newTrainingHub(t testing.TB, images int, extra map[string]string) *trainingHub {
	t.Helper()
	h := startTrainingHub(t, extra, trainertest.Labels...)
	h.trainedLabel = "disc"
	// The images go in as reviewed ones, straight into the database and
	// the hub's blob folder, as the dataset tests seed them: ingest and
	// review are not what this test is about.
	fx := h.fixture(t)
	for _, s := range trainertest.Samples(images, shapeSide, 1, 14) {
		img := fx.Image(datasettest.ImageOpts{W: s.Size, H: s.Size, PNG: true, Bytes: s.PNG})
		var ins []datasettest.Instance
		for _, in := range s.Instances {
			ins = append(ins, datasettest.Instance{Label: in.Label, Mask: in.Mask})
			// The labels its contributor gave: the segmenter's hints, so
			// that its proposals carry them and the baseline is fair.
			_, err := h.pool.Exec(context.Background(), `INSERT INTO image_labels (image_id, label_id, added_by)
				SELECT $1, id, $2 FROM labels WHERE name = $3 ON CONFLICT DO NOTHING`, img.ID, fx.Owner, in.Label)
			require.NoError(t, err)
		}
		fx.Review(img, ins...)
	}
	require.Positive(t, count(t, h.pool, "SELECT count(*) FROM annotations a JOIN labels l ON l.id = a.label_id WHERE l.name = 'disc'"))
	h.createDataset(t, map[string]float64{"train": 0.7, "val": 0.3, "test": 0})
	h.publish(t)
	return h
}

// startTrainingHub serves a hub (with the built-in worker, unless extra
// says otherwise) that has a premium user and the given labels.
func startTrainingHub(t testing.TB, extra map[string]string, labels ...string) *trainingHub {
	t.Helper()
	vars := map[string]string{"BUILTIN_WORKER": "true", "BUILTIN_WORKER_CAPACITY": "2", "EVALUATION_POLL": "200ms"}
	for k, v := range extra {
		vars[k] = v
	}
	h := &trainingHub{hub: newHub(t, vars)}
	_, errOut, err := runCmdInput(t, h.vars, "a long password\n", "users", "create", "--email", "premium@example.com", "--role", "premium")
	require.NoError(t, err, errOut)
	tok, errOut, err := runCmd(t, h.vars, "tokens", "create", "--email", "premium@example.com", "--name", "test")
	require.NoError(t, err, errOut)
	h.premium = strings.TrimSpace(tok)
	h.srv = startServer(t, h.env())
	for _, l := range labels {
		status, body, _ := call(t, "POST", h.srv.base+"/api/v1/labels", h.token, map[string]any{"name": l, "display_name": l})
		// A fresh hub's taxonomy may hold some already.
		require.Contains(t, []int{http.StatusCreated, http.StatusConflict}, status, "%v", body)
	}
	return h
}

// fixture writes reviewed images into the hub's database and blob folder.
func (h *trainingHub) fixture(t testing.TB) *datasettest.Fixture {
	t.Helper()
	blobs, err := blob.Open(context.Background(), "file://"+filepath.Join(h.vars["DATA_DIR"], "blobs"))
	require.NoError(t, err)
	return datasettest.New(t, h.pool, blobs)
}

// createDataset makes the dataset "shapes" of every reviewed image.
func (h *trainingHub) createDataset(t testing.TB, splits map[string]float64) {
	t.Helper()
	status, body, _ := call(t, "POST", h.srv.base+"/api/v1/datasets", h.token, map[string]any{"name": "shapes", "splits": splits})
	require.Equal(t, http.StatusCreated, status, "%v", body)
	h.datasetID = body["dataset"].(map[string]any)["id"].(string)
}

// publish publishes the dataset's next version and waits until it is.
func (h *trainingHub) publish(t testing.TB) {
	t.Helper()
	status, body, _ := call(t, "POST", h.srv.base+"/api/v1/datasets/"+h.datasetID+"/versions", h.token, map[string]any{})
	require.Equal(t, http.StatusAccepted, status, "%v", body)
	h.version = int(body["version"].(map[string]any)["number"].(float64))
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, v, _ := call(t, "GET", fmt.Sprintf("%s/api/v1/datasets/%s/versions/%d", h.srv.base, h.datasetID, h.version), h.premium, nil)
		if v["state"] == "published" {
			break
		}
		require.NotEqual(t, "failed", v["state"], "%v", v)
		require.True(t, time.Now().Before(deadline), "not published in time: %v\n%s", v, h.srv.logs)
		time.Sleep(100 * time.Millisecond)
	}
}

// start asks for a region-classifier training on the trained label.
func (h *trainingHub) start(t testing.TB) string {
	t.Helper()
	status, body, _ := call(t, "POST", h.srv.base+"/api/v1/trainings", h.premium, map[string]any{
		"dataset_id": h.datasetID, "version": h.version, "labels": []string{h.trainedLabel},
		"recipe": "region-classifier", "params": map[string]any{"epochs": 30},
	})
	require.Equal(t, http.StatusAccepted, status, "%v", body)
	return body["training"].(map[string]any)["id"].(string)
}

func (h *trainingHub) training(t testing.TB, id string) map[string]any {
	t.Helper()
	status, body, _ := call(t, "GET", h.srv.base+"/api/v1/trainings/"+id, h.premium, nil)
	require.Equal(t, http.StatusOK, status, "%v", body)
	return body
}

// wait polls the training until until says so, and returns every state
// and step it saw on the way.
func (h *trainingHub) wait(t testing.TB, id string, within time.Duration, until func(map[string]any) bool) (last map[string]any, steps []float64) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		tr := h.training(t, id)
		if p, ok := tr["progress"].(map[string]any); ok && tr["state"] == "running" {
			steps = append(steps, p["step"].(float64))
		}
		if until(tr) {
			return tr, steps
		}
		require.NotContains(t, []any{"failed", "cancelled"}, tr["state"], "%v\n%s", tr, h.srv.logs)
		require.True(t, time.Now().Before(deadline), "training not there in %s: %v\n%s", within, tr, h.srv.logs)
		time.Sleep(100 * time.Millisecond)
	}
}

func succeeded(tr map[string]any) bool { return tr["state"] == "succeeded" }

// checkModel checks that a succeeded training registered exactly one model
// version, with its artifact stored once, and that it beats the segmenter on
// the trained label; it returns the model's name and version.
func (h *trainingHub) checkModel(t testing.TB, tr map[string]any) (string, string) {
	t.Helper()
	model := tr["model"].(map[string]any)
	name, version := model["name"].(string), model["version"].(string)
	require.NotEmpty(t, name)
	require.Equal(t, "1", version)
	require.Equal(t, 1, count(t, h.pool, fmt.Sprintf("SELECT count(*) FROM models WHERE name = '%s'", name)), "one version, nothing half-stored")
	require.Equal(t, 1, count(t, h.pool, "SELECT count(*) FROM trainings WHERE artifact_key IS NOT NULL"))

	metrics := tr["metrics"].(map[string]any)
	ev, base := metrics["evaluation"].(map[string]any), metrics["baseline"].(map[string]any)
	require.Equal(t, name, ev["model"].(map[string]any)["name"])
	require.Equal(t, "imagehub-segmenter", base["model"].(map[string]any)["name"], "the baseline is the model proposing today")
	ap50 := func(e map[string]any) float64 {
		pc, ok := e["per_class"].(map[string]any)[h.trainedLabel].(map[string]any)
		require.True(t, ok, "no figures for %s: %v", h.trainedLabel, e)
		return pc["AP50"].(float64)
	}
	trained, segmenter := ap50(ev), ap50(base)
	t.Logf("AP50 on %s: trained %.3f, built-in segmenter %.3f", h.trainedLabel, trained, segmenter)
	require.Greater(t, trained, segmenter+0.2, "the trained model must beat the untrained segmenter clearly")
	return name, version
}

// TestTrainingEndToEnd is issue 14's done-means on `imagehub serve` as
// `make run` starts it: the built-in trainer trains what a premium user
// asks for, the model is registered and evaluated beside the segmenter, and
// once an admin enables it the built-in worker serves its proposals for a
// new upload.
func TestTrainingEndToEnd(t *testing.T) {
	t.Parallel()
	h := newTrainingHub(t, 120, map[string]string{"BUILTIN_TRAINER": "true"})
	// The trainer starts after serve says it is serving: wait for its line.
	require.Eventually(t, func() bool { return strings.Contains(h.srv.logs.String(), "built-in trainer is leasing runs") },
		30*time.Second, 50*time.Millisecond, "the built-in trainer did not start\n%s", h.srv.logs)
	// The service account behind the built-in trainer's token cannot sign in.
	status, _, _ := call(t, "POST", h.srv.base+"/api/v1/auth/login", "", map[string]string{"email": account.BuiltinTrainerEmail, "password": "a long password"})
	require.Equal(t, http.StatusUnauthorized, status)

	// The hub offers the CPU trainer's recipe with the trainer's ranges.
	status, body, _ := call(t, "GET", h.srv.base+"/api/v1/trainings/recipes", h.premium, nil)
	require.Equal(t, http.StatusOK, status)
	var offered map[string]any
	for _, r := range body["items"].([]any) {
		if r := r.(map[string]any); r["name"] == "region-classifier" {
			offered = r
		}
	}
	require.NotNil(t, offered, "%v", body)
	want, _ := trainer.Find("region-classifier")
	epochsMax := 0.0
	for _, p := range want.Params {
		if p.Name == "epochs" {
			epochsMax = p.Max
		}
		got := offered["params"].(map[string]any)[p.Name].(map[string]any)
		require.Equal(t, []any{p.Min, p.Max, p.Default}, []any{got["min"], got["max"], got["default"]}, p.Name)
	}
	status, body, _ = call(t, "POST", h.srv.base+"/api/v1/trainings", h.premium, map[string]any{
		"dataset_id": h.datasetID, "version": h.version, "recipe": "region-classifier", "params": map[string]any{"epochs": epochsMax + 1}})
	require.Equal(t, http.StatusBadRequest, status, "%v", body)
	require.Equal(t, "params.epochs", body["error"].(map[string]any)["field"])

	id := h.start(t)
	tr, steps := h.wait(t, id, 3*time.Minute, succeeded)
	require.NotEmpty(t, steps, "the run was seen running")
	require.Greater(t, steps[len(steps)-1], steps[0], "progress moves: %v", steps)
	require.Equal(t, 1.0, tr["attempt"])
	name, version := h.checkModel(t, tr)

	// Registered disabled; an admin enables it with its registration.
	status, body, _ = call(t, "GET", h.srv.base+"/api/v1/models", h.token, nil)
	require.Equal(t, http.StatusOK, status)
	var reg map[string]any
	for _, m := range body["items"].([]any) {
		if m := m.(map[string]any); m["name"] == name && m["version"] == version {
			reg = m
		}
	}
	require.NotNil(t, reg, "the trained model is registered: %v", body)
	require.Equal(t, false, reg["enabled"])
	status, body, _ = call(t, "POST", h.srv.base+"/api/v1/models", h.token, map[string]any{
		"name": name, "version": version, "task": "segmentation", "endpoints": reg["endpoints"],
		"capacity": reg["capacity"], "timeout_ms": reg["timeout_ms"], "labels": reg["labels"], "enabled": true})
	require.Equal(t, http.StatusOK, status, "%v", body)

	up := trainertest.Samples(1, shapeSide+24, 90001, 15)[0]
	require.NotEmpty(t, up.Instances)
	imgID := uploadPhoto(t, h.srv.base, h.token, "new.png", up.PNG, h.trainedLabel)
	props, _ := waitProposals(t, h.srv, h.token, imgID, 60*time.Second, h.srv.logs.String)
	var mine int
	for _, p := range props {
		if p.Model.Name == name {
			require.Equal(t, h.trainedLabel, p.Label, "the trained model proposes only what it learnt")
			mine++
		}
	}
	require.Positive(t, mine, "the trained model proposes on a new upload: %+v", props)

	// A reviewer sees them: the upload is the review queue's next item, and
	// the trained model's proposals are among those the editor gets.
	status, item, _ := call(t, "POST", h.srv.base+"/api/v1/review/next", h.token, nil)
	require.Equal(t, http.StatusOK, status, "%v", item)
	require.Equal(t, imgID, item["image"].(map[string]any)["id"], "the only image awaiting review")
	shown := map[string]bool{}
	for _, p := range item["proposals"].([]any) {
		shown[p.(map[string]any)["id"].(string)] = true
	}
	for _, p := range props {
		if p.Model.Name == name {
			require.True(t, shown[p.ID], "the reviewer gets the trained model's proposal %s: %v", p.ID, item["proposals"])
		}
	}
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	require.NoError(t, err)
	return port
}

// TestTrainingTrainerKilled: a trainer SIGKILLed mid-run stops renewing; the
// run goes back to the queue when its lease lapses, the next trainer takes
// it as attempt 2 and it succeeds, with one model version and one artifact.
func TestTrainingTrainerKilled(t *testing.T) {
	t.Parallel()
	// A trainer of its own downloads the data from BASE_URL: the hub must
	// listen where that says.
	port := freePort(t)
	h := newTrainingHub(t, 160, map[string]string{"BUILTIN_TRAINER": "false", "TRAINING_LEASE": "3s",
		"PORT": port, "BASE_URL": "http://127.0.0.1:" + port})
	require.NotContains(t, h.srv.logs.String(), "built-in trainer is leasing runs")
	tok, errOut, err := runCmd(t, h.vars, "tokens", "create", "--email", "admin@example.com", "--name", "pod", "--role", "trainer")
	require.NoError(t, err, errOut)
	trainerToken := strings.TrimSpace(tok)
	trainerLogs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("trainers' output:\n%s", trainerLogs)
		}
	})
	startTrainer := func() *exec.Cmd {
		cmd := exec.Command(binary, "trainer", "--hub", h.srv.base, "--token", trainerToken, "--poll", "100ms")
		cmd.Env = environ(map[string]string{})
		cmd.Stdout, cmd.Stderr = trainerLogs, trainerLogs
		require.NoError(t, cmd.Start())
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
		})
		return cmd
	}

	id := h.start(t)
	first := startTrainer()
	h.wait(t, id, 60*time.Second, func(tr map[string]any) bool {
		p := tr["progress"].(map[string]any)
		return tr["state"] == "running" && p["step"].(float64) > 0
	})
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_ = first.Wait()

	tr, _ := h.wait(t, id, 30*time.Second, func(tr map[string]any) bool { return tr["state"] == "queued" })
	require.Equal(t, 1.0, tr["attempt"], "queued again after the lease lapsed")
	require.Nil(t, tr["model"])
	require.Zero(t, count(t, h.pool, "SELECT count(*) FROM trainings WHERE artifact_key IS NOT NULL"), "nothing stored")

	startTrainer()
	tr, _ = h.wait(t, id, 3*time.Minute, succeeded)
	require.Equal(t, 2.0, tr["attempt"])
	h.checkModel(t, tr)
}

// TestTrainingReproducible is issue 14's point 6 on the real CPU trainer:
// two trainings of the same version, labels, recipe, params and seed end
// with the same artifact, byte for byte, and the same metrics.
func TestTrainingReproducible(t *testing.T) {
	t.Parallel()
	h := newTrainingHub(t, 40, map[string]string{"BUILTIN_TRAINER": "true"})
	run := func() map[string]any {
		status, body, _ := call(t, "POST", h.srv.base+"/api/v1/trainings", h.premium, map[string]any{
			"dataset_id": h.datasetID, "version": h.version, "labels": []string{h.trainedLabel},
			"recipe": "region-classifier", "params": map[string]any{"epochs": 10}, "seed": 424242,
		})
		require.Equal(t, http.StatusAccepted, status, "%v", body)
		tr, _ := h.wait(t, body["training"].(map[string]any)["id"].(string), 3*time.Minute, succeeded)
		require.Equal(t, 424242.0, tr["seed"], "the seed asked for is recorded")
		require.NotEmpty(t, tr["trainer"], "and the trainer's version")
		return tr
	}
	first, second := run(), run() // one at a time: a user runs one training at once
	require.NotEqual(t, first["model"], second["model"], "two trainings, two models")
	sha := func(tr map[string]any) any { return tr["artifact"].(map[string]any)["sha256"] }
	require.NotEmpty(t, sha(first))
	require.Equal(t, sha(first), sha(second), "the same artifact, byte for byte")
	figures := func(tr map[string]any) []any {
		ev := tr["metrics"].(map[string]any)["evaluation"].(map[string]any)
		return []any{ev["images"], ev["detections"], ev["metrics"], ev["per_class"]}
	}
	require.NotNil(t, figures(first)[2])
	require.Equal(t, figures(first), figures(second), "the same metrics")
}
