package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/config"
	"github.com/deepimageshub/imagehub/dataset/datasettest"
	"github.com/deepimageshub/imagehub/migrations"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/review"
)

// normalRows turns query rows into sorted strings, floats rounded to 1e-9:
// the summaries' means are numeric sums divided once, the full counts'
// float8 averages, equal to the last few bits.
func normalRows[T any](t *testing.T, rows []T) []string {
	t.Helper()
	out := make([]string, len(rows))
	for i, r := range rows {
		b, err := json.Marshal(r)
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m))
		for k, v := range m {
			if f, ok := v.(float64); ok && f != math.Trunc(f) {
				m[k] = fmt.Sprintf("%.9f", f)
			}
		}
		b, err = json.Marshal(m)
		require.NoError(t, err)
		out[i] = string(b)
	}
	slices.Sort(out)
	return out
}

// requireSummariesMatch compares every insights query that reads the
// summaries of migrations 00018 and 00027 with the same figure counted
// from the tables, over every model, label and reviewer.
func requireSummariesMatch(t *testing.T, tb *testBundle, step string) {
	t.Helper()
	ctx := context.Background()
	var models, labels []uuid.UUID
	require.NoError(t, tb.pool.QueryRow(ctx, `SELECT coalesce(array_agg(id), '{}') FROM models`).Scan(&models))
	require.NoError(t, tb.pool.QueryRow(ctx, `SELECT coalesce(array_agg(id), '{}') FROM labels`).Scan(&labels))
	q, db := tb.q, tb.pool

	fast1, err := q.ModelVerdictTotals(ctx, db, models)
	require.NoError(t, err)
	slow1, err := q.ModelVerdictTotalsFullCount(ctx, db, models)
	require.NoError(t, err)
	require.Equal(t, normalRows(t, slow1), normalRows(t, fast1), "%s: ModelVerdictTotals", step)

	for _, m := range models {
		fast, err := q.ModelLabelConfusion(ctx, db, m)
		require.NoError(t, err)
		slow, err := q.ModelLabelConfusionFullCount(ctx, db, m)
		require.NoError(t, err)
		require.Equal(t, normalRows(t, slow), normalRows(t, fast), "%s: ModelLabelConfusion", step)
	}

	fast2, err := q.LabelReviewQuality(ctx, db, labels)
	require.NoError(t, err)
	slow2, err := q.LabelReviewQualityFullCount(ctx, db, labels)
	require.NoError(t, err)
	require.Equal(t, normalRows(t, slow2), normalRows(t, fast2), "%s: LabelReviewQuality", step)

	fast3, err := q.ModelQuality(ctx, db)
	require.NoError(t, err)
	slow3, err := q.ModelQualityFullCount(ctx, db)
	require.NoError(t, err)
	require.Equal(t, normalRows(t, slow3), normalRows(t, fast3), "%s: ModelQuality", step)

	fast4, err := q.CommitteeByLabel(ctx, db, labels)
	require.NoError(t, err)
	slow4, err := q.CommitteeByLabelFullCount(ctx, db, queries.CommitteeByLabelFullCountParams{Agree: review.CommitteeAgreed, LabelIds: labels})
	require.NoError(t, err)
	require.Equal(t, normalRows(t, slow4), normalRows(t, fast4), "%s: CommitteeByLabel", step)

	fast5, err := q.LabelModelVerdicts(ctx, db, labels)
	require.NoError(t, err)
	slow5, err := q.LabelModelVerdictsFullCount(ctx, db, labels)
	require.NoError(t, err)
	require.Equal(t, normalRows(t, slow5), normalRows(t, fast5), "%s: LabelModelVerdicts", step)

	requireReviewerSummaryMatch(t, tb, step)
}

