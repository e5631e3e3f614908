package app

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/dataset"
	"github.com/deepimageshub/imagehub/dataset/datasettest"
	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/openapi/openapitest"
)

// datasetWorld is a server with reviewed images, an admin, a premium user
// and the fixture that made the images.
type datasetWorld struct {
	*testBundle
	admin, premium *client
	fx             *datasettest.Fixture
	// anns are the annotations of each image by sha256 (hex), in order.
	anns   map[string][]datasettest.Annotation
	images map[string]datasettest.Image
}

func newDatasetWorld(t *testing.T) *datasetWorld {
	t.Helper()
	tb := setup(t)
	w := &datasetWorld{testBundle: tb, fx: datasettest.New(t, tb.pool, tb.blobs),
		anns: map[string][]datasettest.Annotation{}, images: map[string]datasettest.Image{}}
	w.admin, _ = tb.userWithRole(t, "admin@example.com", auth.RoleAdmin)
	w.premium, _ = tb.userWithRole(t, "premium@example.com", auth.RolePremium)
	return w
}

// addImages stores n reviewed images: every other one has a cat, every
// third a dog, the fifth a person and a cat, and some none at all.
func (w *datasetWorld) addImages(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		img := w.fx.Image(datasettest.ImageOpts{PNG: i%4 == 1, W: 90 + i, H: 70})
		var ins []datasettest.Instance
		if i%2 == 0 {
			ins = append(ins, datasettest.Instance{Label: "cat", Mask: datasettest.Blob(img.W, img.H, 3, 4, 40, 30)})
		}
		if i%3 == 0 {
			ins = append(ins, datasettest.Instance{Label: "dog", Mask: datasettest.Box(img.W, img.H, 50, 20, 80, 60)})
		}
		if i%5 == 4 {
			ins = append(ins, datasettest.Instance{Label: "person", Mask: datasettest.Blob(img.W, img.H, 10, 10, 70, 65)})
		}
		sha := hex.EncodeToString(img.SHA)
		w.images[sha] = img
		w.anns[sha] = w.fx.Review(img, ins...)
	}
}

// createDataset defines a dataset through the API and returns its id.
func (w *datasetWorld) createDataset(t *testing.T, body map[string]any) string {
	t.Helper()
	res := w.admin.json(http.MethodPost, "/api/v1/datasets", body)
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	return res.json(t)["dataset"].(map[string]any)["id"].(string)
}

// publish publishes the next version through the API and waits for the job.
func (w *datasetWorld) publish(t *testing.T, id string) map[string]any {
	t.Helper()
	res := w.admin.json(http.MethodPost, "/api/v1/datasets/"+id+"/versions", map[string]any{})
	require.Equal(t, http.StatusAccepted, res.StatusCode, "%s", res.body)
	body := res.json(t)
	v := body["version"].(map[string]any)
	require.Equal(t, "publishing", v["state"])
	require.NotEmpty(t, body["job"].(map[string]any)["id"])
	return w.waitPublished(t, id, int(v["number"].(float64)))
}

