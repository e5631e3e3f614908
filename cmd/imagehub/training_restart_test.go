package main

import (
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// kill SIGKILLs the hub's serve and returns when it died.
func (h *trainingHub) kill(t *testing.T) time.Time {
	t.Helper()
	require.NoError(t, h.srv.cmd.Process.Kill())
	<-h.srv.done
	return time.Now()
}

// restart starts serve again on the same database and blob folder, once
// River can rescue what the killed one was running. A SIGKILLed River
// leader keeps its leadership until its lease lapses (15 s); the row is
// removed as that lapse would remove it, so that the new hub leads at once
// (the leader alone moves snoozed jobs on and rescues stuck ones). It
// rescues, as it starts, the running jobs older than JOB_RESCUE_AFTER and
// their timeout (JOB_TIMEOUT): the hub starts once both have passed.
func (h *trainingHub) restart(t *testing.T, killedAt time.Time, stuck time.Duration) {
	t.Helper()
	_, err := h.pool.Exec(context.Background(), "DELETE FROM river_leader")
	require.NoError(t, err)
	time.Sleep(time.Until(killedAt.Add(stuck + 200*time.Millisecond)))
	h.srv = startServer(t, h.env())
}

// TestTrainingServeKilled: `imagehub serve`, built-in trainer and all, is
// SIGKILLed while its trainer trains a run, started again on the same
// database and blob folder, killed again while the hub evaluates the
// uploaded artifact, and started again. The run ends succeeded, once: its
// second attempt (the first died with the process, and its lease lapsed)
// made the one model version and the one artifact, whose two evaluations
// (the model and the segmenter beside it) were each made once and carried
// on across the restart, scored on every image, and the artifact downloads
// whole.
func TestTrainingServeKilled(t *testing.T) {
	t.Parallel()
	const stuck = 4 * time.Second // JOB_TIMEOUT and JOB_RESCUE_AFTER
	// The same address across restarts, as a deployment has.
	port := freePort(t)
	// A lease long enough that a trainer starved of CPU by the tests
	// beside it still renews in time, short enough to lapse soon after
	// the restart.
	h := newTrainingHub(t, 120, map[string]string{"BUILTIN_TRAINER": "true", "TRAINING_LEASE": "6s",
		"JOB_TIMEOUT": stuck.String(), "JOB_RESCUE_AFTER": stuck.String(),
		"PORT": port, "BASE_URL": "http://127.0.0.1:" + port})
	ctx := context.Background()
	state := func(id string) (s string, attempt int) {
		require.NoError(t, h.pool.QueryRow(ctx, `SELECT state::text, attempt FROM trainings WHERE id = $1`, id).Scan(&s, &attempt))
		return s, attempt
	}

	id := h.start(t)
	h.wait(t, id, 60*time.Second, func(tr map[string]any) bool {
		return tr["state"] == "running" && tr["progress"].(map[string]any)["step"].(float64) > 0
	})
	killedAt := h.kill(t)
	s, attempt := state(id)
	require.Equal(t, []any{"running", 1}, []any{s, attempt}, "killed while training")
	h.restart(t, killedAt, stuck)

	tr, _ := h.wait(t, id, 90*time.Second, func(tr map[string]any) bool { return tr["state"] == "evaluating" })
	require.Equal(t, 2.0, tr["attempt"], "the attempt that died with the hub lapsed; the next one trained: %v", tr)
	killedAt = h.kill(t)
	s, _ = state(id)
	require.Equal(t, "evaluating", s, "killed while evaluating")
	h.restart(t, killedAt, stuck)

	tr, _ = h.wait(t, id, 90*time.Second, succeeded)
	require.Equal(t, 2.0, tr["attempt"], "no attempt more for the evaluation the restart carried on: %v", tr)
	name, _ := h.checkModel(t, tr)
	require.Equal(t, 1, count(t, h.pool, "SELECT count(*) FROM trainings"), "one run, not a copy")
	require.Equal(t, 2, count(t, h.pool, "SELECT count(DISTINCT attempt) FROM training_progress"), "progress of two attempts")
	evals := count(t, h.pool, `SELECT count(*) FROM evaluations e JOIN models m ON m.id = e.model_id
		WHERE m.name IN ('`+name+`', 'imagehub-segmenter') AND e.split = 'val'`)
	require.Equal(t, 2, evals, "the model's evaluation and the baseline's, each once")
	require.Zero(t, count(t, h.pool, `SELECT count(*) FROM evaluations WHERE split = 'val' AND (state <> 'done' OR failed_images > 0)`),
		"both scored every image, across the restart")

	runs := `FROM inference_runs r JOIN models m ON m.id = r.model_id WHERE m.name = '` + name + `'`
	require.Equal(t, count(t, h.pool, `SELECT images FROM evaluations e JOIN models m ON m.id = e.model_id WHERE m.name = '`+name+`'`),
		count(t, h.pool, "SELECT count(*) "+runs), "the trained model ran on each val image")
	require.Zero(t, count(t, h.pool, `SELECT count(*) `+runs+` AND (r.state <> 'succeeded'
		OR r.instances <> (SELECT count(*) FROM proposals p WHERE p.image_id = r.image_id AND p.model_id = r.model_id))`),
		"each run succeeded, its proposals stored once")

	// The artifact downloads whole.
	req, err := http.NewRequest("GET", h.srv.base+"/api/v1/trainings/"+id+"/artifact", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+h.premium)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	var want []byte
	require.NoError(t, h.pool.QueryRow(ctx, `SELECT artifact_sha256 FROM trainings WHERE id = $1`, id).Scan(&want))
	got := sha256.Sum256(body)
	require.Equal(t, want, got[:], "the stored artifact, whole")
}