// requireReviewerSummaryMatch compares the scorecards read from
// reviewer_summary (migration 00027) with the same figures counted from
// the tables, for everyone and for each reviewer alone.
func requireReviewerSummaryMatch(t *testing.T, tb *testBundle, step string) {
	t.Helper()
	ctx := context.Background()
	q, db := tb.q, tb.pool
	fast, err := q.ReviewerStats(ctx, db, nil)
	require.NoError(t, err)
	slow, err := q.ReviewerStatsFullCount(ctx, db, nil)
	require.NoError(t, err)
	require.Equal(t, normalRows(t, slow), normalRows(t, fast), "%s: ReviewerStats", step)
	for _, r := range slow {
		fast, err := q.ReviewerStats(ctx, db, &r.ID)
		require.NoError(t, err)
		slow, err := q.ReviewerStatsFullCount(ctx, db, &r.ID)
		require.NoError(t, err)
		require.Equal(t, normalRows(t, slow), normalRows(t, fast), "%s: ReviewerStats of %s", step, r.Email)
	}
	// ReviewerStats leaves out whoever has no items; their figures must
	// all be 0 then, or a stale one would come back with their next review.
	require.Zero(t, tb.count(t, `SELECT count(*) FROM reviewer_summary_now WHERE items = 0
		AND (timed_items <> 0 OR time_spent_ms <> 0 OR accepted <> 0 OR corrected <> 0 OR rejected <> 0
		     OR second_reviews <> 0 OR agreement_sum <> 0 OR agreement_n <> 0)`), "%s: figures of no items", step)
}

// reviewNext submits reviewer c's next item: how decides, per proposal
// (of the image, with its model's name), to keep it as it is ("keep"),
// redraw it ("redraw"), relabel it as cat ("relabel") or reject it
// (anything else); draw adds an instance of no proposal. A second review
// (no proposals shown) draws the middle of the photo as cat.
func reviewNext(t *testing.T, w *committeeWorld, c *client, how func(model string) string, draw bool) string {
	t.Helper()
	status, item := next(t, c)
	require.Equal(t, http.StatusOK, status)
	image := item["image"].(map[string]any)["id"].(string)
	instances, rejected := []any{}, []any{}
	if item["kind"] == "second" {
		instances = append(instances, map[string]any{"label": "cat", "mask": rect(240, 320, 80, 60, 240, 180)})
	} else {
		props := w.admin.get("/api/v1/images/" + image).json(t)["proposals"].([]any)
		for _, p := range props {
			p := p.(map[string]any)
			switch how(p["model"].(map[string]any)["name"].(string)) {
			case "keep":
				instances = append(instances, map[string]any{"proposal_id": p["id"], "label": p["label"], "mask": p["mask"]})
			case "redraw":
				instances = append(instances, map[string]any{"proposal_id": p["id"], "label": p["label"], "mask": rect(240, 320, 70, 50, 230, 170)})
			case "relabel":
				instances = append(instances, map[string]any{"proposal_id": p["id"], "label": "cat", "mask": p["mask"]})
			default:
				rejected = append(rejected, p["id"])
			}
		}
		if draw {
			instances = append(instances, map[string]any{"label": "dog", "mask": rect(240, 320, 0, 0, 40, 30)})
		}
	}
	res := c.json(http.MethodPost, "/api/v1/review/"+item["item_id"].(string),
		map[string]any{"instances": instances, "rejected_proposals": rejected, "time_spent_ms": 1000})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	return image
}