func (w *datasetWorld) waitPublished(t *testing.T, id string, n int) map[string]any {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		res := w.premium.get(fmt.Sprintf("/api/v1/datasets/%s/versions/%d", id, n))
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
		v := res.json(t)
		switch v["state"] {
		case "published":
			return v
		case "failed":
			t.Fatalf("publishing failed: %s", res.body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("version %d still %s", n, v["state"])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tokenClient is a client with nothing but a bearer token, as curl is.
func (w *datasetWorld) tokenClient(t *testing.T, c *client) *client {
	t.Helper()
	res := c.json(http.MethodPost, "/api/v1/tokens", map[string]any{"name": "download script"})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	tc := w.client(t)
	tc.header.Set("Authorization", "Bearer "+res.json(t)["token"].(string))
	return tc
}

type zipEntries struct {
	names []string
	files map[string][]byte
}

func openZip(t *testing.T, data []byte) zipEntries {
	t.Helper()
	r, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	z := zipEntries{files: map[string][]byte{}}
	for _, f := range r.File {
		rc, err := f.Open()
		require.NoError(t, err)
		b, err := io.ReadAll(rc)
		require.NoError(t, err, f.Name)
		z.names = append(z.names, f.Name)
		z.files[f.Name] = b
	}
	return z
}

func (z zipEntries) manifest(t *testing.T) [][]string {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(z.files["manifest.csv"])).ReadAll()
	require.NoError(t, err)
	require.Equal(t, []string{"sha256", "split", "width", "height", "labels"}, rows[0])
	return rows[1:]
}

func (z zipEntries) coco(t *testing.T) dataset.COCOFile {
	t.Helper()
	var c dataset.COCOFile
	require.NoError(t, json.Unmarshal(z.files["annotations.json"], &c), "%s", z.files["annotations.json"])
	return c
}

// unzipTest runs Info-ZIP's `unzip -t` on the zip: the check the zip must
// pass with a tool other than Go's reader.
func unzipTest(t *testing.T, data []byte) {
	t.Helper()
	bin, err := exec.LookPath("unzip")
	if err != nil {
		t.Fatal("unzip not found: run `make test` (it installs Debian's unzip) or install it")
	}
	path := filepath.Join(t.TempDir(), "download.zip")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	out, err := exec.Command(bin, "-t", path).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "No errors detected")
}

// TestDatasetPublishAndDownload is the whole path: an admin defines a
// dataset and publishes it (202, then a job), a premium user downloads it
// with a bearer token as curl would; the zip passes `unzip -t`, is laid out
// as API.md says, and every mask in annotations.json decodes to the stored
// annotation's pixels.
func TestDatasetPublishAndDownload(t *testing.T) {
	t.Parallel()
	w := newDatasetWorld(t)
	w.addImages(t, 10)
	id := w.createDataset(t, map[string]any{"name": "Everything", "filter": map[string]any{},
		"splits": map[string]float64{"train": 0.6, "val": 0.2, "test": 0.2}})
	v := w.publish(t, id)

	counts := v["counts"].(map[string]any)
	require.EqualValues(t, 10, counts["images"])
	instances := 0
	for _, a := range w.anns {
		instances += len(a)
	}
	require.EqualValues(t, instances, counts["instances"])
	hist := v["histogram"].(map[string]any)
	perLabel := map[string]float64{}
	for _, split := range []string{"train", "val", "test"} {
		for label, n := range hist[split].(map[string]any) {
			perLabel[label] += n.(float64)
		}
	}
	require.Equal(t, map[string]float64{"cat": 5, "dog": 4, "person": 2}, perLabel)
	require.Equal(t, map[string]any{"previous": nil, "added": 10.0, "removed": 0.0, "changed": 0.0}, v["diff"])

	curl := w.tokenClient(t, w.premium)
	res := curl.get("/api/v1/datasets/" + id + "/versions/1/download")
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	require.Equal(t, "application/zip", res.Header.Get("Content-Type"))
	require.Equal(t, `attachment; filename="everything-v1-coco.zip"`, res.Header.Get("Content-Disposition"))
	unzipTest(t, res.body)

	z := openZip(t, res.body)
	require.Equal(t, []string{"manifest.csv", "README.txt", "annotations.json"}, z.names[:3])
	rows := z.manifest(t)
	var perSplit []string
	for _, sp := range []string{"train", "val", "test"} {
		if slices.ContainsFunc(rows, func(r []string) bool { return r[1] == sp }) {
			perSplit = append(perSplit, "annotations/instances_"+sp+".json")
		}
	}
	require.Equal(t, perSplit, z.names[3:3+len(perSplit)], "a COCO file per split present")
	require.Len(t, z.names, 3+len(perSplit)+10)
	require.Len(t, rows, 10)
	for _, r := range rows {
		img := w.images[r[0]]
		ext := map[string]string{"image/jpeg": "jpg", "image/png": "png"}[img.ContentType]
		require.Equal(t, img.Bytes, z.files["images/"+r[0]+"."+ext], "the image's bytes")
		require.Equal(t, fmt.Sprint(img.W), r[2])
		require.Equal(t, fmt.Sprint(img.H), r[3])
	}
	c := z.coco(t)
	cats := map[int]string{}
	for _, cat := range c.Categories {
		cats[cat.ID] = cat.Name
	}
	bySHA := map[int]string{}
	for _, im := range c.Images {
		bySHA[im.ID] = im.SHA256
	}
	require.Len(t, c.Annotations, instances)
	seen := map[string]int{}
	for _, a := range c.Annotations {
		sha := bySHA[a.ImageID]
		want := w.anns[sha][seen[sha]]
		seen[sha]++
		require.Equal(t, want.Label, cats[a.CategoryID])
		got, err := a.Segmentation.RLE.Decode()
		require.NoError(t, err)
		stored, err := want.RLE.Decode()
		require.NoError(t, err)
		require.Equal(t, stored.Pix, got.Pix, "the mask of annotation %d is the stored pixels", a.ID)
	}
	readme := string(z.files["README.txt"])
	require.Contains(t, readme, "Everything, version 1")
	require.Contains(t, readme, "Images: 10")

	// The same download from the page (session cookie) is the same bytes.
	page := w.premium.get("/datasets/" + id + "/versions/1/download")
	require.Equal(t, http.StatusOK, page.StatusCode)
	require.Equal(t, res.body, page.body)
}

// TestDatasetDownloadSubsets takes subsets by split and label, in both
// formats, and refuses bad ones naming the parameter.
func TestDatasetDownloadSubsets(t *testing.T) {
	t.Parallel()
	w := newDatasetWorld(t)
	w.addImages(t, 16)
	id := w.createDataset(t, map[string]any{"name": "subsets", "splits": map[string]float64{"train": 0.5, "val": 0, "test": 0.5}})
	v := w.publish(t, id)
	split := v["counts"].(map[string]any)["splits"].(map[string]any)
	base := "/api/v1/datasets/" + id + "/versions/1/download"

	get := func(query string) zipEntries {
		t.Helper()
		res := w.premium.get(base + query)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s: %s", query, res.body)
		return openZip(t, res.body)
	}
	z := get("?split=train")
	rows := z.manifest(t)
	require.EqualValues(t, split["train"].(map[string]any)["images"], len(rows))
	require.NotEmpty(t, rows, "16 images at even odds: some are in train")
	for _, r := range rows {
		require.Equal(t, "train", r[1])
	}
	for _, im := range z.coco(t).Images {
		require.Equal(t, "train", im.Split)
	}
	require.Equal(t, "annotations/instances_train.json", z.names[3], "the split's own COCO file")
	require.Len(t, z.names, 4+len(rows))

	z = get("?labels=cat")
	c := z.coco(t)
	require.Len(t, c.Categories, 1)
	require.Equal(t, "cat", c.Categories[0].Name)
	require.Len(t, c.Images, 8, "images with a cat")
	require.Len(t, c.Annotations, 8, "their cats only")
	for _, a := range c.Annotations {
		require.Equal(t, c.Categories[0].ID, a.CategoryID)
	}
	for _, r := range z.manifest(t) {
		require.Equal(t, "cat", r[4], "the labels of the subset's instances")
	}

	z = get("?format=png&labels=dog&split=test&split=train")
	require.NotContains(t, z.files, "annotations.json")
	masks, err := csv.NewReader(bytes.NewReader(z.files["masks.csv"])).ReadAll()
	require.NoError(t, err)
	require.Len(t, masks, 1+6, "six dogs")
	for _, m := range masks[1:] {
		require.Equal(t, "dog", m[2])
		img, err := png.Decode(bytes.NewReader(z.files[m[0]]))
		require.NoError(t, err, m[0])
		sha := strings.Split(m[0], "/")[1]
		var want datasettest.Annotation
		for _, a := range w.anns[sha] {
			if a.Label == "dog" {
				want = a
			}
		}
		stored, err := want.RLE.Decode()
		require.NoError(t, err)
		require.Equal(t, stored.Pix, mask.FromImage(img, 127).Pix, "%s is the stored mask", m[0])
	}
	unzipTest(t, w.premium.get(base+"?format=png").body)

	for query, field := range map[string]string{
		"?format=tiff":    "format",
		"?split=holdout":  "split",
		"?labels=unicorn": "labels",
		"?labels=bicycle": "labels", // a label, but none in this version
	} {
		res := w.premium.get(base + query)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, query)
		_, f := res.apiError(t)
		require.Equal(t, field, f, query)
	}
	require.Equal(t, http.StatusNotFound, w.premium.get("/api/v1/datasets/"+id+"/versions/2/download").StatusCode)
	require.Equal(t, http.StatusNotFound, w.premium.get("/api/v1/datasets/"+id+"/versions/x/download").StatusCode)
}

