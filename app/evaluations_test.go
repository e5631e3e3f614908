package app

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/cocoeval"
	"github.com/deepimageshub/imagehub/dataset/datasettest"
	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/worker"
)

// evalCOCO is what the evaluation test reads of a COCO export.
type evalCOCO struct {
	Categories []struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	} `json:"categories"`
	Images []struct {
		ID     int64  `json:"id"`
		SHA256 string `json:"sha256"`
	} `json:"images"`
	Annotations []struct {
		ImageID      int64    `json:"image_id"`
		CategoryID   int64    `json:"category_id"`
		Segmentation mask.RLE `json:"segmentation"`
		Area         float64  `json:"area"`
		IsCrowd      int      `json:"iscrowd"`
	} `json:"annotations"`
}

// evalWorld is a dataset world with a published version whose test split
// holds every image, and the project's worker registered as a model that
// answers the middle half of each photo, labelled with its first hint.
type evalWorld struct {
	*datasetWorld
	datasetID string
	version   int
	worker    *worker.Server
}

func newEvalWorld(t *testing.T) *evalWorld {
	t.Helper()
	w := &evalWorld{datasetWorld: newDatasetWorld(t)}
	ctx := context.Background()
	for i := range 8 {
		img := w.fx.Image(datasettest.ImageOpts{W: 96 + 4*i, H: 64})
		half := datasettest.Box(img.W, img.H, img.W/4, img.H/4, img.W-img.W/4, img.H-img.H/4)
		hint := "cat"
		var ins []datasettest.Instance
		switch i % 4 {
		case 0: // the model finds the cat exactly
			ins = append(ins, datasettest.Instance{Label: "cat", Mask: half})
		case 1: // the model says cat where a dog is
			ins = append(ins, datasettest.Instance{Label: "dog", Mask: half})
		case 2: // the model finds the dog, roughly (IoU about 0.6), and misses a person
			hint = "dog"
			ins = append(ins, datasettest.Instance{Label: "dog", Mask: datasettest.Box(img.W, img.H, img.W/4-img.W/6, img.H/4, img.W-img.W/4+img.W/6, img.H-img.H/4)},
				datasettest.Instance{Label: "person", Mask: datasettest.Box(img.W, img.H, 0, 0, 10, 10)})
		case 3: // a cat elsewhere: a miss and a false detection
			ins = append(ins, datasettest.Instance{Label: "cat", Mask: datasettest.Blob(img.W, img.H, 0, 0, 20, 20)})
		}
		_, err := w.pool.Exec(ctx, `INSERT INTO image_labels (image_id, label_id, added_by) SELECT $1, id, $2 FROM labels WHERE name = $3`,
			img.ID, w.fx.Owner, hint)
		require.NoError(t, err)
		sha := hex.EncodeToString(img.SHA)
		w.images[sha] = img
		w.anns[sha] = w.fx.Review(img, ins...)
	}
	w.datasetID = w.createDataset(t, map[string]any{"name": "eval", "splits": map[string]float64{"train": 0, "val": 0, "test": 1}})
	v := w.publish(t, w.datasetID)
	w.version = int(v["number"].(float64))

	w.worker = worker.New(worker.Config{Model: "halves", Synthetic: true, Capacity: 2})
	srv := httptest.NewServer(w.worker)
	t.Cleanup(srv.Close)
	// Disabled: it proposes for no new upload, and is evaluated all the same.
	res := w.admin.json(http.MethodPost, "/api/v1/models", map[string]any{"name": "halves", "version": "1",
		"endpoints": []string{srv.URL}, "capacity": 2, "enabled": false})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	return w
}

func (w *evalWorld) start(t *testing.T, body map[string]any) map[string]any {
	t.Helper()
	res := w.admin.json(http.MethodPost, "/api/v1/evaluations", body)
	require.Equal(t, http.StatusAccepted, res.StatusCode, "%s", res.body)
	e := res.json(t)["evaluation"].(map[string]any)
	require.NotEmpty(t, e["id"])
	// The answer reads the evaluation after its job was queued, which may
	// have started (or, on an idle machine, finished) by then.
	require.Contains(t, []any{"queued", "inferring", "scoring", "done"}, e["state"])
	return e
}

