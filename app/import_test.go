package app

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/dataset/datasettest"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
	"github.com/deepimageshub/imagehub/importer"
	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/queries"
)

// unzipTo writes a zip's files under dir.
func unzipTo(t *testing.T, z zipEntries, dir string) {
	t.Helper()
	for _, name := range z.names {
		p := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, z.files[name], 0o644))
	}
}

// TestImportCOCORoundTrip: a COCO download of one hub, imported into a
// fresh hub (images through intake and ingest, annotations as their first
// review) and downloaded again, gives the same masks pixel for pixel. An
// interrupted run finishes when run again, a second run adds nothing, and
// bad rows are reported with their line and skipped.
func TestImportCOCORoundTrip(t *testing.T) {
	t.Parallel()
	a := newDatasetWorld(t)
	for i := range 6 {
		img := a.fx.Image(datasettest.ImageOpts{PNG: i == 2, W: 320 + 8*i, H: 240})
		ins := []datasettest.Instance{{Label: "cat", Mask: datasettest.Blob(img.W, img.H, 10+i, 20, 150, 200)}}
		if i%2 == 0 {
			ins = append(ins, datasettest.Instance{Label: "dog", Mask: datasettest.Box(img.W, img.H, 160, 30, 300, 230)})
		}
		sha := hex.EncodeToString(img.SHA)
		a.images[sha] = img
		a.anns[sha] = a.fx.Review(img, ins...)
	}
	id := a.createDataset(t, map[string]any{"name": "round trip"})
	a.publish(t, id)
	res := a.premium.get("/api/v1/datasets/" + id + "/versions/1/download?format=coco")
	require.Equal(t, 200, res.StatusCode)
	exported := openZip(t, res.body)
	dir := t.TempDir()
	unzipTo(t, exported, dir)

	b := newDatasetWorld(t)
	var adminID string
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT id FROM users WHERE email = 'admin@example.com'`).Scan(&adminID))
	im := &importer.Importer{Pool: b.pool, Intake: b.server.intake, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	run := func(ctx context.Context, file string) (importer.Summary, error) {
		f, err := os.Open(filepath.Join(dir, file))
		require.NoError(t, err)
		defer f.Close()
		var o importer.Options
		o.Source = filepath.Base(file)
		require.NoError(t, o.Importer.UnmarshalText([]byte(adminID)))
		if cancel, ok := ctx.Value(cancelKey{}).(context.CancelFunc); ok {
			o.Progress = func(n int) {
				if n == 2 {
					cancel()
				}
			}
		}
		return im.COCO(ctx, f, filepath.Join(dir, "images"), o)
	}

	total := 0
	var files []string
	for _, name := range exported.names {
		if strings.HasPrefix(name, "annotations/instances_") {
			files = append(files, name)
		}
	}
	require.NotEmpty(t, files)
	for i, file := range files {
		if i == 0 {
			// Cut short after two annotations, then run again to finish.
			ctx, cancel := context.WithCancel(context.Background())
			_, err := run(context.WithValue(ctx, cancelKey{}, cancel), file)
			require.True(t, errors.Is(err, context.Canceled), "%v", err)
			cancel()
		}
		sum, err := run(context.Background(), file)
		require.NoError(t, err)
		t.Logf("%s: %s", file, sum)
		require.Empty(t, sum.Problems, "%s: %v", file, sum.Problems)
		require.Equal(t, sum.Annotations, sum.Added+sum.Already, "%s: %s", file, sum)
		total += sum.Annotations
	}
	want := 0
	for _, anns := range a.anns {
		want += len(anns)
	}
	require.Equal(t, want, total, "every annotation was read")

	// Ingest accepts the images and applies their annotations.
	deadline := time.Now().Add(60 * time.Second)
	for {
		var reviewed, all int
		require.NoError(t, b.pool.QueryRow(context.Background(),
			`SELECT count(*) FILTER (WHERE status = 'reviewed'), count(*) FROM images`).Scan(&reviewed, &all))
		if reviewed == len(a.images) {
			break
		}
		require.True(t, time.Now().Before(deadline), "%d of %d images reviewed", reviewed, all)
		time.Sleep(100 * time.Millisecond)
	}

	// Again: nothing new.
	for _, file := range files {
		sum, err := run(context.Background(), file)
		require.NoError(t, err)
		require.Zero(t, sum.Added, "%s", sum)
		require.Equal(t, sum.Annotations, sum.Already)
		require.Zero(t, sum.ImagesCreated)
	}
	var staged, applied int
	require.NoError(t, b.pool.QueryRow(context.Background(),
		`SELECT count(*), count(applied_at) FROM imported_annotations`).Scan(&staged, &applied))
	require.Equal(t, want, staged)
	require.Equal(t, want, applied)

	// Provenance: source file, importer, original id.
	var imgID uuid.UUID
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT id FROM images LIMIT 1`).Scan(&imgID))
	prov, err := queries.New().AnnotationProvenance(context.Background(), b.pool, imgID)
	require.NoError(t, err)
	require.NotEmpty(t, prov)
	for _, r := range prov {
		require.True(t, strings.HasPrefix(r.Source, "instances_"), r.Source)
		require.Equal(t, adminID, r.ImporterID.String())
		require.NotEmpty(t, r.OriginalID)
	}

	// Downloaded from the second hub: the same masks, pixel for pixel,
	// matched by the file name each image was imported under.
	id2 := b.createDataset(t, map[string]any{"name": "round trip"})
	b.publish(t, id2)
	res = b.premium.get("/api/v1/datasets/" + id2 + "/versions/1/download?format=coco")
	require.Equal(t, 200, res.StatusCode)
	c := openZip(t, res.body).coco(t)
	names := map[string]string{} // sha256 in b → file name (sha256 in a)
	r2, err := b.pool.Query(context.Background(), `SELECT encode(sha256, 'hex'), filename FROM images`)
	require.NoError(t, err)
	for r2.Next() {
		var sha, name string
		require.NoError(t, r2.Scan(&sha, &name))
		names[sha] = strings.TrimSuffix(name, filepath.Ext(name))
	}
	require.NoError(t, r2.Err())
	cats := map[int]string{}
	for _, cat := range c.Categories {
		cats[cat.ID] = cat.Name
	}
	byImage := map[int]string{}
	for _, img := range c.Images {
		byImage[img.ID] = names[img.SHA256]
	}
	require.Len(t, c.Images, len(a.images))
	seen := map[string]int{}
	for _, ann := range c.Annotations {
		orig := byImage[ann.ImageID]
		wantAnn := a.anns[orig][seen[orig]]
		seen[orig]++
		require.Equal(t, wantAnn.Label, cats[ann.CategoryID])
		got, err := ann.Segmentation.RLE.Decode()
		require.NoError(t, err)
		stored, err := wantAnn.RLE.Decode()
		require.NoError(t, err)
		require.Equal(t, stored.Pix, got.Pix, "annotation %d of %s", ann.ID, orig)
	}
	require.Len(t, c.Annotations, want)

	// Bad rows: an unknown label and a missing image are reported with
	// their line; the good row is staged, and skipped since its image was
	// reviewed before.
	var first struct {
		name string
		img  datasettest.Image
	}
	for sha, img := range a.images {
		first.name, first.img = sha+"."+map[string]string{"image/jpeg": "jpg", "image/png": "png"}[img.ContentType], img
		break
	}
	bad := fmt.Sprintf(`{"images": [{"id": 1, "file_name": "nowhere.jpg", "width": 320, "height": 240},
 {"id": 2, "file_name": %q, "width": %d, "height": %d}],
"categories": [{"id": 1, "name": "unicorn"}, {"id": 2, "name": "cat"}],
"annotations": [
 {"id": 10, "image_id": 1, "category_id": 2, "segmentation": [[1, 1, 50, 1, 50, 50]]},
 {"id": 11, "image_id": 2, "category_id": 1, "segmentation": [[1, 1, 50, 1, 50, 50]]},
 {"id": 12, "image_id": 2, "category_id": 2, "segmentation": [[1, 1, 50, 1, 50, 50]]}
]}`, first.name, first.img.W, first.img.H)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.json"), []byte(bad), 0o644))
	sum, err := run(context.Background(), "bad.json")
	require.NoError(t, err)
	t.Logf("bad.json: %s: %v", sum, sum.Problems)
	require.Len(t, sum.Problems, 3, "%v", sum.Problems)
	require.Equal(t, 5, sum.Problems[0].Line)
	require.Contains(t, sum.Problems[0].What, "nowhere.jpg")
	require.Equal(t, 6, sum.Problems[1].Line)
	require.Contains(t, sum.Problems[1].What, "unicorn")
	require.Contains(t, sum.Problems[2].What, "reviewed already", "an image reviewed before keeps its review")
	require.Equal(t, 1, sum.Added)
}