// TestDatasetDownloadFormats: each format downloads from the API as a zip
// that passes `unzip -t` with its layout, the page offers each, a prepared
// export of a format is the streamed bytes, and bad values name their
// field. (dataset's tests read every layout back pixel by pixel.)
func TestDatasetDownloadFormats(t *testing.T) {
	t.Parallel()
	w := newDatasetWorld(t)
	w.addImages(t, 6)
	id := w.createDataset(t, map[string]any{"name": "Formats"})
	w.publish(t, id)
	base := "/api/v1/datasets/" + id + "/versions/1"
	for query, want := range map[string][]string{
		"?format=coco&mask_format=polygon": {"annotations.json", "annotations/instances_train.json"},
		"?format=yolo":                     {"data.yaml", "labels/train/"},
		"?format=voc":                      {"labelmap.txt", "SegmentationClass/", "SegmentationObject/", "JPEGImages/", "ImageSets/Segmentation/train.txt"},
	} {
		res := w.premium.get(base + "/download" + query)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s: %s", query, res.body)
		unzipTest(t, res.body)
		z := openZip(t, res.body)
		for _, prefix := range want {
			require.True(t, slices.ContainsFunc(z.names, func(n string) bool { return strings.HasPrefix(n, prefix) }), "%s has %s: %v", query, prefix, z.names)
		}
	}
	res := w.premium.get(base + "/download?format=coco&mask_format=polygon")
	require.Equal(t, `attachment; filename="formats-v1-coco-polygon.zip"`, res.Header.Get("Content-Disposition"))
	require.Contains(t, string(openZip(t, res.body).files["README.txt"]), "masks are polygons")

	for query, field := range map[string]string{
		"?format=yolov8":      "format",
		"?mask_format=bitmap": "mask_format",
		"?format=voc&split=x": "split",
	} {
		res := w.premium.get(base + "/download" + query)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, query)
		_, f := res.apiError(t)
		require.Equal(t, field, f, query)
	}

	doc := w.premium.get("/datasets/" + id + "/versions/1").doc(t)
	for _, f := range []string{"coco", "yolo", "voc", "png"} {
		require.Equal(t, 1, doc.Find(`#download-form input[name="format"][value="`+f+`"]`).Length(), f)
	}
	require.Equal(t, 1, doc.Find(`#download-form input[name="mask_format"][value="polygon"]`).Length())

	// Prepared exports: YOLO and polygon COCO are exports of their own.
	for _, body := range []map[string]any{{"format": "yolo"}, {"format": "coco", "mask_format": "polygon"}} {
		res := w.premium.json(http.MethodPost, base+"/exports", body)
		require.Equal(t, http.StatusAccepted, res.StatusCode, "%s", res.body)
		e := res.json(t)["export"].(map[string]any)
		require.Equal(t, body["format"], e["format"])
		deadline := time.Now().Add(60 * time.Second)
		for e["state"] != "ready" {
			require.NotEqual(t, "failed", e["state"], "%v", e)
			require.True(t, time.Now().Before(deadline), "export still %v", e["state"])
			time.Sleep(50 * time.Millisecond)
			e = w.premium.get(base + "/exports/" + e["id"].(string)).json(t)["export"].(map[string]any)
		}
		file := w.premium.get(e["url"].(string))
		require.Equal(t, http.StatusOK, file.StatusCode)
		query := "?format=" + body["format"].(string)
		if mf, ok := body["mask_format"]; ok {
			query += "&mask_format=" + mf.(string)
		}
		require.Equal(t, w.premium.get(base+"/download"+query).body, file.body, "%v: the streamed bytes", body)
	}
}

