package app

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/config"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
	"github.com/deepimageshub/imagehub/importer"
	"github.com/deepimageshub/imagehub/jobs"
)

// importPart is one part of an import's multipart body: a file when name
// is set, a field otherwise.
type importPart struct {
	field, name string
	data        []byte
}

func (c *client) postImport(parts ...importPart) *response {
	c.t.Helper()
	body, ct := importBody(c.t, parts...)
	return c.do(http.MethodPost, "/api/v1/imports", body, http.Header{"Content-Type": {ct}})
}

func importBody(t testing.TB, parts ...importPart) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		if p.name == "" {
			require.NoError(t, w.WriteField(p.field, string(p.data)))
			continue
		}
		part, err := w.CreateFormFile(p.field, p.name)
		require.NoError(t, err)
		_, err = part.Write(p.data)
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
	return &buf, w.FormDataContentType()
}

// importCOCO is a COCO file of two 400×300 images, a.jpg and b.jpg (under
// dirB), with three good annotations and one of a label the taxonomy lacks.
func importCOCO(dirB string) []byte {
	return []byte(fmt.Sprintf(`{"images": [{"id": 1, "file_name": "a.jpg", "width": 400, "height": 300},
  {"id": 2, "file_name": "%sb.jpg", "width": 400, "height": 300}],
"categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}, {"id": 3, "name": "no-such-label-here"}],
"annotations": [
{"id": 10, "image_id": 1, "category_id": 1, "segmentation": [[20, 20, 220, 20, 220, 200, 20, 200]]},
{"id": 11, "image_id": 1, "category_id": 2, "segmentation": [[250, 30, 390, 30, 390, 290]]},
{"id": 12, "image_id": 2, "category_id": 1, "segmentation": [[10, 10, 100, 10, 100, 100, 10, 100]]},
{"id": 13, "image_id": 2, "category_id": 3, "segmentation": [[10, 10, 100, 10, 100, 100]]}
]}`, dirB))
}

func importImages() (a, b []byte) {
	return imagingtest.JPEG(imagingtest.Photo(400, 300, 501)), imagingtest.JPEG(imagingtest.Photo(400, 300, 502))
}

// waitImport polls GET /api/v1/imports/{id} until the import has ended.
func (c *client) waitImport(id string) map[string]any {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		res := c.get("/api/v1/imports/" + id)
		require.Equal(c.t, http.StatusOK, res.StatusCode, "%s", res.body)
		imp := res.json(c.t)["import"].(map[string]any)
		switch imp["state"] {
		case "done":
			return imp
		case "failed":
			c.t.Fatalf("import failed: %s", res.body)
		}
		require.True(c.t, time.Now().Before(deadline), "import still %v", imp["state"])
		time.Sleep(50 * time.Millisecond)
	}
}

// submitImport posts an import and checks the 202.
func (c *client) submitImport(parts ...importPart) string {
	c.t.Helper()
	res := c.postImport(parts...)
	require.Equal(c.t, http.StatusAccepted, res.StatusCode, "%s", res.body)
	body := res.json(c.t)
	imp := body["import"].(map[string]any)
	require.Contains(c.t, []any{"queued", "running", "done"}, imp["state"])
	job := body["job"].(map[string]any)
	require.NotEmpty(c.t, job["id"])
	require.Equal(c.t, "dataset_import", job["kind"])
	return imp["id"].(string)
}

// waitImported waits until n images are in the given status.
func (tb *testBundle) waitImported(t *testing.T, status string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for tb.count(t, `SELECT count(*) FROM images WHERE status = $1`, status) < n {
		require.True(t, time.Now().Before(deadline), "%d images %s, want %d", tb.count(t, `SELECT count(*) FROM images WHERE status = $1`, status), status, n)
		time.Sleep(50 * time.Millisecond)
	}
}

func requireImportSummary(t *testing.T, imp map[string]any) map[string]any {
	t.Helper()
	sum := imp["summary"].(map[string]any)
	require.EqualValues(t, 2, sum["images"], "%v", sum)
	require.EqualValues(t, 2, sum["images_created"], "%v", sum)
	require.EqualValues(t, 3, sum["annotations"], "%v", sum)
	problems := sum["problems"].([]any)
	require.Len(t, problems, 1, "%v", sum)
	p := problems[0].(map[string]any)
	require.Contains(t, p["what"], "no-such-label-here")
	require.EqualValues(t, 8, p["line"], "the bad annotation's line")
	require.EqualValues(t, 4, imp["progress"].(map[string]any)["annotations"], "every annotation read, the bad one too: %v", imp)
	return sum
}

