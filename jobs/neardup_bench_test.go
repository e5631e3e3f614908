package jobs

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/deepimageshub/imagehub/dbtest"
	"github.com/deepimageshub/imagehub/queries"
)

// BenchmarkNearDuplicateLookup looks up perceptual hashes among one million
// stored ones through the banded index, at the default distance (6). Half
// the probes are planted near a stored hash, half are random.
func BenchmarkNearDuplicateLookup(b *testing.B) {
	const rows = 1_000_000
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
	if _, err := pool.Exec(ctx, "ANALYZE images"); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d hashes in %s", rows, time.Since(start).Round(time.Second))
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
	for b.Loop() {
		h := rng.Uint64()
		planted := i%2 == 0
		if planted {
			h = uint64(stored[i%len(stored)])
			for _, bit := range rng.Perm(64)[:6] {
				h ^= 1 << bit
			}
		}
		id, err := w.nearDuplicate(ctx, uuid.New(), h, nil)
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