// TestInsightSummariesMatchFullCount: after each of a realistic sequence
// of writes (inference by two models, first reviews that accept, correct,
// relabel and reject, blind second reviews, a moderation approval that
// sends a photo to the models, publishing, and deletions that cascade),
// every insights figure read from the summaries equals the same figure
// counted from the tables.
func TestInsightSummariesMatchFullCount(t *testing.T) {
	t.Parallel()
	w := newCommitteeWorld(t, func(c *config.Config) { c.SecondReviewShare = 1; c.SecondReviewMinAgreement = 0.8 })
	bob, bobUser := w.tb.userWithRole(t, "bob@example.com", auth.RoleReviewer)
	ctx := context.Background()
	requireSummariesMatch(t, w.tb, "empty")

	// Inference: proposals and model agreements.
	photos := []string{w.upload(t, 1, "object"), w.upload(t, 2, "dog"), w.upload(t, 3, "dog"), w.upload(t, 4, "object")}
	requireSummariesMatch(t, w.tb, "inference")
	require.Positive(t, w.count(t, "SELECT count(*) FROM proposal_outcomes"))
	require.Positive(t, w.count(t, "SELECT count(*) FROM model_agreement_summary_now WHERE images > 0"))

	// First reviews, each a different mix of verdicts.
	policies := []func(string) string{
		func(m string) string { return map[string]string{"hinted": "keep"}[m] },
		func(m string) string { return map[string]string{"hinted": "redraw", "blind": "relabel"}[m] },
		func(string) string { return "reject" },
		func(m string) string { return map[string]string{"blind": "keep", "hinted": "relabel"}[m] },
	}
	for i, how := range policies {
		reviewNext(t, w, w.rev, how, i%2 == 1)
		requireSummariesMatch(t, w.tb, fmt.Sprintf("first review %d", i))
	}
	var ious int
	require.NoError(t, w.tb.pool.QueryRow(ctx, `SELECT count(*) FROM annotations WHERE iou IS NOT NULL AND iou < 1`).Scan(&ious))
	require.Positive(t, ious, "a redrawn proposal has an IoU below 1")

	// Blind second reviews by another reviewer.
	for i := range photos {
		reviewNext(t, w, bob, nil, false)
		requireSummariesMatch(t, w.tb, fmt.Sprintf("second review %d", i))
	}

	// Folding the deltas in changes no figure.
	require.Positive(t, w.count(t, "SELECT count(*) FROM proposal_summary_deltas"))
	folded, err := w.tb.q.InsightCompactSummaries(ctx, w.tb.pool)
	require.NoError(t, err)
	require.Positive(t, folded)
	require.Zero(t, w.count(t, "SELECT count(*) FROM proposal_summary_deltas"))
	requireSummariesMatch(t, w.tb, "compacted")

	// Moderation: an approved photo goes to the models and to review.
	fx := datasettest.New(t, w.tb.pool, w.tb.blobs)
	flagged := fx.Image(datasettest.ImageOpts{Status: "flagged", W: 320, H: 240})
	res := w.rev.json(http.MethodPost, "/api/v1/moderation/"+flagged.ID.String(), map[string]any{"decision": "approve"})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	require.Eventually(t, func() bool {
		return w.count(t, fmt.Sprintf("SELECT count(*) FROM images WHERE id = '%s' AND status = 'awaiting_review'", flagged.ID)) == 1
	}, 60*time.Second, 50*time.Millisecond)
	requireSummariesMatch(t, w.tb, "moderation approval and inference")
	reviewNext(t, w, w.rev, func(string) string { return "keep" }, true)
	requireSummariesMatch(t, w.tb, "review of the approved photo")

	// Publishing reads the summaries' tables without changing them.
	id := w.createDataset(t, map[string]any{"name": "summaries", "splits": map[string]float64{"train": 1, "val": 0, "test": 0}})
	w.publish(t, id)
	requireSummariesMatch(t, w.tb, "publish")
	items := w.admin.get("/api/v1/insights/classes?dataset_id=" + id).json(t)["items"].([]any)
	require.NotEmpty(t, items)

	// Deletions cascade: a review item (its verdicts and annotations),
	// then a whole photo (proposals, agreements, reviews); a statement that
	// changes many rows at once.
	_, err = w.tb.pool.Exec(ctx, `DELETE FROM review_items WHERE image_id = $1 AND kind = 'first'`, photos[1])
	require.NoError(t, err)
	requireSummariesMatch(t, w.tb, "review item deleted")
	_, err = w.tb.pool.Exec(ctx, `DELETE FROM images WHERE id = $1`, photos[3])
	require.NoError(t, err)
	requireSummariesMatch(t, w.tb, "photo deleted")
	_, err = w.tb.pool.Exec(ctx, `UPDATE annotations SET iou = iou / 2 WHERE iou IS NOT NULL`)
	require.NoError(t, err)
	_, err = w.tb.pool.Exec(ctx, `UPDATE model_agreements SET agreement = 1 - agreement`)
	require.NoError(t, err)
	_, err = w.tb.pool.Exec(ctx, `UPDATE proposal_verdicts SET verdict = CASE verdict WHEN 'accepted' THEN 'corrected' ELSE 'accepted' END`)
	require.NoError(t, err)
	_, err = w.tb.pool.Exec(ctx, `UPDATE review_items SET time_spent_ms = NULL WHERE kind = 'second'`)
	require.NoError(t, err)
	requireSummariesMatch(t, w.tb, "bulk updates")
	// A first review handed to another reviewer takes the second review of
	// its image along; a verdict written after the review finished counts.
	_, err = w.tb.pool.Exec(ctx, `UPDATE review_items SET done_by = $1 WHERE kind = 'first' AND image_id = $2`, bobUser.ID, photos[0])
	require.NoError(t, err)
	requireSummariesMatch(t, w.tb, "a first review reassigned")
	_, err = w.tb.pool.Exec(ctx, `
		INSERT INTO proposal_verdicts (review_item_id, proposal_id, verdict)
		SELECT r.id, p.id, 'rejected' FROM review_items r JOIN proposals p ON p.image_id = r.image_id
		WHERE r.kind = 'second' AND r.image_id = $1`, photos[0])
	require.NoError(t, err)
	requireSummariesMatch(t, w.tb, "late verdicts")
	_, err = w.tb.pool.Exec(ctx, `DELETE FROM proposals WHERE model_id = (SELECT id FROM models WHERE name = 'blind')`)
	require.NoError(t, err)
	requireSummariesMatch(t, w.tb, "a model's proposals deleted")
	require.Equal(t, 0, w.count(t, "SELECT count(*) FROM proposal_outcomes o WHERE NOT EXISTS (SELECT 1 FROM proposals p WHERE p.id = o.proposal_id)"))

	// The migration's backfill: rolled back and applied again on what the
	// tables hold now, the summaries come out the same.
	before := w.count(t, "SELECT count(*) FROM proposal_summary_now WHERE n <> 0")
	rerunSummaryMigration(t, w.tb)
	require.Equal(t, before, w.count(t, "SELECT count(*) FROM proposal_summary_now WHERE n <> 0"))
	requireSummariesMatch(t, w.tb, "backfilled")
}