// TestImportAPIMultipart: a COCO file and two images posted as multipart
// end done, the annotations the images' first reviews by the admin, the
// bad row reported with its line, the stored files gone.
func TestImportAPIMultipart(t *testing.T) {
	t.Parallel()
	w := newDatasetWorld(t)
	a, b := importImages()
	// b.jpg's file_name has a folder; its part's file name cannot.
	id := w.admin.submitImport(
		importPart{"annotations", "instances.json", importCOCO("val2017/")},
		importPart{"images", "a.jpg", a},
		importPart{"images", "b.jpg", b},
	)
	imp := w.admin.waitImport(id)
	requireImportSummary(t, imp)
	require.Equal(t, "instances.json", imp["source"])

	w.waitImported(t, "reviewed", 2)
	require.Equal(t, 3, w.count(t, `SELECT count(*) FROM annotations a JOIN users u ON u.id = a.author_id
		WHERE u.email = 'admin@example.com' AND a.imported_id IS NOT NULL`))
	require.Equal(t, 2, w.count(t, `SELECT count(*) FROM review_items r JOIN users u ON u.id = r.done_by
		WHERE r.kind = 'first' AND u.email = 'admin@example.com'`))
	require.Equal(t, 3, w.count(t, `SELECT count(*) FROM imported_annotations WHERE source = 'instances.json' AND applied_at IS NOT NULL`))
	require.Zero(t, w.blobCount(t, "imports/"), "the import's files are deleted once it is done")

	// The same import again adds nothing.
	id2 := w.admin.submitImport(
		importPart{"annotations", "instances.json", importCOCO("val2017/")},
		importPart{"images", "a.jpg", a},
		importPart{"images", "b.jpg", b},
	)
	sum := w.admin.waitImport(id2)["summary"].(map[string]any)
	require.EqualValues(t, 0, sum["added"], "%v", sum)
	require.EqualValues(t, 3, sum["already"], "%v", sum)
	require.Equal(t, 3, w.count(t, `SELECT count(*) FROM annotations`))
}

// TestImportAPIZip: one zip with the COCO file at its root, one image
// named relative to the images/ folder and one relative to the root.
func TestImportAPIZip(t *testing.T) {
	t.Parallel()
	w := newDatasetWorld(t)
	a, b := importImages()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range map[string][]byte{
		"annotations/coco.json": importCOCO("images/"), "images/a.jpg": a, "images/b.jpg": b, "__MACOSX/._coco.json": []byte("junk"),
	} {
		f, err := zw.Create(name)
		require.NoError(t, err)
		_, err = f.Write(data)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	id := w.admin.submitImport(importPart{"archive", "dataset.zip", buf.Bytes()})
	imp := w.admin.waitImport(id)
	requireImportSummary(t, imp)
	require.Equal(t, "coco.json", imp["source"])
	w.waitImported(t, "reviewed", 2)
	require.Equal(t, 3, w.count(t, `SELECT count(*) FROM annotations WHERE imported_id IS NOT NULL`))
}

// TestImportAPIAsProposals: as_proposals=true makes the annotations
// proposals of the import's model, for a reviewer, and no review.
func TestImportAPIAsProposals(t *testing.T) {
	t.Parallel()
	w := newDatasetWorld(t)
	a, b := importImages()
	id := w.admin.submitImport(
		importPart{"annotations", "label studio.json", importCOCO("")},
		importPart{"images", "a.jpg", a},
		importPart{"images", "b.jpg", b},
		importPart{field: "as_proposals", data: []byte("true")},
	)
	requireImportSummary(t, w.admin.waitImport(id))
	w.waitImported(t, "awaiting_review", 2)
	require.Equal(t, 3, w.count(t, `SELECT count(*) FROM proposals p JOIN models m ON m.id = p.model_id
		WHERE m.name = 'imported-label-studio.json'`))
	require.Zero(t, w.count(t, `SELECT count(*) FROM annotations`), "proposals, not a review")
}

// TestImportAPIRefuses: a reviewer gets 403; bad input gets 400 naming the
// field; nothing is stored or queued either way.
func TestImportAPIRefuses(t *testing.T) {
	t.Parallel()
	w := newDatasetWorld(t)
	a, _ := importImages()
	reviewer, _ := w.userWithRole(t, "rev@example.com", auth.RoleReviewer)
	res := reviewer.postImport(importPart{"annotations", "instances.json", importCOCO("")}, importPart{"images", "a.jpg", a})
	require.Equal(t, http.StatusForbidden, res.StatusCode, "%s", res.body)
	require.Equal(t, http.StatusForbidden, reviewer.get("/api/v1/imports/00000000-0000-0000-0000-000000000000").StatusCode)

	for _, tc := range []struct {
		name  string
		parts []importPart
		field string
	}{
		{"no annotations", []importPart{{"images", "a.jpg", a}}, "annotations"},
		{"bad JSON", []importPart{{"annotations", "instances.json", []byte(`{"images": [`)}, {"images", "a.jpg", a}}, "annotations"},
		{"not COCO", []importPart{{"annotations", "instances.json", []byte(`[1, 2]`)}, {"images", "a.jpg", a}}, "annotations"},
		{"no images", []importPart{{"annotations", "instances.json", importCOCO("")}}, "images"},
		{"not a zip", []importPart{{"archive", "dataset.zip", []byte("PK but not really")}}, "archive"},
		{"both", []importPart{{"annotations", "instances.json", importCOCO("")}, {"archive", "dataset.zip", a}}, "archive"},
		{"as_proposals", []importPart{{"annotations", "instances.json", importCOCO("")}, {"images", "a.jpg", a},
			{field: "as_proposals", data: []byte("maybe")}}, "as_proposals"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := w.admin.postImport(tc.parts...)
			require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s", res.body)
			e := res.json(t)["error"].(map[string]any)
			require.Equal(t, tc.field, e["field"], "%s", res.body)
		})
	}
	zipped := func(files map[string][]byte) []byte {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for name, data := range files {
			f, err := zw.Create(name)
			require.NoError(t, err)
			_, err = io.Copy(f, bytes.NewReader(data))
			require.NoError(t, err)
		}
		require.NoError(t, zw.Close())
		return buf.Bytes()
	}
	for name, files := range map[string]map[string][]byte{
		"zip without JSON":  {"images/a.jpg": a},
		"zip with bad JSON": {"coco.json": []byte("{"), "images/a.jpg": a},
	} {
		res := w.admin.postImport(importPart{"archive", "dataset.zip", zipped(files)})
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s: %s", name, res.body)
		require.Equal(t, "archive", res.json(t)["error"].(map[string]any)["field"], "%s", name)
	}
	require.Equal(t, http.StatusNotFound, w.admin.get("/api/v1/imports/00000000-0000-0000-0000-000000000000").StatusCode)
	require.Equal(t, http.StatusNotFound, w.admin.get("/api/v1/imports/nope").StatusCode)

	require.Zero(t, w.count(t, `SELECT count(*) FROM imports`))
	require.Zero(t, w.count(t, `SELECT count(*) FROM river_job WHERE kind = 'dataset_import'`))
	require.Zero(t, w.blobCount(t, "imports/"))
	require.Zero(t, w.count(t, `SELECT count(*) FROM images`))
}

