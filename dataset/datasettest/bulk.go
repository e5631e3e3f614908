package datasettest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deepimageshub/imagehub/mask"
)

// BulkRows stores n reviewed images, numbered from+1 to from+n, and their
// first reviews in set-based SQL, for benchmarks at a million rows: 640×480
// JPEGs by their rows only (no bytes), one to three box annotations each
// among the COCO labels, and every twentieth image a near-duplicate of the
// one before it.
func BulkRows(tb testing.TB, pool *pgxpool.Pool, owner uuid.UUID, from, n int) {
	tb.Helper()
	bulk(tb, pool, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			INSERT INTO images (id, upload_sha256, sha256, owner_id, filename, content_type, byte_size, width, height,
			                    status, quality, near_duplicate_of)
			SELECT md5('bulk' || i)::uuid, sha256(int8send(-i)), sha256(int8send(i)), $1, 'x.jpg', 'image/jpeg', 250000, 640, 480,
			       'reviewed', '{"sharpness": 100}', CASE WHEN i % 20 = 0 THEN md5('bulk' || (i - 1))::uuid END
			FROM generate_series($2::int + 1, $2::int + $3::int) i`, owner, from, n)
		return err
	}, 640, 480)
}

// Rereview gives n reviewed images new annotations, as a second look by a
// reviewer does: the current ones are marked replaced and copies with new
// content take their place.
func Rereview(tb testing.TB, pool *pgxpool.Pool, n int) {
	tb.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			CREATE TEMP TABLE rereviewed ON COMMIT DROP AS
			SELECT a.* FROM annotations a
			WHERE a.replaced_at IS NULL
			  AND a.image_id IN (SELECT i.id FROM images i WHERE i.status = 'reviewed' ORDER BY i.id LIMIT $1)`, n)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE annotations SET replaced_at = now() WHERE id IN (SELECT id FROM rereviewed)`)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO annotations (id, image_id, review_item_id, label_id, height, width, counts, bbox, area, content_sha256, author_id)
			SELECT gen_random_uuid(), image_id, review_item_id, label_id, height, width, counts, bbox, area,
			       sha256(content_sha256 || '\x01'::bytea), author_id
			FROM rereviewed`)
		return err
	})
	if err != nil {
		tb.Fatalf("datasettest: error re-reviewing: %v", err)
	}
}

// BulkFiles stores n reviewed images of size random bytes each, written
// straight into the folder of a blob.FS at dir under their SHA-256 (no
// fsync: benchmarks only), with their rows and reviews as BulkRows makes
// them. It returns the bytes written.
func BulkFiles(tb testing.TB, pool *pgxpool.Pool, owner uuid.UUID, dir string, n, size int) int64 {
	tb.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "images"), 0o755); err != nil {
		tb.Fatal(err)
	}
	shas := make([][]byte, n)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.NewChaCha8([32]byte{byte(w), 1, 2, 3})
			buf := make([]byte, size)
			for i := w; i < n; i += workers {
				_, _ = rng.Read(buf)
				sum := sha256.Sum256(buf)
				shas[i] = sum[:]
				if err := os.WriteFile(filepath.Join(dir, "images", hex.EncodeToString(sum[:])), buf, 0o644); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		tb.Fatal(err)
	}
	bulk(tb, pool, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			INSERT INTO images (id, upload_sha256, sha256, owner_id, filename, content_type, byte_size, width, height,
			                    status, quality, near_duplicate_of)
			SELECT md5('bulk' || s.i)::uuid, sha256(s.sha), s.sha, $1, 'x.jpg', 'image/jpeg', $3, 640, 480, 'reviewed',
			       '{"sharpness": 100}', CASE WHEN s.i % 20 = 0 THEN md5('bulk' || (s.i - 1))::uuid END
			FROM unnest($2::bytea[]) WITH ORDINALITY AS s(sha, i)`, owner, shas, size)
		return err
	}, 640, 480)
	return int64(n) * int64(size)
}

// bulk runs images, then gives every reviewed image without a review one,
// with its annotations, in one transaction. Foreign keys are not checked
// when the account may skip them (a superuser, as the local test server's
// is): the rows are consistent by construction, and checking them would
// take longer than writing them.
func bulk(tb testing.TB, pool *pgxpool.Pool, images func(context.Context, pgx.Tx) error, w, h int) {
	tb.Helper()
	ctx := context.Background()
	rle := mask.Encode(Box(w, h, w/4, h/4, w*3/4, h*3/4))
	area, _ := rle.Area()
	box, _ := rle.BBox()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var super bool
		if err := tx.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil {
			return err
		}
		if super {
			if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
				return err
			}
		}
		if err := images(ctx, tx); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO review_items (image_id, kind, done_at)
			SELECT i.id, 'first', now() FROM images i
			WHERE i.status = 'reviewed' AND NOT EXISTS (SELECT 1 FROM review_items r WHERE r.image_id = i.id)`)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO annotations (id, image_id, review_item_id, label_id, height, width, counts, bbox, area, content_sha256, author_id)
			SELECT gen_random_uuid(), r.image_id, r.id, l.ids[1 + (abs(hashtext(r.image_id::text || k)) % cardinality(l.ids))],
			       $1, $2, $3, $4, $5, sha256(convert_to(r.image_id::text || k, 'UTF8')), i.owner_id
			FROM review_items r
			JOIN images i ON i.id = r.image_id
			CROSS JOIN (SELECT array_agg(id ORDER BY name) AS ids FROM labels) l
			CROSS JOIN LATERAL generate_series(1, 1 + abs(hashtext(r.image_id::text)) % 3) k
			WHERE NOT EXISTS (SELECT 1 FROM annotations a WHERE a.review_item_id = r.id)`,
			h, w, rle.Counts, box[:], area)
		return err
	})
	if err != nil {
		tb.Fatalf("datasettest: error loading images: %v", err)
	}
	// As autovacuum would have by the time anyone publishes: hint bits set,
	// statistics fresh.
	if _, err := pool.Exec(ctx, "VACUUM ANALYZE images, review_items, annotations"); err != nil {
		tb.Fatalf("datasettest: %v", err)
	}
}