func (w *evalWorld) waitDone(t *testing.T, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		res := w.admin.get("/api/v1/evaluations/" + id)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
		e := res.json(t)
		switch e["state"] {
		case "done":
			return e
		case "failed":
			t.Fatalf("evaluation failed: %s", res.body)
		}
		require.True(t, time.Now().Before(deadline), "evaluation still %s: %s", e["state"], res.body)
		time.Sleep(100 * time.Millisecond)
	}
}

// TestEvaluationEndToEnd runs an evaluation through the whole path: the
// API queues it, its job sends every test image to the registered worker
// through the ordinary infer jobs (slots, capacity), waits for them, and
// scores; the figures equal what cocoeval computes from the version's COCO
// download and the proposals the image API returns, which is what an ML
// engineer checking with pycocotools would feed it. A second evaluation of
// the same model infers nothing again.
func TestEvaluationEndToEnd(t *testing.T) {
	t.Parallel()
	w := newEvalWorld(t)
	body := map[string]any{"model": "halves", "model_version": "1", "dataset_id": w.datasetID, "version": w.version, "split": "test"}
	e := w.waitDone(t, w.start(t, body)["id"].(string))

	require.EqualValues(t, 8, e["images"])
	require.EqualValues(t, 8, e["queued"], "every image went to the model")
	require.EqualValues(t, 0, e["failed_images"])
	require.EqualValues(t, 8, e["detections"])
	require.Equal(t, map[string]any{"name": "halves", "version": "1"}, e["model"])

	// Through dispatch: one infer job per image, marked with the
	// evaluation, never more in flight than the capacity; the images stay
	// reviewed.
	ctx := context.Background()
	var jobs, runs, reviewed int
	require.NoError(t, w.pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'infer' AND args->>'evaluation_id' = $1 AND state = 'completed'`, e["id"]).Scan(&jobs))
	require.NoError(t, w.pool.QueryRow(ctx, `SELECT count(*) FROM inference_runs r JOIN models m ON m.id = r.model_id WHERE m.name = 'halves' AND r.state = 'succeeded'`).Scan(&runs))
	require.NoError(t, w.pool.QueryRow(ctx, `SELECT count(*) FROM images WHERE status = 'reviewed'`).Scan(&reviewed))
	require.Equal(t, 8, jobs)
	require.Equal(t, 8, runs)
	require.Equal(t, 8, reviewed)
	require.EqualValues(t, 8, w.worker.Stats().Succeeded)
	require.LessOrEqual(t, w.worker.Stats().PeakInFlight, int64(2))

	// The figures, recomputed from the download and the image API.
	res := w.premium.get(fmt.Sprintf("/api/v1/datasets/%s/versions/%d/download?format=coco&split=test", w.datasetID, w.version))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	var coco evalCOCO
	require.NoError(t, json.Unmarshal(openZip(t, res.body).files["annotations.json"], &coco))
	var images, cats []int64
	catOf, names := map[string]int64{}, map[int64]string{}
	for _, c := range coco.Categories {
		cats = append(cats, c.ID)
		catOf[c.Name], names[c.ID] = c.ID, c.Name
	}
	var gts []cocoeval.GroundTruth
	for _, a := range coco.Annotations {
		gts = append(gts, cocoeval.GroundTruth{ImageID: a.ImageID, CategoryID: a.CategoryID, Mask: a.Segmentation, Area: a.Area, Crowd: a.IsCrowd != 0})
	}
	var dts []cocoeval.Detection
	for _, im := range coco.Images {
		images = append(images, im.ID)
		img := w.admin.get("/api/v1/images/" + w.images[im.SHA256].ID.String()).json(t)
		for _, p := range img["proposals"].([]any) {
			p := p.(map[string]any)
			if p["model"].(map[string]any)["name"] != "halves" {
				continue
			}
			var m mask.RLE
			b, err := json.Marshal(p["mask"])
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(b, &m))
			cat, ok := catOf[p["label"].(string)]
			require.True(t, ok)
			dts = append(dts, cocoeval.Detection{ImageID: im.ID, CategoryID: cat, Mask: m, Score: p["score"].(float64)})
		}
	}
	require.Len(t, dts, 8)
	want, err := cocoeval.Evaluate(images, cats, gts, dts)
	require.NoError(t, err)
	metrics := e["metrics"].(map[string]any)
	s := want.Stats
	for k, v := range map[string]float64{"AP": s.AP, "AP50": s.AP50, "AP75": s.AP75, "APs": s.APs, "APm": s.APm, "APl": s.APl,
		"AR1": s.AR1, "AR10": s.AR10, "AR100": s.AR100, "ARs": s.ARs, "ARm": s.ARm, "ARl": s.ARl} {
		require.InDelta(t, v, metrics[k].(float64), 1e-12, k)
	}
	perClass := e["per_class"].(map[string]any)
	require.Len(t, perClass, len(cats))
	for id, c := range want.PerClass {
		got := perClass[names[id]].(map[string]any)
		require.InDelta(t, c.AP, got["AP"].(float64), 1e-12, names[id])
		require.InDelta(t, c.AP50, got["AP50"].(float64), 1e-12, names[id])
		require.InDelta(t, c.AP75, got["AP75"].(float64), 1e-12, names[id])
		require.EqualValues(t, c.Instances, got["instances"], names[id])
	}
	// And they say what the data says.
	person := perClass["person"].(map[string]any)
	require.Equal(t, 0.0, person["AP"], "never detected")
	require.EqualValues(t, 2, person["instances"])
	cat := perClass["cat"].(map[string]any)
	require.EqualValues(t, 4, cat["instances"])
	require.Greater(t, cat["AP"].(float64), 0.0)
	require.Less(t, cat["AP"].(float64), 1.0)
	dog := perClass["dog"].(map[string]any)
	require.Greater(t, dog["AP50"].(float64), dog["AP75"].(float64), "the rough dogs pass at .50 only")
	require.Greater(t, metrics["AP"].(float64), 0.0)

	// Listed for the version, newest first, paged.
	again := w.waitDone(t, w.start(t, body)["id"].(string))
	require.EqualValues(t, 0, again["queued"], "the model answered for every image already")
	require.Equal(t, metrics, again["metrics"])
	require.EqualValues(t, 8, w.worker.Stats().Succeeded, "no inference twice")
	list := w.admin.get(fmt.Sprintf("/api/v1/evaluations?dataset_id=%s&version=%d&limit=1", w.datasetID, w.version)).json(t)
	items := list["items"].([]any)
	require.Len(t, items, 1)
	require.Equal(t, again["id"], items[0].(map[string]any)["id"])
	next := list["next_cursor"].(string)
	list = w.admin.get(fmt.Sprintf("/api/v1/evaluations?dataset_id=%s&version=%d&limit=1&cursor=%s", w.datasetID, w.version, next)).json(t)
	require.Equal(t, e["id"], list["items"].([]any)[0].(map[string]any)["id"])
	require.Nil(t, list["next_cursor"])
	require.Empty(t, w.admin.get(fmt.Sprintf("/api/v1/evaluations?dataset_id=%s&version=%d", w.datasetID, w.version+1)).json(t)["items"])

	// The pages.
	page := w.admin.get("/admin/evaluations")
	require.Equal(t, http.StatusOK, page.StatusCode)
	doc := page.doc(t)
	require.Equal(t, 2, doc.Find("#evaluations tbody tr[data-state=done]").Length())
	page = w.admin.get("/admin/evaluations/" + e["id"].(string))
	require.Equal(t, http.StatusOK, page.StatusCode)
	doc = page.doc(t)
	require.Equal(t, fmt.Sprintf("%.3f", metrics["AP"].(float64)), doc.Find(`#metrics td[data-metric="AP"]`).Text())
	require.Equal(t, "0.000", doc.Find(`#per-class tr[data-label="person"] td.ap`).Text())
	require.Equal(t, "2", doc.Find(`#per-class tr[data-label="person"] td.instances`).Text())
	require.Equal(t, http.StatusForbidden, w.premium.get("/admin/evaluations").StatusCode)
	require.Equal(t, http.StatusForbidden, w.premium.get("/api/v1/evaluations/"+e["id"].(string)).StatusCode)
}

// TestEvaluationBadInput: each wrong field gets 400 naming it, and nothing
// is queued.
func TestEvaluationBadInput(t *testing.T) {
	t.Parallel()
	w := newEvalWorld(t)
	good := map[string]any{"model": "halves", "model_version": "1", "dataset_id": w.datasetID, "version": w.version, "split": "test"}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range good {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for _, c := range []struct {
		field string
		body  any
	}{
		{"model", with("model", "nobody")},
		{"model", with("model", nil)},
		{"model_version", with("model_version", "7")},
		{"dataset_id", with("dataset_id", "not-a-uuid")},
		{"dataset_id", with("dataset_id", "00000000-0000-0000-0000-000000000001")},
		{"version", with("version", 9)},
		{"version", with("version", nil)},
		{"version", with("version", "one")},
		{"split", with("split", "holdout")},
		{"split", with("split", "train")}, // empty: every image is in test
	} {
		res := w.admin.json(http.MethodPost, "/api/v1/evaluations", c.body)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "%v: %s", c.body, res.body)
		_, f := res.apiError(t)
		require.Equal(t, c.field, f, "%v", c.body)
	}
	var n int
	require.NoError(t, w.pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM evaluations) + (SELECT count(*) FROM river_job WHERE kind IN ('evaluate', 'infer'))`).Scan(&n))
	require.Zero(t, n, "nothing recorded, nothing queued")

	reviewer, _ := w.userWithRole(t, "rev@example.com", auth.RoleReviewer)
	require.Equal(t, http.StatusForbidden, reviewer.json(http.MethodPost, "/api/v1/evaluations", good).StatusCode)
	require.Equal(t, http.StatusNotFound, w.admin.get("/api/v1/evaluations/00000000-0000-0000-0000-000000000001").StatusCode)
	res := w.admin.get("/api/v1/evaluations?version=1")
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	_, f := res.apiError(t)
	require.Equal(t, "dataset_id", f)
}

// TestModelComparison evaluates two versions of a model on the same split
// and compares them: per class AP and AP50 of each with the difference,
// bars for each, and what reviewers did with each version's proposals.
func TestModelComparison(t *testing.T) {
	t.Parallel()
	w := newEvalWorld(t)
	// Version 2 segments for real: other masks, other figures.
	srv := httptest.NewServer(worker.New(worker.Config{Model: "halves", Version: "2", Capacity: 2}))
	t.Cleanup(srv.Close)
	res := w.admin.json(http.MethodPost, "/api/v1/models", map[string]any{"name": "halves", "version": "2",
		"endpoints": []string{srv.URL}, "capacity": 2, "enabled": false})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)

	page := w.admin.get("/insights/models")
	require.Equal(t, http.StatusOK, page.StatusCode)
	require.Equal(t, 1, page.doc(t).Find("#compare-empty").Length())

	body := map[string]any{"model": "halves", "model_version": "1", "dataset_id": w.datasetID, "version": w.version}
	v1 := w.waitDone(t, w.start(t, body)["id"].(string))
	body["model_version"] = "2"
	v2 := w.waitDone(t, w.start(t, body)["id"].(string))

	// A reviewer kept one of version 1's cats as a dog.
	ctx := context.Background()
	_, err := w.pool.Exec(ctx, `
		WITH p AS (SELECT p.* FROM proposals p JOIN models m ON m.id = p.model_id JOIN labels l ON l.id = p.label_id
		           WHERE m.name = 'halves' AND m.version = '1' AND l.name = 'cat' ORDER BY p.id LIMIT 1),
		item AS (INSERT INTO review_items (image_id, kind, done_by, done_at) SELECT image_id, 'second', $1::uuid, now() FROM p RETURNING id),
		v AS (INSERT INTO proposal_verdicts (review_item_id, proposal_id, verdict) SELECT item.id, p.id, 'corrected' FROM item, p)
		INSERT INTO annotations (id, image_id, review_item_id, label_id, proposal_id, iou, height, width, counts, bbox, area, content_sha256, author_id)
		SELECT gen_random_uuid(), p.image_id, item.id, (SELECT id FROM labels WHERE name = 'dog'), p.id, 0.5, p.height, p.width, p.counts, p.bbox, p.area,
		       sha256('x'::bytea), $1::uuid FROM p, item`, w.fx.Reviewer)
	require.NoError(t, err)

	doc := w.admin.get("/insights/models").doc(t) // the latest against the one before, on the same data
	require.Equal(t, v1["id"], doc.Find(`select[name=a] option[selected]`).AttrOr("value", ""))
	require.Equal(t, v2["id"], doc.Find(`select[name=b] option[selected]`).AttrOr("value", ""))
	perA, perB := v1["per_class"].(map[string]any), v2["per_class"].(map[string]any)
	rows := doc.Find("#compare-classes tbody tr")
	require.Equal(t, len(perA), rows.Length())
	for label, a := range perA {
		b := perB[label].(map[string]any)
		row := doc.Find(fmt.Sprintf(`#compare-classes tr[data-label="%s"]`, label))
		apA, apB := a.(map[string]any)["AP"].(float64), b["AP"].(float64)
		require.Equal(t, fmt.Sprintf("%+.3f", apB-apA), row.Find("td.ap").Text(), label)
		require.Equal(t, apB < apA, row.Find("td.ap").HasClass("worse"), label)
		ap50A, ap50B := a.(map[string]any)["AP50"].(float64), b["AP50"].(float64)
		require.Equal(t, fmt.Sprintf("%+.3f", ap50B-ap50A), row.Find("td.ap50").Text(), label)
		require.Equal(t, ap50B < ap50A, row.Find("td.ap50").HasClass("worse"), label)
		require.Equal(t, ap50B > ap50A, row.Find("td.ap50").HasClass("better"), label)
		// Both measures drawn, a bar per evaluation.
		for chart, m := range map[string]string{"compare-chart": "AP", "compare-chart-ap50": "AP50"} {
			g := doc.Find(fmt.Sprintf(`#%s g[data-label="%s"]`, chart, label))
			require.Equal(t, fmt.Sprintf("%.1f", 300*a.(map[string]any)[m].(float64)), g.Find("rect.bar-a").AttrOr("width", ""), "%s %s", chart, label)
			require.Equal(t, fmt.Sprintf("%.1f", 300*b[m].(float64)), g.Find("rect.bar-b").AttrOr("width", ""), "%s %s", chart, label)
		}
	}
	require.Equal(t, len(perA), doc.Find("#compare-chart rect.bar-a").Length())
	require.Equal(t, len(perA), doc.Find("#compare-chart-ap50 rect.bar-b").Length())
	require.Equal(t, fmt.Sprintf("%.1f", 300*perA["cat"].(map[string]any)["AP"].(float64)),
		doc.Find(`#compare-chart rect.bar-a`).First().AttrOr("width", ""), "cat comes first")
	require.Equal(t, 2, doc.Find("#compare-verdicts tbody tr").Length())
	require.Contains(t, doc.Find("#compare-summary").Text(), "halves 1")
	require.Equal(t, "catdog1", strings.Join(strings.Fields(doc.Find("#confusion-a tbody tr").Text()), ""))
	require.Equal(t, "0", doc.Find("#compare-verdicts tbody tr").First().Find("td").Eq(1).Text())
	require.Equal(t, "1", doc.Find("#compare-verdicts tbody tr").First().Find("td").Eq(2).Text())
	require.Equal(t, "0.500", doc.Find("#compare-verdicts tbody tr").First().Find("td").Eq(5).Text())
	require.Equal(t, 0, doc.Find("#confusion-b").Length(), "no reviewed proposal of version 2")

	// The weakest class's campaign, from the same page in one click:
	// person has 2 instances, the others 4.
	form := doc.Find(`#compare-classes tr[data-label="person"] form.ask`)
	values := url.Values{}
	form.Find("input").Each(func(_ int, in *goquery.Selection) { values.Set(in.AttrOr("name", ""), in.AttrOr("value", "")) })
	require.Equal(t, "2", values.Get("target_count"))
	res = w.admin.form("/campaigns", values)
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "%s", res.body)
	require.Equal(t, "More photos of person", w.admin.get("/api/v1/campaigns").json(t)["items"].([]any)[0].(map[string]any)["title"])

	res = w.admin.get("/insights/models?a=nope")
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	require.Equal(t, http.StatusForbidden, w.premium.get("/insights/models").StatusCode)
}

