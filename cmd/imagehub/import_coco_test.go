package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/dbtest"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
	"github.com/deepimageshub/imagehub/mask"
)

// TestImportCOCOCommand: imagehub import --coco takes the images in, reports
// a bad row with its line, prints a summary, adds nothing when run again,
// and serve's ingest turns the annotations into the images' first reviews.
func TestImportCOCOCommand(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewURL(t)
	vars := map[string]string{"DATABASE_URL": dbURL, "DATA_DIR": t.TempDir(), "BUILTIN_WORKER": "false"}
	_, errOut, err := runCmd(t, vars, "migrate")
	require.NoError(t, err, errOut)
	_, errOut, err = runCmdInput(t, vars, "a long password\n", "users", "create", "--email", "admin@example.com", "--role", "admin")
	require.NoError(t, err, errOut)

	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "img"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "img", "a.jpg"), imagingtest.JPEG(imagingtest.Photo(400, 300, 71)), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "img", "b.png"), imagingtest.PNG(imagingtest.Photo(320, 240, 72)), 0o644))
	coco := filepath.Join(dir, "instances_default.json")
	require.NoError(t, os.WriteFile(coco, []byte(`{
"images": [{"id": 1, "file_name": "img/a.jpg", "width": 400, "height": 300},
           {"id": 2, "file_name": "img/b.png", "width": 320, "height": 240}],
"categories": [{"id": 3, "name": "cat"}, {"id": 4, "name": "dog"}],
"annotations": [
  {"id": 100, "image_id": 1, "category_id": 3, "segmentation": [[10, 10, 200, 10, 200, 150, 10, 150]]},
  {"id": 101, "image_id": 2, "category_id": 4, "segmentation": {"size": [240, 320], "counts": [0, 100, 76700]}},
  {"id": 102, "image_id": 2, "category_id": 9, "segmentation": [[1, 1, 9, 1, 9, 9]]}
]}`), 0o644))

	out, errOut, err := runCmd(t, vars, "import", "--quiet", "--coco", coco, dir)
	require.NoError(t, err, errOut)
	require.Contains(t, out, "images: 2 (2 new, 0 already here, 0 refused); annotations: 2 read, 2 added, 0 imported before", errOut)
	require.Contains(t, errOut, "skipped line 8: annotation 102 has category 9")
	out, errOut, err = runCmd(t, vars, "import", "--quiet", "--coco", coco, dir)
	require.NoError(t, err, errOut)
	require.Contains(t, out, "annotations: 2 read, 0 added, 2 imported before", "a second run adds nothing")

	// Open Images masks: a mask at another resolution, scaled.
	oi := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "0c0d.jpg"), imagingtest.JPEG(imagingtest.Photo(300, 200, 73)), 0o644))
	m := mask.NewBitmap(150, 100)
	for y := 10; y < 60; y++ {
		for x := 20; x < 80; x++ {
			m.Set(x, y, true)
		}
	}
	data, err := m.PNG()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(oi, "0c0d_m01yrx_1.png"), data, 0o644))
	csvPath := filepath.Join(oi, "masks.csv")
	require.NoError(t, os.WriteFile(csvPath, []byte("MaskPath,ImageID,LabelName,BoxID,BoxXMin,BoxXMax,BoxYMin,BoxYMax,PredictedIoU,Clicks\n"+
		"0c0d_m01yrx_1.png,0c0d,/m/01yrx,1,0,1,0,1,1,\n"), 0o644))
	classes := filepath.Join(oi, "classes.csv")
	require.NoError(t, os.WriteFile(classes, []byte("/m/01yrx,Cat\n"), 0o644))
	_, errOut, err = runCmd(t, vars, "labels", "import", classes)
	require.NoError(t, err, errOut)
	out, errOut, err = runCmd(t, vars, "import", "--quiet", "--oi-masks", csvPath, dir)
	require.NoError(t, err, errOut)
	require.Contains(t, out, "annotations: 1 read, 1 added", errOut)

	pool, err := pgxpool.New(context.Background(), dbURL)
	require.NoError(t, err)
	defer pool.Close()
	srv := startServer(t, vars)
	deadline := time.Now().Add(60 * time.Second)
	for count(t, pool, "SELECT count(*) FROM images WHERE status = 'reviewed'") < 3 {
		require.True(t, time.Now().Before(deadline), "images not reviewed\n%s", srv.logs)
		time.Sleep(50 * time.Millisecond)
	}
	require.Equal(t, 2, count(t, pool, "SELECT count(*) FROM annotations a JOIN imported_annotations ia ON ia.id = a.imported_id WHERE ia.source = 'instances_default.json'"))
	require.Equal(t, 120*100, count(t, pool, "SELECT area FROM annotations a JOIN imported_annotations ia ON ia.id = a.imported_id WHERE ia.source = 'masks.csv'"),
		"the Open Images mask scaled to the image")
	require.Equal(t, 190*140, count(t, pool, "SELECT area FROM annotations a JOIN imported_annotations ia ON ia.id = a.imported_id WHERE ia.original_id = '100'"),
		"the polygon rasterised as the COCO API does")
	require.Equal(t, 100, count(t, pool, "SELECT area FROM annotations a JOIN labels l ON l.id = a.label_id WHERE l.name = 'dog'"))
}