type cancelKey struct{}

// TestImportOpenImagesMasks: Open Images object segmentations come in with
// their masks scaled to the image (nearest neighbour); bad rows are
// reported with their line and skipped; a second run adds nothing.
func TestImportOpenImagesMasks(t *testing.T) {
	t.Parallel()
	w := newDatasetWorld(t)
	_, err := w.pool.Exec(context.Background(), `UPDATE labels SET external_id = '/m/01yrx' WHERE name = 'cat'`)
	require.NoError(t, err)
	var adminID uuid.UUID
	require.NoError(t, w.pool.QueryRow(context.Background(), `SELECT id FROM users WHERE email = 'admin@example.com'`).Scan(&adminID))
	dir := t.TempDir()
	images, masks := filepath.Join(dir, "images"), filepath.Join(dir, "masks")
	require.NoError(t, os.MkdirAll(filepath.Join(masks, "0"), 0o755))
	require.NoError(t, os.MkdirAll(images, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(images, "0a1b.jpg"), imagingtest.JPEG(imagingtest.Photo(400, 300, 91)), 0o644))
	small := datasettest.Blob(200, 150, 20, 30, 120, 140) // half the image's resolution
	png, err := small.PNG()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(masks, "0", "0a1b_m01yrx_1.png"), png, 0o644))
	csvPath := filepath.Join(dir, "train-annotations-object-segmentation.csv")
	require.NoError(t, os.WriteFile(csvPath, []byte(
		"MaskPath,ImageID,LabelName,BoxID,BoxXMin,BoxXMax,BoxYMin,BoxYMax,PredictedIoU,Clicks\n"+
			"0/0a1b_m01yrx_1.png,0a1b,/m/01yrx,1,0.1,0.6,0.2,0.9,0.8,\n"+
			"0/0a1b_m0bt9lr_2.png,0a1b,/m/0bt9lr,2,0.1,0.6,0.2,0.9,0.8,\n"+
			"0/missing.png,0a1b,/m/01yrx,3,0.1,0.6,0.2,0.9,0.8,\n"+
			"0/short.png,0a1b\n"), 0o644))
	im := &importer.Importer{Pool: w.pool, Intake: w.server.intake, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	run := func() importer.Summary {
		f, err := os.Open(csvPath)
		require.NoError(t, err)
		defer f.Close()
		sum, err := im.OpenImages(context.Background(), f, masks, images, importer.Options{Source: filepath.Base(csvPath), Importer: adminID})
		require.NoError(t, err)
		return sum
	}
	sum := run()
	require.Equal(t, 1, sum.Added, "%s", sum)
	var lines []int
	for _, p := range sum.Problems {
		lines = append(lines, p.Line)
	}
	require.Equal(t, []int{3, 4, 5}, lines, "%v", sum.Problems)
	require.Contains(t, sum.Problems[0].What, `"/m/0bt9lr" is not in the taxonomy`)
	require.Contains(t, sum.Problems[1].What, "missing.png")

	deadline := time.Now().Add(60 * time.Second)
	var counts string
	for {
		err := w.pool.QueryRow(context.Background(), `
			SELECT a.counts FROM annotations a JOIN imported_annotations ia ON ia.id = a.imported_id
			WHERE ia.original_id = '0/0a1b_m01yrx_1.png'`).Scan(&counts)
		if err == nil {
			break
		}
		require.True(t, time.Now().Before(deadline), "the mask was never applied: %v", err)
		time.Sleep(50 * time.Millisecond)
	}
	require.Equal(t, mask.Encode(small.Scale(400, 300)).Counts, counts, "the mask scaled to the image, nearest neighbour")
	require.Zero(t, run().Added, "a second run adds nothing")
}