// TestImportAPISurvivesARestart: an import accepted while no job runs
// waits in the blob store and the imports table, with no temporary file
// left behind, and another process's workers run it.
func TestImportAPISurvivesARestart(t *testing.T) {
	t.Parallel()
	w := newDatasetWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, w.server.river.Stop(ctx), "this process runs no more jobs")
	a, b := importImages()
	id := w.admin.submitImport(
		importPart{"annotations", "instances.json", importCOCO("")},
		importPart{"images", "a.jpg", a},
		importPart{"images", "b.jpg", b},
	)
	require.Equal(t, 3, w.blobCount(t, "imports/"))
	res := w.admin.get("/api/v1/imports/" + id)
	require.Equal(t, "queued", res.json(t)["import"].(map[string]any)["state"], "%s", res.body)
	tmp, err := os.ReadDir(filepath.Join(w.server.cfg.DataDir, "tmp"))
	require.NoError(t, err)
	require.Empty(t, tmp, "the spooled files are gone once stored")

	rc, err := jobs.NewClient(jobs.Deps{Pool: w.pool, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Blobs: w.blobs,
		Config: w.server.cfg}, jobs.Options{Work: true, More: []jobs.AddWorkers{importer.AddWorkers}})
	require.NoError(t, err)
	require.NoError(t, rc.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rc.StopAndCancel(ctx)
	})
	requireImportSummary(t, w.admin.waitImport(id))
	w.waitImported(t, "reviewed", 2)
	require.Equal(t, 3, w.count(t, `SELECT count(*) FROM annotations WHERE imported_id IS NOT NULL`))
	require.Zero(t, w.blobCount(t, "imports/"))
}

// TestImportAPICap: a body over IMPORT_MAX_BYTES is 413, with nothing
// stored and no temporary file left.
func TestImportAPICap(t *testing.T) {
	t.Parallel()
	tb := setup(t, func(c *config.Config) { c.ImportMaxBytes = 64 << 10 })
	admin, _ := tb.userWithRole(t, "admin@example.com", auth.RoleAdmin)
	big := imagingtest.JPEG(imagingtest.Photo(1024, 768, 9))
	require.Greater(t, len(big), 64<<10)
	res := admin.postImport(importPart{"annotations", "instances.json", importCOCO("")}, importPart{"images", "a.jpg", big})
	require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode, "%s", res.body)
	require.Zero(t, tb.count(t, `SELECT count(*) FROM imports`))
	require.Zero(t, tb.blobCount(t, "imports/"))
	tmp, err := os.ReadDir(filepath.Join(tb.server.cfg.DataDir, "tmp"))
	if !errors.Is(err, os.ErrNotExist) { // refused by its Content-Length, before any folder
		require.NoError(t, err)
	}
	require.Empty(t, tmp)

	// Without a Content-Length the stream is cut at the cap.
	body, ct := importBody(t, importPart{"annotations", "instances.json", importCOCO("")}, importPart{"images", "a.jpg", big})
	res = admin.do(http.MethodPost, "/api/v1/imports", io.MultiReader(body), http.Header{"Content-Type": {ct}})
	require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode, "%s", res.body)
	require.Zero(t, tb.count(t, `SELECT count(*) FROM imports`))
	tmp, err = os.ReadDir(filepath.Join(tb.server.cfg.DataDir, "tmp"))
	require.NoError(t, err)
	require.Empty(t, tmp)
}