// TestNewVersionIsEvaluated: publishing a version starts an evaluation of
// every enabled model on its test split.
func TestNewVersionIsEvaluated(t *testing.T) {
	t.Parallel()
	w := newEvalWorld(t)
	recordEvents(t, w.pool)
	require.Empty(t, w.admin.get("/api/v1/evaluations").json(t)["items"], "the model was disabled when version 1 came out")
	srvURL := w.admin.get("/api/v1/models").json(t)["items"].([]any)[0].(map[string]any)["endpoints"].([]any)[0]
	res := w.admin.json(http.MethodPost, "/api/v1/models", map[string]any{"name": "halves", "version": "1",
		"endpoints": []any{srvURL}, "capacity": 2, "enabled": true})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)

	v := w.publish(t, w.datasetID)
	n := int(v["number"].(float64))
	var id string
	require.Eventually(t, func() bool {
		items := w.admin.get(fmt.Sprintf("/api/v1/evaluations?dataset_id=%s&version=%d", w.datasetID, n)).json(t)["items"].([]any)
		if len(items) == 1 {
			id = items[0].(map[string]any)["id"].(string)
		}
		return id != ""
	}, 30*time.Second, 100*time.Millisecond)
	e := w.waitDone(t, id)
	require.Equal(t, "test", e["split"])
	require.Equal(t, map[string]any{"name": "halves", "version": "1"}, e["model"])
	require.EqualValues(t, 8, e["images"])
	require.Equal(t, []string{"evaluation.finished", "version.published"}, emitted(t, w.pool))
}