// TestInsightSummariesUnderConcurrentReviews: reviewers submitting at the
// same time, each verdict touching the same summary keys, neither wait on
// each other's summary rows nor leave the summary off the full count.
func TestInsightSummariesUnderConcurrentReviews(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	_, owner := tb.userWithRole(t, "owner@example.com", auth.RoleContributor)
	const items, reviewers = 24, 6
	for i := range items {
		seedReview(t, tb, owner.ID, 3, float32(i)/items)
	}
	var clients []*client
	for i := range reviewers {
		c, _ := tb.userWithRole(t, fmt.Sprintf("rev%d@example.com", i), auth.RoleReviewer)
		clients = append(clients, c)
	}
	// Each reviewer leases its share first, then all submit at once.
	type lease struct {
		c    *client
		item map[string]any
	}
	var leases []lease
	for i := range items {
		c := clients[i%reviewers]
		status, item := next(t, c)
		require.Equal(t, http.StatusOK, status)
		leases = append(leases, lease{c, item})
	}
	var wg sync.WaitGroup
	errs := make(chan error, items)
	for i, l := range leases {
		wg.Go(func() {
			props := l.item["proposals"].([]any)
			instances, rejected := []any{}, []any{}
			for j, p := range props {
				p := p.(map[string]any)
				switch (i + j) % 3 {
				case 0:
					instances = append(instances, map[string]any{"proposal_id": p["id"], "label": "cat", "mask": p["mask"]})
				case 1:
					instances = append(instances, map[string]any{"proposal_id": p["id"], "label": "dog", "mask": rect(60, 80, 10, 10, 40, 40)})
				default:
					rejected = append(rejected, p["id"])
				}
			}
			res := l.c.json(http.MethodPost, "/api/v1/review/"+l.item["item_id"].(string),
				map[string]any{"instances": instances, "rejected_proposals": rejected})
			if res.StatusCode != http.StatusOK {
				errs <- fmt.Errorf("review %d: %d %s", i, res.StatusCode, res.body)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	require.Equal(t, items*3, tb.count(t, "SELECT count(*) FROM proposal_verdicts"))
	requireSummariesMatch(t, tb, "concurrent reviews")
}

// TestReviewerSummaryUnderConcurrentReviews: reviewers submitting first
// and blind second reviews at the same time, each second review counting
// for its own reviewer and for the first reviewer of its image, leave the
// scorecards' summary equal to the full count, before and after the
// deltas are folded in.
func TestReviewerSummaryUnderConcurrentReviews(t *testing.T) {
	t.Parallel()
	tb := setup(t, func(c *config.Config) { c.SecondReviewShare = 1; c.SecondReviewMinAgreement = 0.8 })
	_, owner := tb.userWithRole(t, "owner@example.com", auth.RoleContributor)
	const reviewers = 4
	var clients []*client
	for i := range reviewers {
		c, _ := tb.userWithRole(t, fmt.Sprintf("rev%d@example.com", i), auth.RoleReviewer)
		clients = append(clients, c)
	}
	type lease struct {
		c    *client
		item map[string]any
	}
	// round leases every item the reviewers may take, in turn (a second
	// review goes to anyone but the first reviewer), then submits them all
	// at once: first reviews keep, redraw or reject each proposal, second
	// reviews draw a mask that agrees with the first more or less; some
	// report their time, the others are timed from the lease.
	round := func(name string) (firsts, seconds int) {
		var leases []lease
		for more := true; more; {
			more = false
			for _, c := range clients {
				if status, item := next(t, c); status == http.StatusOK {
					leases = append(leases, lease{c, item})
					more = true
				}
			}
		}
		var wg sync.WaitGroup
		errs := make(chan error, len(leases))
		for i, l := range leases {
			if l.item["kind"] == "second" {
				seconds++
			} else {
				firsts++
			}
			wg.Go(func() {
				instances, rejected := []any{}, []any{}
				if l.item["kind"] == "second" {
					instances = append(instances, map[string]any{"label": "cat", "mask": rect(60, 80, 2, 3, 20+i%3*20, 30)})
				} else {
					for j, p := range l.item["proposals"].([]any) {
						p := p.(map[string]any)
						switch (i + j) % 3 {
						case 0:
							instances = append(instances, map[string]any{"proposal_id": p["id"], "label": "cat", "mask": p["mask"]})
						case 1:
							instances = append(instances, map[string]any{"proposal_id": p["id"], "label": "dog", "mask": rect(60, 80, 10, 10, 40, 40)})
						default:
							rejected = append(rejected, p["id"])
						}
					}
				}
				body := map[string]any{"instances": instances, "rejected_proposals": rejected}
				if i%2 == 0 {
					body["time_spent_ms"] = 1000 + 500*i
				}
				res := l.c.json(http.MethodPost, "/api/v1/review/"+l.item["item_id"].(string), body)
				if res.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("%s, review %d: %d %s", name, i, res.StatusCode, res.body)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		requireReviewerSummaryMatch(t, tb, name)
		return firsts, seconds
	}

	for i := range 12 {
		seedReview(t, tb, owner.ID, 3, float32(i)/12)
	}
	firsts, seconds := round("first reviews")
	require.Equal(t, 12, firsts)
	require.Zero(t, seconds)
	// The second reviews of those beside first reviews of new photos: the
	// same reviewers' rows changed by both at once.
	for i := range 8 {
		seedReview(t, tb, owner.ID, 3, float32(i)/8)
	}
	firsts, seconds = round("second reviews beside first reviews")
	require.Equal(t, 8, firsts)
	require.Equal(t, 12, seconds)
	_, seconds = round("the last second reviews")
	require.Equal(t, 8, seconds)

	rows, err := tb.q.ReviewerStats(context.Background(), tb.pool, nil)
	require.NoError(t, err)
	require.Len(t, rows, reviewers)
	var items, second, flagged int32
	for _, r := range rows {
		items += r.Items
		second += r.SecondReviews
	}
	require.Equal(t, int32(2*20), items, "20 first reviews and 20 second reviews")
	require.Equal(t, int32(20), second)
	require.NoError(t, tb.pool.QueryRow(context.Background(), `SELECT count(*) FROM review_items WHERE flagged`).Scan(&flagged))
	require.Positive(t, flagged, "some second reviews disagree")
	require.Positive(t, tb.count(t, "SELECT count(*) FROM reviewer_summary_deltas"))
	_, err = tb.q.InsightCompactSummaries(context.Background(), tb.pool)
	require.NoError(t, err)
	require.Zero(t, tb.count(t, "SELECT count(*) FROM reviewer_summary_deltas"))
	requireReviewerSummaryMatch(t, tb, "compacted")
}

// rerunSummaryMigration rolls the database back to before the summaries'
// migration (found by name: the merger may renumber it) and up again.
func rerunSummaryMigration(t *testing.T, tb *testBundle) {
	t.Helper()
	ctx := context.Background()
	names, err := fs.Glob(migrations.FS(), "*_insight_summaries.sql")
	require.NoError(t, err)
	require.Len(t, names, 1)
	v, err := strconv.ParseInt(strings.SplitN(names[0], "_", 2)[0], 10, 64)
	require.NoError(t, err)
	db := stdlib.OpenDBFromPool(tb.pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS())
	require.NoError(t, err)
	_, err = p.DownTo(ctx, v-1)
	require.NoError(t, err)
	require.Zero(t, tb.count(t, "SELECT count(*) FROM pg_tables WHERE tablename = 'proposal_summary'"))
	_, err = p.Up(ctx)
	require.NoError(t, err)
}