// TestDatasetDownloadRoles: downloads are for premium users and admins;
// contributors and reviewers get 403, nobody 401, and a version not yet
// published 409.
func TestDatasetDownloadRoles(t *testing.T) {
	t.Parallel()
	w := newDatasetWorld(t)
	w.addImages(t, 3)
	id := w.createDataset(t, map[string]any{"name": "roles"})
	w.publish(t, id)
	path := "/api/v1/datasets/" + id + "/versions/1/download"
	for _, role := range []auth.Role{auth.RoleContributor, auth.RoleReviewer} {
		c, _ := w.userWithRole(t, string(role)+"@example.com", role)
		for _, p := range []string{path, "/datasets/" + id + "/versions/1/download", "/api/v1/datasets/" + id + "/versions/1", "/api/v1/datasets"} {
			res := c.get(p)
			require.Equal(t, http.StatusForbidden, res.StatusCode, "%s as %s", p, role)
		}
		require.Equal(t, http.StatusForbidden, w.tokenClient(t, c).get(path).StatusCode, "a %s's token", role)
	}
	require.Equal(t, http.StatusUnauthorized, w.client(t).get(path).StatusCode)
	require.Equal(t, http.StatusOK, w.premium.get(path).StatusCode)
	require.Equal(t, http.StatusOK, w.admin.get(path).StatusCode)

	_, err := w.pool.Exec(context.Background(), `
		INSERT INTO dataset_versions (dataset_id, number, filter, created_by)
		SELECT id, 2, '{}', created_by FROM datasets`)
	require.NoError(t, err)
	res := w.premium.get("/api/v1/datasets/" + id + "/versions/2/download")
	require.Equal(t, http.StatusConflict, res.StatusCode)
	code, _ := res.apiError(t)
	require.Equal(t, "not_published", code)
	res = w.admin.json(http.MethodPost, "/api/v1/datasets/"+id+"/versions", map[string]any{})
	require.Equal(t, http.StatusConflict, res.StatusCode, "one version is published at a time: %s", res.body)
}