// TestImportAsProposals: with AsProposals the annotations become proposals
// of a model named for the source, and the image waits for a reviewer,
// who gets them from review/next like a model's.
func TestImportAsProposals(t *testing.T) {
	t.Parallel()
	w := newDatasetWorld(t)
	var adminID uuid.UUID
	require.NoError(t, w.pool.QueryRow(context.Background(), `SELECT id FROM users WHERE email = 'admin@example.com'`).Scan(&adminID))
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "p.jpg"), imagingtest.JPEG(imagingtest.Photo(400, 300, 93)), 0o644))
	coco := `{"images": [{"id": 7, "file_name": "p.jpg", "width": 400, "height": 300}],
"categories": [{"id": 1, "name": "dog"}],
"annotations": [{"id": 70, "image_id": 7, "category_id": 1, "segmentation": [[20, 20, 220, 20, 220, 200, 20, 200]]},
                {"id": 71, "image_id": 7, "category_id": 1, "segmentation": [[250, 30, 390, 30, 390, 290]]}]}`
	im := &importer.Importer{Pool: w.pool, Intake: w.server.intake, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	sum, err := im.COCO(context.Background(), strings.NewReader(coco), dir,
		importer.Options{Source: "label studio export.json", Importer: adminID, AsProposals: true})
	require.NoError(t, err)
	require.Equal(t, 2, sum.Added, "%s", sum)

	deadline := time.Now().Add(60 * time.Second)
	for count := 0; count == 0; {
		require.NoError(t, w.pool.QueryRow(context.Background(), `SELECT count(*) FROM images WHERE status = 'awaiting_review'`).Scan(&count))
		require.True(t, time.Now().Before(deadline), "the image never waited for review")
		time.Sleep(50 * time.Millisecond)
	}
	var model string
	var proposals int
	require.NoError(t, w.pool.QueryRow(context.Background(), `
		SELECT m.name, count(*) FROM proposals p JOIN models m ON m.id = p.model_id GROUP BY m.name`).Scan(&model, &proposals))
	require.Equal(t, "imported-label-studio-export.json", model)
	require.Equal(t, 2, proposals)
	var annotations int
	require.NoError(t, w.pool.QueryRow(context.Background(), `SELECT count(*) FROM annotations`).Scan(&annotations))
	require.Zero(t, annotations, "proposals, not a review")
	// The imported proposals count in the insights as any model's do.
	requireSummariesMatch(t, w.testBundle, "imported as proposals")
	require.Equal(t, 2, w.count(t, "SELECT sum(n)::int FROM proposal_summary_now"))

	reviewer, _ := w.userWithRole(t, "rev@example.com", "reviewer")
	res := reviewer.json("POST", "/api/v1/review/next", map[string]any{})
	require.Equal(t, 200, res.StatusCode, "%s", res.body)
	props := res.json(t)["proposals"].([]any)
	require.Len(t, props, 2)
	require.Equal(t, "dog", props[0].(map[string]any)["label"])
}
