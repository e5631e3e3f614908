package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/dbtest"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
)

func count(t testing.TB, pool *pgxpool.Pool, sql string) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), sql).Scan(&n))
	return n
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".tmp-") {
			n++
		}
		return nil
	})
	return n
}

// TestImportThenKillDuringIngest imports a folder in the Open Images layout,
// re-runs the import (everything is skipped), then kills `imagehub serve`
// with SIGKILL while ingest jobs run. After a restart every image is ingested
// exactly once: no duplicate rows, no missing or stray files.
func TestImportThenKillDuringIngest(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewURL(t)
	dataDir := t.TempDir()
	// Inference is tested on its own (dispatch_test.go): here images stop
	// at awaiting_inference.
	vars := map[string]string{"DATABASE_URL": dbURL, "DATA_DIR": dataDir, "BUILTIN_WORKER": "false"}
	_, errOut, err := runCmd(t, vars, "migrate")
	require.NoError(t, err, errOut)
	_, errOut, err = runCmdInput(t, vars, "a long password\n", "users", "create", "--email", "admin@example.com", "--role", "admin")
	require.NoError(t, err, errOut)

	const n = 30
	dir := t.TempDir()
	var labels strings.Builder
	labels.WriteString("ImageID,Source,LabelName,Confidence\n")
	for i := range n {
		id := fmt.Sprintf("%016x", 0xab00+i)
		require.NoError(t, os.WriteFile(filepath.Join(dir, id+".jpg"), imagingtest.JPEG(imagingtest.Photo(800, 600, uint64(1000+i))), 0o644))
		fmt.Fprintf(&labels, "%s,verification,/m/01yrx,1\n%s,verification,/m/0bt9lr,0\n", id, id)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a photo"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cut.jpg"), imagingtest.JPEG(imagingtest.Photo(400, 300, 1))[:3000], 0o644))
	csvDir := t.TempDir()
	classes := filepath.Join(csvDir, "classes.csv")
	require.NoError(t, os.WriteFile(classes, []byte("/m/01yrx,Cat\n/m/0bt9lr,Dog\n/m/0199g,Bicycle wheel\n"), 0o644))
	imageLabels := filepath.Join(csvDir, "labels.csv")
	require.NoError(t, os.WriteFile(imageLabels, []byte(labels.String()), 0o644))

	out, errOut, err := runCmd(t, vars, "import", "--quiet", "--classes-csv", classes, "--labels-csv", imageLabels, dir)
	require.NoError(t, err, errOut)
	require.Contains(t, out, fmt.Sprintf("%d created, 0 already stored, 2 refused", n), errOut)
	require.Contains(t, errOut, "notes.txt")
	require.Contains(t, errOut, "cut.jpg")
	require.Contains(t, errOut, "labels: 1 added, 2 updated")

	out, errOut, err = runCmd(t, vars, "import", "--quiet", dir)
	require.NoError(t, err, errOut)
	require.Contains(t, out, fmt.Sprintf("0 created, %d already stored, 2 refused", n), "a second run skips what exists")

	pool, err := pgxpool.New(context.Background(), dbURL)
	require.NoError(t, err)
	defer pool.Close()
	require.Equal(t, n, count(t, pool, "SELECT count(*) FROM images"))
	require.Equal(t, n, count(t, pool, "SELECT count(*) FROM image_labels il JOIN labels l ON l.id = il.label_id WHERE l.name = 'cat'"))
	require.Equal(t, 0, count(t, pool, "SELECT count(*) FROM image_labels il JOIN labels l ON l.id = il.label_id WHERE l.name = 'dog'"), "confidence 0 means absent")
	require.Equal(t, n, countFiles(t, filepath.Join(dataDir, "blobs", "uploads")))

	// Serve, and kill it hard while ingest jobs are running.
	vars["JOB_TIMEOUT"] = "2s"
	vars["JOB_RESCUE_AFTER"] = "2s"
	srv := startServer(t, vars)
	deadline := time.Now().Add(60 * time.Second)
	for count(t, pool, "SELECT count(*) FROM river_job WHERE kind = 'ingest' AND state = 'running'") == 0 {
		require.True(t, time.Now().Before(deadline), "no ingest job ever ran\n%s", srv.logs)
		time.Sleep(2 * time.Millisecond)
	}
	require.NoError(t, srv.cmd.Process.Kill())
	<-srv.done
	done := count(t, pool, "SELECT count(*) FROM images WHERE status = 'awaiting_inference'")
	require.Less(t, done, n, "the kill came before ingest finished")

	srv = startServer(t, vars)
	deadline = time.Now().Add(90 * time.Second)
	// Jobs the dead process held are rescued after JOB_RESCUE_AFTER and
	// retried after a back-off; wait for them as well as for the images.
	for count(t, pool, "SELECT count(*) FROM images WHERE status = 'awaiting_inference'") < n ||
		count(t, pool, "SELECT count(*) FROM river_job WHERE kind = 'ingest' AND state <> 'completed'") > 0 {
		require.True(t, time.Now().Before(deadline), "ingest did not finish after restart: %d of %d\n%s",
			count(t, pool, "SELECT count(*) FROM images WHERE status = 'awaiting_inference'"), n, srv.logs)
		time.Sleep(100 * time.Millisecond)
	}
	require.Equal(t, n, count(t, pool, "SELECT count(*) FROM images"), "no duplicate rows")
	require.Equal(t, n, count(t, pool, "SELECT count(DISTINCT sha256) FROM images"))
	require.Equal(t, n, countFiles(t, filepath.Join(dataDir, "blobs", "images")))
	require.Equal(t, 2*n, countFiles(t, filepath.Join(dataDir, "blobs", "thumbs")))
	require.Equal(t, 0, countFiles(t, filepath.Join(dataDir, "blobs", "uploads")), "upload bytes are gone once ingested")
	require.Equal(t, 0, count(t, pool, "SELECT count(*) FROM river_job WHERE kind = 'ingest' AND state <> 'completed'"))
}