// TestClassInsights ranks the classes of the latest version on seeded data
// and opens a campaign for the first in one click.
func TestClassInsights(t *testing.T) {
	t.Parallel()
	w := newEvalWorld(t)
	res := w.admin.get("/api/v1/insights/classes")
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	_, f := res.apiError(t)
	require.Equal(t, "dataset_id", f)

	e := w.waitDone(t, w.start(t, map[string]any{"model": "halves", "model_version": "1", "dataset_id": w.datasetID, "version": w.version})["id"].(string))
	perClass := e["per_class"].(map[string]any)
	body := w.admin.get("/api/v1/insights/classes?dataset_id=" + w.datasetID).json(t)
	require.EqualValues(t, w.version, body["version"])
	items := body["items"].([]any)
	require.Len(t, items, 3)
	// person: 2 instances against a median of 4, never found (AP 0):
	// (0.5 + 1) / 2.
	person := items[0].(map[string]any)
	require.Equal(t, "person", person["label"])
	require.InDelta(t, 0.75, person["priority"], 1e-12)
	require.EqualValues(t, 2, person["suggested_target"])
	require.EqualValues(t, 2, person["instances_by_split"].(map[string]any)["test"])
	require.Equal(t, 0.0, person["ap"])
	require.NotContains(t, person, "acceptance_rate", "no reviewed proposal of it")
	require.Contains(t, person["priority_reason"], "scarcity (2 instances, median of the others 4): 0.50")
	for _, it := range items[1:] {
		it := it.(map[string]any)
		ap := perClass[it["label"].(string)].(map[string]any)["AP"].(float64)
		require.InDelta(t, (0+1-ap)/2, it["priority"], 1e-12, it["label"]) // 4 instances: no scarcity
	}
	require.GreaterOrEqual(t, items[1].(map[string]any)["priority"], items[2].(map[string]any)["priority"])

	doc := w.admin.get("/insights").doc(t)
	require.Equal(t, "person", doc.Find("#class-insights tbody tr").First().AttrOr("data-label", ""))
	// Per class, the images and instances reviewed in each split of the
	// version, as the API counts them; every image is in test here.
	for _, it := range items {
		it := it.(map[string]any)
		row := doc.Find(fmt.Sprintf(`#class-insights tr[data-label="%s"]`, it["label"]))
		for _, m := range []string{"images", "instances"} {
			require.Equal(t, fmt.Sprint(it[m]), row.Find("td."+m).Text(), "%s %s", it["label"], m)
			for split, n := range it[m+"_by_split"].(map[string]any) {
				require.Equal(t, fmt.Sprint(n), row.Find("td."+m+"-"+split).Text(), "%s %s in %s", it["label"], m, split)
			}
		}
	}
	person0 := doc.Find(`#class-insights tr[data-label="person"]`)
	require.Equal(t, "0", person0.Find("td.instances-train").Text())
	require.Equal(t, "2", person0.Find("td.instances-test").Text())
	require.Equal(t, "2", person0.Find("td.images-test").Text())
	form := doc.Find(`#class-insights tr[data-label="person"] form.ask`)
	values := url.Values{}
	form.Find("input").Each(func(_ int, in *goquery.Selection) { values.Set(in.AttrOr("name", ""), in.AttrOr("value", "")) })
	res = w.admin.form(form.AttrOr("action", ""), values)
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "%s", res.body)
	camps := w.admin.get("/api/v1/campaigns").json(t)["items"].([]any)
	require.Len(t, camps, 1)
	camp := camps[0].(map[string]any)
	require.Equal(t, "More photos of person", camp["title"])
	require.EqualValues(t, 2, camp["target_count"])
	require.Equal(t, []any{"person"}, camp["labels"])
	require.Equal(t, http.StatusForbidden, w.premium.get("/insights").StatusCode)
}

