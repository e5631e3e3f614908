package dataset_test

import (
	"context"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/dataset"
	"github.com/deepimageshub/imagehub/dataset/datasettest"
	"github.com/deepimageshub/imagehub/dbtest"
	"github.com/deepimageshub/imagehub/queries"
)

func benchOwner(b *testing.B, pool *pgxpool.Pool) uuid.UUID {
	b.Helper()
	var id uuid.UUID
	if err := pool.QueryRow(context.Background(), `
		INSERT INTO users (email, name, password_hash, role) VALUES ('bench@example.com', 'Bench', 'x', 'admin') RETURNING id`).Scan(&id); err != nil {
		b.Fatal(err)
	}
	return id
}

func benchPublish(b *testing.B, pool *pgxpool.Pool, d queries.Dataset, by uuid.UUID) (dataset.Version, time.Duration) {
	b.Helper()
	ctx := context.Background()
	var v queries.DatasetVersion
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var err error
		v, err = dataset.NewVersion(ctx, tx, d.ID, by)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if v, err = dataset.Publish(ctx, pool, nil, v.ID); err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	ver, err := dataset.LoadVersion(ctx, pool, v)
	if err != nil {
		b.Fatal(err)
	}
	return ver, took
}

// BenchmarkDatasetPublish publishes a version of one million reviewed
// images (about two million annotations, 5% near-duplicates), then the
// next version after 1% of the images were reviewed again and 1% more
// were added: the same work plus a diff against a million rows.
func BenchmarkDatasetPublish(b *testing.B) {
	const n = 1_000_000
	pool := dbtest.NewPool(b)
	owner := benchOwner(b, pool)
	start := time.Now()
	datasettest.BulkRows(b, pool, owner, 0, n)
	b.Logf("loaded %d images in %s", n, time.Since(start).Round(time.Second))
	d, err := dataset.Create(context.Background(), pool, dataset.Spec{Name: "bench"}, owner)
	if err != nil {
		b.Fatal(err)
	}
	var first, second time.Duration
	var v1, v2 dataset.Version
	added := 0
	for b.Loop() {
		v1, first = benchPublish(b, pool, d, owner)
		b.StopTimer()
		datasettest.Rereview(b, pool, n/100)
		datasettest.BulkRows(b, pool, owner, n+added, n/100)
		added += n / 100
		b.StartTimer()
		v2, second = benchPublish(b, pool, d, owner)
	}
	if v1.Images < n || v2.Changed != n/100 || v2.Added != n/100 {
		b.Fatalf("version 1 has %d images; version 2 added %d and changed %d", v1.Images, v2.Added, v2.Changed)
	}
	b.ReportMetric(first.Seconds(), "s/publish-1M")
	b.ReportMetric(second.Seconds(), "s/publish-1M+diff")
	b.ReportMetric(float64(v1.Images)/first.Seconds(), "images/s")
}

// timeTar reads the same files with tar as reference: GNU tar skips reading
// files when its output is /dev/null, so its output goes through a pipe to
// be counted and dropped, as the zip is.
func timeTar(b *testing.B, dir string) (time.Duration, int64) {
	b.Helper()
	cmd := exec.Command("tar", "-cf", "-", "-C", dir, "images")
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	n, err := io.Copy(io.Discard, out)
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start), n
}

// resetPeakRSS starts a new peak of the process's resident memory (Linux:
// writing 5 to clear_refs resets VmHWM), so each format reports its own.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS is the process's peak resident memory since resetPeakRSS, in MB
// (0 where /proc does not say).
func peakRSS() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

// BenchmarkDatasetExport writes the zip of a version of 2 GiB of images
// (8192 of 256 KiB, 640×480, two annotations each on average; 256 images
// with -short) in each format into a pipe whose reader drops it, and beside
// it tar of the same files into a pipe too, both from the page cache: each
// format's throughput in MB/s, tar's, their ratio, and the process's peak
// resident memory while the format was written.
func BenchmarkDatasetExport(b *testing.B) {
	n, size := 8192, 256<<10
	if testing.Short() {
		n = 256
	}
	pool := dbtest.NewPool(b)
	owner := benchOwner(b, pool)
	dir := b.TempDir()
	blobs, err := blob.NewFS(dir)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	total := datasettest.BulkFiles(b, pool, owner, dir, n, size)
	d, err := dataset.Create(context.Background(), pool, dataset.Spec{Name: "bench"}, owner)
	if err != nil {
		b.Fatal(err)
	}
	v, _ := benchPublish(b, pool, d, owner)
	b.Logf("wrote %d MB of images and published them in %s", total/1e6, time.Since(start).Round(time.Second))

	tarTime, tarBytes := timeTar(b, dir) // warms the page cache
	for range 2 {
		t, _ := timeTar(b, dir)
		tarTime = min(tarTime, t)
	}
	tarMBps := float64(tarBytes) / tarTime.Seconds() / 1e6
	ex := &dataset.Exporter{DB: pool, Blobs: blobs}
	for _, f := range []struct {
		name string
		sub  dataset.Subset
	}{
		{"coco", dataset.Subset{Format: dataset.COCO}},
		{"coco-polygon", dataset.Subset{Format: dataset.COCO, MaskFormat: dataset.MaskPolygon}},
		{"yolo", dataset.Subset{Format: dataset.YOLO}},
		{"voc", dataset.Subset{Format: dataset.VOC}},
		{"png", dataset.Subset{Format: dataset.PNG}},
	} {
		b.Run(f.name, func(b *testing.B) {
			resetPeakRSS()
			var zipTime time.Duration
			var zipBytes int64
			for b.Loop() {
				// Like tar's, the zip goes through a pipe to a reader that drops it.
				r, w, err := os.Pipe()
				if err != nil {
					b.Fatal(err)
				}
				read := make(chan int64)
				go func() {
					n, _ := io.Copy(io.Discard, r)
					read <- n
				}()
				t0 := time.Now()
				st, err := ex.Write(context.Background(), w, v, f.sub)
				w.Close()
				zipBytes += <-read
				zipTime += time.Since(t0)
				r.Close()
				if err != nil {
					b.Fatal(err)
				}
				if st.ImageBytes != total {
					b.Fatalf("exported %d bytes of images, want %d", st.ImageBytes, total)
				}
			}
			zipMBps := float64(zipBytes) / zipTime.Seconds() / 1e6
			b.ReportMetric(zipMBps, "MB/s")
			b.ReportMetric(tarMBps, "tar-MB/s")
			b.ReportMetric(zipMBps/tarMBps, "x-tar")
			b.ReportMetric(peakRSS(), "peak-RSS-MB")
		})
	}
}