// TestDatasetCreateRefusals: bad definitions name their field.
func TestDatasetCreateRefusals(t *testing.T) {
	t.Parallel()
	w := newDatasetWorld(t)
	for field, body := range map[string]map[string]any{
		"name":                {"name": " "},
		"splits":              {"name": "x", "splits": map[string]float64{"train": 0.9, "val": 0.2, "test": 0}},
		"filter.labels":       {"name": "x", "filter": map[string]any{"labels": []string{"cat", "unicorn"}}},
		"filter.campaign_ids": {"name": "x", "filter": map[string]any{"campaign_ids": []string{"0b9f8c7e-0000-4000-8000-000000000000"}}},
		"filter.min_quality":  {"name": "x", "filter": map[string]any{"min_quality": -3}},
		"filter.until":        {"name": "x", "filter": map[string]any{"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}},
	} {
		res := w.admin.json(http.MethodPost, "/api/v1/datasets", body)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s: %s", field, res.body)
		_, f := res.apiError(t)
		require.Equal(t, field, f)
	}
	w.createDataset(t, map[string]any{"name": "Twice"})
	res := w.admin.json(http.MethodPost, "/api/v1/datasets", map[string]any{"name": "twice"})
	require.Equal(t, http.StatusConflict, res.StatusCode)
	res = w.premium.json(http.MethodPost, "/api/v1/datasets", map[string]any{"name": "mine"})
	require.Equal(t, http.StatusForbidden, res.StatusCode)
}

// TestDatasetPages drives the admin pages and the version page: define a
// dataset with the form, publish with the button, watch it finish, and
// find the histogram, the diff and the download form.
func TestDatasetPages(t *testing.T) {
	t.Parallel()
	w := newDatasetWorld(t)
	w.addImages(t, 6)

	res := w.admin.get("/admin/datasets")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, 1, res.doc(t).Find("form#dataset-form").Length())
	res = w.admin.form("/admin/datasets", url.Values{"name": {"Pets"}, "labels": {"cat, dog"}, "train": {"0.7"}, "val": {"0.2"}, "test": {"0.2"}})
	require.Equal(t, http.StatusBadRequest, res.StatusCode, "shares that add up to 1.1")
	require.Contains(t, res.doc(t).Find("#splits-error").Text(), "add up to 1")
	res = w.admin.form("/admin/datasets", url.Values{"name": {"Pets"}, "labels": {"cat, dog"}, "train": {"0.7"}, "val": {"0.2"}, "test": {"0.1"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "%s", res.body)
	loc := res.Header.Get("Location")
	id := strings.TrimPrefix(loc, "/datasets/")

	page := w.admin.get(loc)
	require.Equal(t, http.StatusOK, page.StatusCode)
	require.Contains(t, page.doc(t).Find("p.hint").Text(), "cat, dog")
	res = w.admin.form("/admin/datasets/"+id+"/versions", url.Values{})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "%s", res.body)
	require.Equal(t, "/datasets/"+id+"/versions/1", res.Header.Get("Location"))
	w.waitPublished(t, id, 1)

	// The premium user sees no publish button, and the version page.
	require.Zero(t, w.premium.get(loc).doc(t).Find(`form[action$="/versions"]`).Length())
	doc := w.premium.get("/datasets/" + id + "/versions/1").doc(t)
	bars := doc.Find("#histogram svg rect.bar")
	require.Equal(t, 2*3, bars.Length(), "three bars, train, val and test, for each label")
	total := map[string]int{}
	bars.Each(func(_ int, s *goquery.Selection) {
		label, _ := s.Parent().Attr("data-label")
		v, _ := s.Attr("data-value")
		var n int
		fmt.Sscan(v, &n)
		total[label] += n
	})
	require.Equal(t, map[string]int{"cat": 3, "dog": 2}, total)
	require.Contains(t, doc.Find("#diff").Text(), "The first version: 4 images added.")
	require.Equal(t, 1, doc.Find(`#download-form[method="get"]`).Length())
	require.Contains(t, doc.Find("#download .secret").Text(), "Authorization: Bearer $TOKEN")

	status := w.premium.do(http.MethodGet, "/datasets/"+id+"/versions/1/status", nil, http.Header{"HX-Request": {"true"}})
	require.Equal(t, "true", status.Header.Get("HX-Refresh"), "a finished version reloads its page")

	require.Contains(t, w.premium.get("/datasets").doc(t).Find("#datasets").Text(), "Pets")
}

// TestDatasetPreparedExport builds an export with the job, watches its
// progress, and fetches the file: the same bytes as the streamed download
// of the same subset. Asking again for the same subset gives the same
// export.
func TestDatasetPreparedExport(t *testing.T) {
	t.Parallel()
	w := newDatasetWorld(t)
	w.addImages(t, 8)
	id := w.createDataset(t, map[string]any{"name": "exports"})
	w.publish(t, id)
	base := "/api/v1/datasets/" + id + "/versions/1"

	res := w.premium.json(http.MethodPost, base+"/exports", map[string]any{"format": "coco", "labels": []string{"dog"}})
	require.Equal(t, http.StatusAccepted, res.StatusCode, "%s", res.body)
	e := res.json(t)["export"].(map[string]any)
	eid := e["id"].(string)
	deadline := time.Now().Add(60 * time.Second)
	for e["state"] != "ready" {
		require.NotEqual(t, "failed", e["state"], "%v", e)
		require.True(t, time.Now().Before(deadline), "export still %v", e["state"])
		time.Sleep(50 * time.Millisecond)
		res = w.premium.get(base + "/exports/" + eid)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
		e = res.json(t)["export"].(map[string]any)
	}
	file := w.premium.get(e["url"].(string))
	require.Equal(t, http.StatusOK, file.StatusCode, "%s", file.body)
	streamed := w.premium.get(base + "/download?labels=dog")
	require.Equal(t, streamed.body, file.body, "a prepared export is the streamed download's bytes")
	require.EqualValues(t, len(file.body), e["bytes"])

	res = w.premium.json(http.MethodPost, base+"/exports", map[string]any{"labels": []string{"dog"}})
	require.Equal(t, http.StatusOK, res.StatusCode, "ready already: %s", res.body)
	require.Equal(t, eid, res.json(t)["export"].(map[string]any)["id"])

	// The page's form asks for one too, and lists it.
	res = w.premium.form("/datasets/"+id+"/versions/1/exports", url.Values{"format": {"png"}, "split": {"train"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "%s", res.body)
	require.Equal(t, 2, w.premium.get("/datasets/"+id+"/versions/1").doc(t).Find("#exports li").Length())
}

// TestDatasetDownloadFailsLoudly: when the zip cannot be finished (an image
// is missing from the store) after the first bytes are out, the connection
// is dropped before the end of the chunked body, so a client sees an error
// instead of a zip that looks whole.
func TestDatasetDownloadFailsLoudly(t *testing.T) {
	t.Parallel()
	w := newDatasetWorld(t)
	w.addImages(t, 4)
	id := w.createDataset(t, map[string]any{"name": "broken"})
	w.publish(t, id)
	for _, img := range w.images {
		require.NoError(t, w.blobs.Delete(context.Background(), "images/"+hex.EncodeToString(img.SHA)))
		break
	}
	req, err := http.NewRequest(http.MethodGet, w.base+"/api/v1/datasets/"+id+"/versions/1/download", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", w.tokenClient(t, w.premium).header.Get("Authorization"))
	res, err := openapitest.Client(t).Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode, "the status left before the failure")
	_, err = io.ReadAll(res.Body)
	require.Error(t, err, "the body ends with an error, not a clean end")
}
