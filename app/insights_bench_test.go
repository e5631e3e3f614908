package app

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/dataset"
	"github.com/deepimageshub/imagehub/dataset/datasettest"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/review"
)

// seedInsights gives the bulk-loaded images what the insights count: two
// models' proposals (one by "bench-a" per current annotation, a tenth of
// them of another label; one by "bench-b" on every third image), reviewers'
// verdicts on all of them (a half accepted, three tenths corrected with an
// IoU below 1, a fifth rejected; all of bench-b's rejected), the model
// agreements of bench-b's images, a published version with its classes
// and a finished evaluation per model on its test split. The first reviews
// are spread over 50 reviewers, nine in ten with a time, and a tenth of
// the images have a blind second review by another reviewer, a fifth of
// them flagged. Rows go in with triggers off, as the bulk seeders write
// them; the summaries are then filled by the migrations' backfill, which
// it times.
func seedInsights(b *testing.B, tb *testBundle, owner uuid.UUID) (datasetID uuid.UUID, backfill time.Duration) {
	b.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, tb.pool, func(tx pgx.Tx) error {
		steps := []string{
			`SET LOCAL session_replication_role = replica`,
			`INSERT INTO models (name, version) VALUES ('bench-a', '1'), ('bench-b', '1')`,
			`INSERT INTO users (email, name, password_hash, role)
			 SELECT 'bench-rev' || i || '@example.com', 'bench-rev' || i, 'x', 'reviewer' FROM generate_series(1, 50) i`,
			`CREATE TEMP TABLE bench_reviewers ON COMMIT DROP AS
			 SELECT array_agg(id ORDER BY email) AS ids FROM users WHERE email LIKE 'bench-rev%'`,
			`UPDATE review_items r SET done_by = b.ids[1 + abs(hashtext(r.id::text || 'r')) % cardinality(b.ids)],
			        time_spent_ms = CASE WHEN abs(hashtext(r.id::text || 't')) % 10 = 0 THEN NULL
			                             ELSE 5000 + abs(hashtext(r.id::text || 't')) % 60000 END
			 FROM bench_reviewers b WHERE r.kind = 'first'`,
			`INSERT INTO review_items (image_id, kind, done_by, done_at, time_spent_ms, agreement, flagged)
			 SELECT f.image_id, 'second', b.ids[1 + array_position(b.ids, f.done_by) % cardinality(b.ids)],
			        now() - make_interval(secs => abs(hashtext(f.image_id::text || 'd')) % 1000000), 20000,
			        g.agreement, g.agreement < 0.8
			 FROM review_items f CROSS JOIN bench_reviewers b
			 CROSS JOIN LATERAL (SELECT 0.75 + (abs(hashtext(f.image_id::text || 'a')) % 26) / 100.0 AS agreement) g
			 WHERE f.kind = 'first' AND abs(hashtext(f.image_id::text || 's')) % 10 = 0`,
			`CREATE TEMP TABLE bench_labels ON COMMIT DROP AS SELECT array_agg(id ORDER BY name) AS ids FROM labels`,
			`INSERT INTO proposals (id, image_id, model_id, rank, label_id, score, bbox, area, height, width, counts)
			 SELECT md5('pa' || a.id)::uuid, a.image_id, (SELECT id FROM models WHERE name = 'bench-a'),
			        row_number() OVER (PARTITION BY a.image_id ORDER BY a.id),
			        CASE WHEN abs(hashtext(a.id::text)) % 10 = 0 THEN l.ids[1 + abs(hashtext(a.id::text || 'l')) % cardinality(l.ids)] ELSE a.label_id END,
			        0.5, a.bbox, a.area, a.height, a.width, a.counts
			 FROM annotations a CROSS JOIN bench_labels l WHERE a.replaced_at IS NULL`,
			`INSERT INTO proposals (id, image_id, model_id, rank, label_id, score, bbox, area, height, width, counts)
			 SELECT md5('pb' || a.image_id)::uuid, a.image_id, (SELECT id FROM models WHERE name = 'bench-b'), 0,
			        a.label_id, 0.4, a.bbox, a.area, a.height, a.width, a.counts
			 FROM (SELECT DISTINCT ON (image_id) * FROM annotations WHERE replaced_at IS NULL ORDER BY image_id, id) a
			 WHERE abs(hashtext(a.image_id::text)) % 3 = 0`,
			`INSERT INTO proposal_verdicts (review_item_id, proposal_id, verdict)
			 SELECT a.review_item_id, md5('pa' || a.id)::uuid,
			        CASE WHEN abs(hashtext(a.id::text || 'v')) % 10 < 5 THEN 'accepted'
			             WHEN abs(hashtext(a.id::text || 'v')) % 10 < 8 THEN 'corrected' ELSE 'rejected' END
			 FROM annotations a WHERE a.replaced_at IS NULL`,
			`INSERT INTO proposal_verdicts (review_item_id, proposal_id, verdict)
			 SELECT r.id, p.id, 'rejected' FROM proposals p JOIN review_items r ON r.image_id = p.image_id AND r.kind = 'first'
			 WHERE p.model_id = (SELECT id FROM models WHERE name = 'bench-b')`,
			`UPDATE annotations a SET proposal_id = v.proposal_id,
			        iou = CASE WHEN v.verdict = 'accepted' THEN 1 ELSE 0.5 + (abs(hashtext(a.id::text)) % 100) / 250.0 END
			 FROM proposal_verdicts v
			 WHERE a.replaced_at IS NULL AND v.proposal_id = md5('pa' || a.id)::uuid AND v.verdict <> 'rejected'`,
			`INSERT INTO model_agreements (image_id, label_id, models, agreement)
			 SELECT p.image_id, p.label_id, 2, (abs(hashtext(p.image_id::text)) % 101) / 100.0
			 FROM proposals p WHERE p.model_id = (SELECT id FROM models WHERE name = 'bench-b')`,
		}
		for _, s := range steps {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("%.60s: %w", s, err)
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("seeding insights: %v", err)
	}
	if _, err := tb.pool.Exec(ctx, "VACUUM ANALYZE proposals, proposal_verdicts, annotations, model_agreements, review_items"); err != nil {
		b.Fatal(err)
	}
	// What migrations 00018 and 00027 run on an existing database.
	start := time.Now()
	if _, err := tb.pool.Exec(ctx, `SELECT insight_recount_proposals(coalesce(array_agg(id), '{}')) FROM proposals`); err != nil {
		b.Fatal(err)
	}
	if _, err := tb.pool.Exec(ctx, `SELECT insight_agreements_add(array_agg(label_id), array_agg(agreement), 1) FROM model_agreements`); err != nil {
		b.Fatal(err)
	}
	if _, err := tb.pool.Exec(ctx, `SELECT reviewer_recount_items(coalesce(array_agg(id), '{}')) FROM review_items
		WHERE done_by IS NOT NULL OR (kind = 'second' AND done_at IS NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	if _, err := tb.q.InsightCompactSummaries(ctx, tb.pool); err != nil {
		b.Fatal(err)
	}
	backfill = time.Since(start)

	d, err := dataset.Create(ctx, tb.pool, dataset.Spec{Name: "bench"}, owner)
	if err != nil {
		b.Fatal(err)
	}
	// The version's rows as publishing leaves them (BenchmarkDatasetPublish
	// times publishing itself).
	err = pgx.BeginFunc(ctx, tb.pool, func(tx pgx.Tx) error {
		var version uuid.UUID
		if err := tx.QueryRow(ctx, `
			INSERT INTO dataset_versions (dataset_id, number, state, filter, images, instances, test_images, test_instances, created_by, published_at)
			SELECT $1, 1, 'published', '{}', count(DISTINCT image_id), count(*), count(DISTINCT image_id), count(*), $2, now()
			FROM annotations WHERE replaced_at IS NULL RETURNING id`, d.ID, owner).Scan(&version); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO dataset_version_labels (version_id, category_id, label_id, name, display_name, test_images, test_instances)
			SELECT $1, row_number() OVER (ORDER BY l.name), l.id, l.name, l.name, count(DISTINCT a.image_id), count(*)
			FROM annotations a JOIN labels l ON l.id = a.label_id WHERE a.replaced_at IS NULL GROUP BY l.id, l.name`, version); err != nil {
			return err
		}
		for _, m := range []string{"bench-a", "bench-b"} {
			if _, err := tx.Exec(ctx, `
				WITH e AS (
					INSERT INTO evaluations (model_id, dataset_id, version_id, version_number, split, state, ap, ap50, created_by, finished_at)
					SELECT id, $1, $2, 1, 'test', 'done', 0.4, 0.6, $3, now() FROM models WHERE name = $4 RETURNING id)
				INSERT INTO evaluation_classes (evaluation_id, label_id, category_id, name, ap, ap50, ap75, instances, detections)
				SELECT e.id, l.label_id, l.category_id, l.name, (l.category_id % 10) / 10.0, 0.5, 0.3, l.test_instances, l.test_instances
				FROM e, dataset_version_labels l WHERE l.version_id = $2`, d.ID, version, owner, m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("seeding a version: %v", err)
	}
	return d.ID, backfill
}

// BenchmarkInsights times every insights query and page, and the
// reviewer scorecards, at a million images and three million annotations
// (BulkRows, then a second look at half of them), with two models'
// proposals and verdicts on every one and reviewers' first and second
// reviews (seedInsights): each figure is the median of
// benchInsightsRounds calls, in ms. The full counts the summaries replace
// are timed once beside them.
// IMAGEHUB_BENCH_IMAGES makes it smaller for a quick try.
func BenchmarkInsights(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("IMAGEHUB_BENCH_IMAGES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	tb := setup(b)
	admin, adminUser := tb.userWithRole(b, "admin@example.com", auth.RoleAdmin)
	ctx := context.Background()
	start := time.Now()
	datasettest.BulkRows(b, tb.pool, adminUser.ID, 0, n)
	datasettest.Rereview(b, tb.pool, n/2)
	datasetID, backfill := seedInsights(b, tb, adminUser.ID)
	var images, anns, props int
	if err := tb.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM images), (SELECT count(*) FROM annotations), (SELECT count(*) FROM proposals)`).Scan(&images, &anns, &props); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d images, %d annotations, %d proposals in %s; summaries backfilled in %s",
		images, anns, props, time.Since(start).Round(time.Second), backfill.Round(time.Millisecond))

	var models, labels []uuid.UUID
	if err := tb.pool.QueryRow(ctx, `SELECT array_agg(id ORDER BY name) FROM models`).Scan(&models); err != nil {
		b.Fatal(err)
	}
	if err := tb.pool.QueryRow(ctx, `SELECT array_agg(id) FROM labels`).Scan(&labels); err != nil {
		b.Fatal(err)
	}
	var evalA, evalB string
	if err := tb.pool.QueryRow(ctx, `
		SELECT (array_agg(e.id::text ORDER BY m.name))[1], (array_agg(e.id::text ORDER BY m.name))[2]
		FROM evaluations e JOIN models m ON m.id = e.model_id`).Scan(&evalA, &evalB); err != nil {
		b.Fatal(err)
	}
	var reviewers, seconds, flagged int
	if err := tb.pool.QueryRow(ctx, `
		SELECT count(DISTINCT done_by), count(*) FILTER (WHERE kind = 'second'), count(*) FILTER (WHERE flagged)
		FROM review_items`).Scan(&reviewers, &seconds, &flagged); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d reviewers, %d second reviews, %d flagged", reviewers, seconds, flagged)
	q, db := tb.q, tb.pool
	page := func(path string) func() error {
		return func() error {
			res := admin.get(path)
			if res.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %d %s", path, res.StatusCode, res.body)
			}
			return nil
		}
	}
	ds := datasetID.String()
	// The evaluations list is timed narrowed to the version both models
	// were evaluated on: it must find them.
	evals := admin.get("/api/v1/evaluations?dataset_id=" + ds + "&version=1").json(b)["items"].([]any)
	if len(evals) != 2 {
		b.Fatalf("the evaluations of the version: %d, want 2", len(evals))
	}
	timed := []struct {
		name string
		f    func() error
	}{
		{"page-insights", page("/insights?dataset_id=" + ds)},
		{"api-classes", page("/api/v1/insights/classes?dataset_id=" + ds)},
		{"page-models", page("/insights/models")},
		{"page-models-ab", page("/insights/models?a=" + evalA + "&b=" + evalB)},
		{"api-evaluations", page("/api/v1/evaluations?dataset_id=" + ds + "&version=1")},
		{"page-review-stats", page("/review/stats")},
		{"csv-review-stats", page("/review/stats.csv")},
		{"api-stats-models", page("/api/v1/stats/models")},
		{"q-ModelVerdictTotals", func() error { _, err := q.ModelVerdictTotals(ctx, db, models); return err }},
		{"q-ModelLabelConfusion", func() error { _, err := q.ModelLabelConfusion(ctx, db, models[0]); return err }},
		{"q-LabelReviewQuality", func() error { _, err := q.LabelReviewQuality(ctx, db, labels); return err }},
		{"q-ModelQuality", func() error { _, err := q.ModelQuality(ctx, db); return err }},
		{"q-CommitteeByLabel", func() error { _, err := q.CommitteeByLabel(ctx, db, labels); return err }},
		{"q-LabelModelVerdicts", func() error { _, err := q.LabelModelVerdicts(ctx, db, labels); return err }},
		{"q-ReviewerStats", func() error { _, err := q.ReviewerStats(ctx, db, nil); return err }},
		{"q-ReviewsFlagged", func() error { _, err := q.ReviewsFlagged(ctx, db); return err }},
	}
	const benchInsightsRounds = 15
	medians := make([]time.Duration, len(timed))
	for b.Loop() {
		for i, t := range timed {
			var ds []time.Duration
			for range benchInsightsRounds {
				s := time.Now()
				if err := t.f(); err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(s))
			}
			medians[i] = median(ds)
		}
	}
	b.ReportMetric(0, "ns/op")
	for i, t := range timed {
		b.ReportMetric(float64(medians[i].Microseconds())/1000, "ms-"+t.name)
	}
	b.ReportMetric(backfill.Seconds(), "s-backfill")
	// One full count, for scale: what the pages cost before the summaries.
	s := time.Now()
	if _, err := q.ModelQualityFullCount(ctx, db); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(time.Since(s).Milliseconds()), "ms-fullcount-ModelQuality")
	s = time.Now()
	if _, err := q.CommitteeByLabelFullCount(ctx, db, queries.CommitteeByLabelFullCountParams{Agree: review.CommitteeAgreed, LabelIds: labels}); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(time.Since(s).Milliseconds()), "ms-fullcount-CommitteeByLabel")
	s = time.Now()
	if _, err := q.ReviewerStatsFullCount(ctx, db, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(time.Since(s).Milliseconds()), "ms-fullcount-ReviewerStats")
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
