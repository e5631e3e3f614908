package labelimport_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/dbtest"
	"github.com/deepimageshub/imagehub/labelimport"
	"github.com/deepimageshub/imagehub/openimages"
)

func owner(tb testing.TB, pool *pgxpool.Pool) uuid.UUID {
	tb.Helper()
	var id uuid.UUID
	require.NoError(tb, pool.QueryRow(context.Background(), `
		INSERT INTO users (email, name, password_hash, role) VALUES ('importer@example.com', 'Importer', 'x', 'admin') RETURNING id`).Scan(&id))
	return id
}

// seedImages stores n images by their rows only (no bytes), keyed
// img000001…; the label import needs nothing else of them.
func seedImages(tb testing.TB, pool *pgxpool.Pool, by uuid.UUID, n int) []labelimport.Image {
	tb.Helper()
	rows, err := pool.Query(context.Background(), `
		INSERT INTO images (id, upload_sha256, owner_id, filename, content_type, byte_size, width, height)
		SELECT md5('li' || i)::uuid, sha256(int8send(i)), $1, 'img' || lpad(i::text, 6, '0') || '.jpg', 'image/jpeg', 1000, 640, 480
		FROM generate_series(1, $2::int) i
		RETURNING id, split_part(filename, '.', 1)`, by, n)
	require.NoError(tb, err)
	imgs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (labelimport.Image, error) {
		var im labelimport.Image
		err := r.Scan(&im.ID, &im.Key)
		return im, err
	})
	require.NoError(tb, err)
	return imgs
}

