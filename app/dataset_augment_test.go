package app

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDatasetDownloadAugmented: a download with augment=… holds copies of
// the train images only, with their transforms in the manifest and the
// README, is the same bytes twice, and names its params in the zip's name;
// bad params are a 400 naming the field, before any byte of zip; a
// prepared export of the same request is the same bytes.
func TestDatasetDownloadAugmented(t *testing.T) {
	t.Parallel()
	w := newDatasetWorld(t)
	w.addImages(t, 12)
	id := w.createDataset(t, map[string]any{"name": "augmented", "splits": map[string]float64{"train": 0.5, "val": 0.25, "test": 0.25}})
	v := w.publish(t, id)
	splits := v["counts"].(map[string]any)["splits"].(map[string]any)
	train := int(splits["train"].(map[string]any)["images"].(float64))
	require.Positive(t, train, "twelve images at even odds: some are in train")
	base := "/api/v1/datasets/" + id + "/versions/1/download"

	query := "?format=yolo&augment=flip_h,rot90,crop:0.8&copies=2&augment_seed=42"
	res := w.premium.get(base + query)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	require.Contains(t, res.Header.Get("Content-Disposition"), "-yolo-aug2-seed42.zip")
	again := w.premium.get(base + query)
	require.Equal(t, sha256.Sum256(res.body), sha256.Sum256(again.body), "the same request, the same bytes")
	unzipTest(t, res.body)
	z := openZip(t, res.body)
	rows := z.manifestRows(t)
	require.Equal(t, []string{"sha256", "split", "width", "height", "labels", "file", "augment"}, rows[0])
	require.Len(t, rows, 1+12+2*train)
	copies := 0
	for _, r := range rows[1:] {
		require.Contains(t, z.files, r[5])
		if strings.Contains(r[5], "_aug") {
			copies++
			require.Equal(t, "train", r[1])
			require.True(t, strings.HasPrefix(r[5], "images/train/"+r[0]+"_aug"), r[5])
			require.Contains(t, r[6], "size:")
			label := strings.Replace(strings.Replace(r[5], "images/", "labels/", 1), r[5][strings.LastIndex(r[5], "."):], ".txt", 1)
			require.Contains(t, z.files, label)
		} else {
			require.Empty(t, r[6])
		}
	}
	require.Equal(t, 2*train, copies)
	require.Contains(t, string(z.files["README.txt"]), "Augmented: augment=flip_h,rot90,crop:0.8&copies=2&augment_seed=42.")

	// The version page's form sends its fields empty when unused: no copies.
	doc := w.premium.get("/datasets/" + id + "/versions/1").doc(t)
	for _, name := range []string{"augment", "copies", "augment_seed"} {
		require.Equal(t, 1, doc.Find(`#download-form input[name="`+name+`"]`).Length(), name)
	}
	page := w.premium.get("/datasets/" + id + "/versions/1/download?format=yolo&augment=&copies=&augment_seed=")
	require.Equal(t, http.StatusOK, page.StatusCode, "%s", page.body)
	for _, n := range openZip(t, page.body).names {
		require.NotContains(t, n, "_aug", "no augment, no copies")
	}
	withCopies := w.premium.get("/datasets/" + id + "/versions/1/download?format=yolo&augment=flip_h&copies=2&augment_seed=42")
	require.Equal(t, http.StatusOK, withCopies.StatusCode)
	require.Equal(t, 1+12+2*train, len(openZip(t, withCopies.body).manifestRows(t)), "the page's download is the API's")

	for q, field := range map[string]string{
		"?augment=flip_v":                        "augment",
		"?augment=crop:1.5":                      "augment",
		"?augment=scale:2-1":                     "augment",
		"?augment=flip_h,flip_h":                 "augment",
		"?augment=flip_h&copies=0":               "copies",
		"?augment=flip_h&copies=11":              "copies",
		"?copies=2":                              "copies",
		"?augment=rot90&augment_seed=-1":         "augment_seed",
		"?augment_seed=3":                        "augment_seed",
		"?format=voc&augment=brightness:2":       "augment",
		"?format=coco&augment=contrast&copies=1": "augment",
	} {
		res := w.premium.get(base + q)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, q)
		require.NotEqual(t, "application/zip", res.Header.Get("Content-Type"), "%s: nothing streamed", q)
		require.Empty(t, res.Header.Get("Content-Disposition"), q)
		_, f := res.apiError(t)
		require.Equal(t, field, f, q)
	}

	// A prepared export of the same request is the streamed bytes; one with
	// other draws is another export; bad values are refused by name.
	exports := "/api/v1/datasets/" + id + "/versions/1/exports"
	body := map[string]any{"format": "yolo", "augment": "flip_h,rot90,crop:0.8", "copies": 2, "augment_seed": 42}
	exp := w.premium.json(http.MethodPost, exports, body)
	require.Equal(t, http.StatusAccepted, exp.StatusCode, "%s", exp.body)
	e := exp.json(t)["export"].(map[string]any)
	require.Equal(t, "augment=flip_h,rot90,crop:0.8&copies=2&augment_seed=42", e["augment"])
	deadline := time.Now().Add(60 * time.Second)
	for e["state"] != "ready" {
		require.NotEqual(t, "failed", e["state"], "%v", e)
		require.True(t, time.Now().Before(deadline), "export still %v", e["state"])
		time.Sleep(50 * time.Millisecond)
		r := w.premium.get(exports + "/" + e["id"].(string))
		require.Equal(t, http.StatusOK, r.StatusCode, "%s", r.body)
		e = r.json(t)["export"].(map[string]any)
	}
	file := w.premium.get(e["url"].(string))
	require.Equal(t, http.StatusOK, file.StatusCode, "%s", file.body)
	require.Equal(t, sha256.Sum256(res.body), sha256.Sum256(file.body), "a prepared augmented export is the streamed bytes")
	require.Contains(t, file.Header.Get("Content-Disposition"), "-yolo-aug2-seed42.zip")
	same := w.premium.json(http.MethodPost, exports, body)
	require.Equal(t, http.StatusOK, same.StatusCode, "ready already: %s", same.body)
	require.Equal(t, e["id"], same.json(t)["export"].(map[string]any)["id"])
	body["augment_seed"] = 43
	other := w.premium.json(http.MethodPost, exports, body)
	require.Equal(t, http.StatusAccepted, other.StatusCode, "another seed, another export: %s", other.body)
	require.NotEqual(t, e["id"], other.json(t)["export"].(map[string]any)["id"])
	for field, bad := range map[string]map[string]any{
		"augment":      {"augment": "mirror"},
		"copies":       {"augment": "flip_h", "copies": 0},
		"augment_seed": {"augment": "flip_h", "augment_seed": -1},
	} {
		r := w.premium.json(http.MethodPost, exports, bad)
		require.Equal(t, http.StatusBadRequest, r.StatusCode, "%v: %s", bad, r.body)
		_, f := r.apiError(t)
		require.Equal(t, field, f, "%v", bad)
	}
	form := w.premium.form("/datasets/"+id+"/versions/1/exports", url.Values{"format": {"coco"}, "augment": {"flip_v"}})
	require.Equal(t, http.StatusBadRequest, form.StatusCode)
	form = w.premium.form("/datasets/"+id+"/versions/1/exports", url.Values{"format": {"coco"}, "augment": {"flip_h"}, "copies": {""}, "augment_seed": {""}})
	require.Equal(t, http.StatusSeeOther, form.StatusCode, "%s", form.body)
}

// manifestRows reads manifest.csv whatever its columns, header first.
func (z zipEntries) manifestRows(t *testing.T) [][]string {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(z.files["manifest.csv"])).ReadAll()
	require.NoError(t, err)
	return rows
}
