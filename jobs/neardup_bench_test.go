package jobs

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deepimageshub/imagehub/dbtest"
	"github.com/deepimageshub/imagehub/imaging"
	"github.com/deepimageshub/imagehub/queries"
)

// seedHashes loads rows images with random perceptual hashes and, like
// ingest, len(imaging.Windows) window hashes each (ten million hashes for a
// million images), and returns the pool.
func seedHashes(b *testing.B, rows int) *pgxpool.Pool {
	b.Helper()
	pool := dbtest.NewPool(b)
	ctx := context.Background()
	start := time.Now()
	_, err := pool.Exec(ctx, `INSERT INTO users (email, name, password_hash) VALUES ('bench@example.com', 'Bench', 'x')`)
	if err != nil {
		b.Fatal(err)
	}
	_, err = pool.Exec(ctx, `
		INSERT INTO images (upload_sha256, owner_id, filename, content_type, byte_size, width, height, status,
		                    phash, phash_b0, phash_b1, phash_b2, phash_b3)
		SELECT sha256(int8send(i)), (SELECT id FROM users), 'x.jpg', 'image/jpeg', 1, 1, 1, 'awaiting_review',
		       h, (h >> 48) & 65535, (h >> 32) & 65535, (h >> 16) & 65535, h & 65535
		FROM (SELECT i, ((random() * 4294967295)::bigint << 32) # (random() * 4294967295)::bigint AS h
		      FROM generate_series(1, $1::int) i) s`, rows)
	if err != nil {
		b.Fatal(err)
	}
	// Ten million rows load far faster into a table without indexes, which
	// are then built once each, from their own definitions.
	var names, indexes []string
	r, err := pool.Query(ctx, `SELECT indexname, indexdef FROM pg_indexes
		WHERE tablename = 'image_window_hashes' AND indexname LIKE '%_b_\_idx'`)
	if err != nil {
		b.Fatal(err)
	}
	for r.Next() {
		var name, def string
		if err := r.Scan(&name, &def); err != nil {
			b.Fatal(err)
		}
		names, indexes = append(names, name), append(indexes, def)
	}
	r.Close()
	for _, name := range names {
		if _, err := pool.Exec(ctx, "DROP INDEX "+name); err != nil {
			b.Fatal(err)
		}
	}
	if len(indexes) != 4 {
		b.Fatalf("found %d band indexes on image_window_hashes, want 4", len(indexes))
	}
	_, err = pool.Exec(ctx, `
		INSERT INTO image_window_hashes (image_id, window_no, hash, b0, b1, b2, b3)
		SELECT id, n, h, (h >> 48) & 65535, (h >> 32) & 65535, (h >> 16) & 65535, h & 65535
		FROM (SELECT i.id, n, ((random() * 4294967295)::bigint << 32) # (random() * 4294967295)::bigint AS h
		      FROM images i, generate_series(0, $1::int - 1) n) s`, len(imaging.Windows))
	if err != nil {
		b.Fatal(err)
	}
	for _, def := range indexes {
		if _, err := pool.Exec(ctx, def); err != nil {
			b.Fatal(err)
		}
	}
	for _, table := range []string{"images", "image_window_hashes"} {
		if _, err := pool.Exec(ctx, "VACUUM ANALYZE "+table); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("loaded %d images with %d hashes each in %s", rows, 1+len(imaging.Windows), time.Since(start).Round(time.Second))
	return pool
}

// BenchmarkNearDuplicateLookup looks up perceptual hashes among one million
// stored images (and their window hashes) through the banded indexes, at
// the default distance (6): each lookup a whole hash and nine window
// hashes, as ingest makes. Half the probes are planted near a stored hash,
// half are random.
func BenchmarkNearDuplicateLookup(b *testing.B) {
	const rows = 1_000_000
	pool := seedHashes(b, rows)
	ctx := context.Background()
	stored := make([]int64, 0, 1000)
	r, err := pool.Query(ctx, "SELECT phash FROM images ORDER BY random() LIMIT 1000")
	if err != nil {
		b.Fatal(err)
	}
	for r.Next() {
		var h int64
		_ = r.Scan(&h)
		stored = append(stored, h)
	}
	r.Close()

	w := &IngestWorker{pool: pool, q: queries.New(), logger: slog.New(slog.NewTextHandler(io.Discard, nil)), nearDist: 6}
	rng := rand.New(rand.NewPCG(1, 1))
	found := 0
	i := 0
	windows := make([]uint64, len(imaging.Windows))
	for b.Loop() {
		h := rng.Uint64()
		for k := range windows {
			windows[k] = rng.Uint64()
		}
		planted := i%2 == 0
		if planted {
			h = uint64(stored[i%len(stored)])
			for _, bit := range rng.Perm(64)[:6] {
				h ^= 1 << bit
			}
		}
		id, err := w.nearDuplicate(ctx, uuid.New(), h, windows)
		if err != nil {
			b.Fatal(err)
		}
		if planted && id == nil {
			b.Fatalf("planted near-duplicate of %016x not found", h)
		}
		if id != nil {
			found++
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/lookup")
}

// BenchmarkNearDuplicateQuality scores the near-duplicate lookup on a
// generated set (imagingtest.NearDuplicateSet: 60 photos of 1024×768, half
// of them pairs of different photos of one scene, and 11 edited copies of
// each: JPEG q45, 60%, crops to 80% at the centre and the corners,
// brightness and contrast up and down), stored among a million other
// images (ten thousand with -short), as TestNearDuplicatesSurviveCrops
// does on its own. It reports precision, recall (all copies; crops looked up among
// originals; originals uploaded after their crops) and the mean lookup
// time.
func BenchmarkNearDuplicateQuality(b *testing.B) {
	rows := 1_000_000
	if testing.Short() {
		rows = 10_000
	}
	pool := seedHashes(b, rows)
	var s nearDupScore
	for b.Loop() {
		s = scoreNearDuplicates(b, pool, 60, 1024, 768)
	}
	for _, a := range s.alarms {
		b.Logf("false alarm: %s", a)
	}
	for _, m := range s.misses {
		b.Logf("missed: %s", m)
	}
	b.ReportMetric(s.precision(), "precision")
	b.ReportMetric(s.recall(), "recall")
	b.ReportMetric(s.cropRecall(), "crop-recall")
	b.ReportMetric(s.reverseRecall(), "orig-after-crop-recall")
	b.ReportMetric(float64(s.lookupTime.Microseconds())/float64(max(1, s.lookups))/1000, "ms/lookup")
	b.ReportMetric(0, "ns/op")
}