// imageLabels lists image_labels as "key mid" pairs, sorted.
func imageLabels(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
		SELECT split_part(i.filename, '.', 1) || ' ' || l.external_id AS pair FROM image_labels il
		JOIN images i ON i.id = il.image_id JOIN labels l ON l.id = il.label_id`)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	sort.Strings(out) // byte order, as Go sorts the expected pairs
	return out
}

func stage(t *testing.T, pool *pgxpool.Pool, csv string) (*labelimport.Staged, error) {
	t.Helper()
	return labelimport.Stage(context.Background(), pool, strings.NewReader(csv))
}

// The staged import gives the labels the in-memory reading gave (each
// image in the run gets its rows' MIDs found in the taxonomy), skips
// confidence 0, unknown MIDs and images not in the run, refuses a bad row
// by its line with nothing written, and adds nothing when run again.
func TestStagedLabelsMatchInMemory(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	by := owner(t, pool)
	_, _, err := labelimport.Classes(ctx, pool, []openimages.Class{{MID: "/m/01yrx", DisplayName: "Cat"}, {MID: "/m/0bt9lr", DisplayName: "Dog"}, {MID: "/m/0199g", DisplayName: "Bicycle wheel"}})
	require.NoError(t, err)
	imgs := seedImages(t, pool, by, 4)
	run := imgs[:3] // img000004 is stored but not in this run

	const good = "Source,ImageID,Confidence,LabelName\n" + // columns in any order
		"verification,img000001,1,/m/01yrx\n" +
		"verification,img000001,0,/m/0bt9lr\n" + // verified absent
		"crowdsource,img000001,0.6,/m/0199g\n" +
		"verification,img000001,1,/m/01yrx\n" + // twice
		"verification,img000002,1,/m/0bt9lr\n" +
		"verification,img000002,1,/m/999zz\n" + // not in the taxonomy
		"verification,img000004,1,/m/01yrx\n" + // not in the run
		"verification,nosuchimage,1,/m/01yrx\n"

	// The labels as the in-memory path computed them.
	mids, err := openimages.ReadImageLabels(strings.NewReader(good))
	require.NoError(t, err)
	known := map[string]bool{"/m/01yrx": true, "/m/0bt9lr": true, "/m/0199g": true}
	seen := map[string]bool{}
	var want []string
	for _, im := range run {
		for _, m := range mids[im.Key] {
			if p := im.Key + " " + m; known[m] && !seen[p] {
				seen[p] = true
				want = append(want, p)
			}
		}
	}
	sort.Strings(want)
	require.Equal(t, []string{"img000001 /m/0199g", "img000001 /m/01yrx", "img000002 /m/0bt9lr"}, want)

	for _, bad := range []struct{ csv, line string }{
		{good + "verification,img000003,high,/m/01yrx\n", "line 10"},
		{good + "verification,img000003,1\n", "line 10"},
		{good + "verification,,1,/m/01yrx\n", "line 10"},
		{"ImageID,Source,LabelName\nimg000001,x,/m/01yrx\n", "no Confidence column"},
	} {
		s, err := stage(t, pool, bad.csv)
		require.Error(t, err)
		require.Nil(t, s)
		require.Contains(t, err.Error(), bad.line)
	}
	require.Empty(t, imageLabels(t, pool), "a bad file changes nothing")

	for run1 := range 2 {
		s, err := stage(t, pool, good)
		require.NoError(t, err)
		require.EqualValues(t, 7, s.Rows)
		require.EqualValues(t, 1, s.UnknownMIDs)
		added, err := s.Apply(ctx, run, by)
		s.Close()
		require.NoError(t, err)
		require.Equal(t, want, imageLabels(t, pool))
		if run1 == 0 {
			require.EqualValues(t, 3, added)
		} else {
			require.EqualValues(t, 0, added, "a second run adds nothing")
		}
	}
}

// Classes keeps the per-row import's rules: a known MID updates the display
// name only, another class upserts by name taking the MID, last row wins.
func TestClasses(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	added, updated, err := labelimport.Classes(ctx, pool, []openimages.Class{
		{MID: "/m/0dzct", DisplayName: "Human face"}, // new
		{MID: "/m/01yrx", DisplayName: "Cat"},        // "cat" is a seeded COCO label without a MID
		{MID: "/m/x1", DisplayName: "Thing"},
		{MID: "/m/x2", DisplayName: "Thing"}, // the same name again: last wins
	})
	require.NoError(t, err)
	require.EqualValues(t, 2, added)
	require.EqualValues(t, 1, updated)
	var mid, display string
	require.NoError(t, pool.QueryRow(ctx, `SELECT external_id, display_name FROM labels WHERE name = 'thing'`).Scan(&mid, &display))
	require.Equal(t, "/m/x2", mid)
	require.NoError(t, pool.QueryRow(ctx, `SELECT external_id FROM labels WHERE name = 'cat'`).Scan(&mid))
	require.Equal(t, "/m/01yrx", mid)

	added, updated, err = labelimport.Classes(ctx, pool, []openimages.Class{{MID: "/m/01yrx", DisplayName: "Domestic cat"}, {MID: "/m/0dzct", DisplayName: "Human face"}})
	require.NoError(t, err)
	require.EqualValues(t, 0, added)
	require.EqualValues(t, 2, updated)
	require.NoError(t, pool.QueryRow(ctx, `SELECT display_name FROM labels WHERE name = 'cat'`).Scan(&display))
	require.Equal(t, "Domestic cat", display, "a known MID keeps its name and takes the display name")

	var before int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM labels`).Scan(&before))
	_, _, err = labelimport.Classes(ctx, pool, []openimages.Class{{MID: "/m/ok", DisplayName: "Fine"}, {MID: "/m/bad", DisplayName: "Ünïcode!"}})
	require.ErrorContains(t, err, "/m/bad")
	var after int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM labels`).Scan(&after))
	require.Equal(t, before, after, "a bad class refuses the whole file")
}

// writeLabelsCSV writes n label rows over the images keyed img000001…
// (ten a image) and the classes /m/c0…, one row in ten a confidence 0 and
// one in a thousand an unknown class, streamed to a file so the test's own
// memory stays small.
func writeLabelsCSV(tb testing.TB, n, images, classes int) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "labels.csv")
	f, err := os.Create(p)
	require.NoError(tb, err)
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintln(w, "ImageID,Source,LabelName,Confidence")
	for i := range n {
		conf := "1"
		if i%10 == 9 {
			conf = "0"
		}
		mid := fmt.Sprintf("/m/c%d", (i*7919)%classes)
		if i%1000 == 999 {
			mid = "/m/unknown"
		}
		fmt.Fprintf(w, "img%06d,verification,%s,%s\n", 1+(i/10)%images, mid, conf)
	}
	require.NoError(tb, w.Flush())
	require.NoError(tb, f.Close())
	return p
}

func genClasses(n int) []openimages.Class {
	cs := make([]openimages.Class, n)
	for i := range cs {
		cs[i] = openimages.Class{MID: fmt.Sprintf("/m/c%d", i), DisplayName: fmt.Sprintf("Class %d", i)}
	}
	return cs
}

// peakHeap samples the live heap every few milliseconds until stop is
// called, and returns the highest value seen in bytes.
func peakHeap() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		defer wg.Done()
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak.Load()
	}
}

// importFile stages and applies a labels file, returning the peak heap
// above the heap before it started.
func importFile(tb testing.TB, pool *pgxpool.Pool, path string, imgs []labelimport.Image, by uuid.UUID) (added int64, peak uint64) {
	tb.Helper()
	ctx := context.Background()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	runtime.GC()
	metrics.Read(s)
	base := s[0].Value.Uint64()
	stop := peakHeap()
	f, err := os.Open(path)
	require.NoError(tb, err)
	defer f.Close()
	start := time.Now()
	staged, err := labelimport.Stage(ctx, pool, f)
	require.NoError(tb, err)
	staging := time.Since(start)
	added, err = staged.Apply(ctx, imgs, by)
	staged.Close()
	require.NoError(tb, err)
	tb.Logf("%d rows: staged in %s, %d labels applied in %s", staged.Rows, staging.Round(time.Millisecond), added, (time.Since(start) - staging).Round(time.Millisecond))
	p := stop()
	if p < base {
		return added, 0
	}
	return added, p - base
}

// The importer's heap does not grow with the file: ten times the rows,
// about the same peak (the in-memory map grew by tens of megabytes).
func TestStagedLabelsMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 550,000 rows")
	}
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	by := owner(t, pool)
	_, _, err := labelimport.Classes(ctx, pool, genClasses(2000))
	require.NoError(t, err)
	imgs := seedImages(t, pool, by, 5000)
	small := writeLabelsCSV(t, 50_000, 5000, 2000)
	large := writeLabelsCSV(t, 500_000, 5000, 2000)
	_, peakSmall := importFile(t, pool, small, imgs, by)
	_, err = pool.Exec(ctx, `DELETE FROM image_labels`)
	require.NoError(t, err)
	addedLarge, peakLarge := importFile(t, pool, large, imgs, by)
	require.Positive(t, addedLarge)
	t.Logf("peak heap above baseline: 50k rows %.1f MB, 500k rows %.1f MB", float64(peakSmall)/1e6, float64(peakLarge)/1e6)
	require.Less(t, peakLarge, peakSmall+8<<20, "the heap grows with the file")
}

// BenchmarkLabelsCSVImport imports 1,000,000 image-level label rows (over
// 100,000 stored images and 20,000 classes) beside the 60 s limit, with
// the importer's peak heap.
func BenchmarkLabelsCSVImport(b *testing.B) {
	const rows, images, classes = 1_000_000, 100_000, 20_000
	pool := dbtest.NewPool(b)
	ctx := context.Background()
	by := owner(b, pool)
	_, _, err := labelimport.Classes(ctx, pool, genClasses(classes))
	require.NoError(b, err)
	imgs := seedImages(b, pool, by, images)
	path := writeLabelsCSV(b, rows, images, classes)
	var total time.Duration
	var peak uint64
	for b.Loop() {
		b.StopTimer()
		_, err := pool.Exec(ctx, `DELETE FROM image_labels`)
		require.NoError(b, err)
		b.StartTimer()
		start := time.Now()
		added, p := importFile(b, pool, path, imgs, by)
		total += time.Since(start)
		peak = max(peak, p)
		require.Positive(b, added)
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/import")
	b.ReportMetric(60, "limit-s")
	b.ReportMetric(float64(peak)/1e6, "peak-heap-MB")
}

// BenchmarkClassesImport imports 20,000 class descriptions (half of them
// new, half updating) beside the 5 s limit.
func BenchmarkClassesImport(b *testing.B) {
	pool := dbtest.NewPool(b)
	ctx := context.Background()
	cs := genClasses(20_000)
	_, _, err := labelimport.Classes(ctx, pool, cs[:10_000])
	require.NoError(b, err)
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		_, _, err := labelimport.Classes(ctx, pool, cs)
		total += time.Since(start)
		require.NoError(b, err)
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/import")
	b.ReportMetric(5, "limit-s")
}