// TestEvaluationForm starts an evaluation from the page, and shows a
// refusal beside its field.
func TestEvaluationForm(t *testing.T) {
	t.Parallel()
	w := newEvalWorld(t)
	doc := w.admin.get("/admin/evaluations").doc(t)
	require.Equal(t, 1, doc.Find(`#evaluation-form select[name=model] option[value="halves|1"]`).Length())
	require.Equal(t, 1, doc.Find(fmt.Sprintf(`#evaluation-form select[name=dataset_id] option[value="%s"]`, w.datasetID)).Length())

	res := w.admin.form("/admin/evaluations", url.Values{"model": {"halves|1"}, "dataset_id": {w.datasetID}, "version": {"9"}, "split": {"test"}})
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	require.Contains(t, res.doc(t).Find("#version-error").Text(), "has no version 9")

	res = w.admin.form("/admin/evaluations", url.Values{"model": {"halves|1"}, "dataset_id": {w.datasetID}, "version": {fmt.Sprint(w.version)}, "split": {"test"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "%s", res.body)
	loc := res.Header.Get("Location")
	require.True(t, strings.HasPrefix(loc, "/admin/evaluations/"), loc)
	e := w.waitDone(t, strings.TrimPrefix(loc, "/admin/evaluations/"))
	require.EqualValues(t, 8, e["images"])
}
