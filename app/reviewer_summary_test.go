package app

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/config"
	"github.com/deepimageshub/imagehub/queries"
)

// TestReviewerSummaryRandomMix: after every step of a random mix of the
// writes that change review items and verdicts (images arriving for
// review, first reviews through the API keeping, redrawing, relabelling
// or rejecting proposals, blind second reviews agreeing more or less,
// leases taken and given back or left, imported first reviews, deleted
// images, proposals and review items, the summaries folded in), the
// scorecards read from reviewer_summary equal the full count, for everyone
// and for each reviewer alone, and the CSV of /review/stats shows the
// full count's items. IMAGEHUB_TEST_SEED replays a failing mix.
func TestReviewerSummaryRandomMix(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("IMAGEHUB_TEST_SEED"); v != "" {
		var err error
		seed, err = strconv.ParseUint(v, 10, 64)
		require.NoError(t, err)
	}
	t.Logf("IMAGEHUB_TEST_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, 12))

	tb := setup(t, func(c *config.Config) { c.SecondReviewShare = 1; c.SecondReviewMinAgreement = 0.7 })
	ctx := context.Background()
	_, owner := tb.userWithRole(t, "owner@example.com", auth.RoleContributor)
	admin, adminUser := tb.userWithRole(t, "admin@example.com", auth.RoleAdmin)
	clients := []*client{admin}
	users := []uuid.UUID{adminUser.ID}
	for i := range 3 {
		c, u := tb.userWithRole(t, fmt.Sprintf("rev%d@example.com", i), auth.RoleReviewer)
		clients = append(clients, c)
		users = append(users, u.ID)
	}
	for range 4 {
		seedReview(t, tb, owner.ID, 1+rng.IntN(4), rng.Float32())
	}

	// pick returns one id the query finds, at random, or false.
	pick := func(sql string) (uuid.UUID, bool) {
		t.Helper()
		var ids []uuid.UUID
		require.NoError(t, tb.pool.QueryRow(ctx, `SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM (`+sql+`) s`).Scan(&ids))
		if len(ids) == 0 {
			return uuid.Nil, false
		}
		return ids[rng.IntN(len(ids))], true
	}
	// review leases reviewer c's next item and submits it.
	review := func(c *client) string {
		t.Helper()
		status, item := next(t, c)
		if status == http.StatusNoContent {
			return "nothing to review"
		}
		require.Equal(t, http.StatusOK, status)
		instances, rejected := []any{}, []any{}
		if item["kind"] == "second" {
			// A cat over the proposals' place or beside it: the agreement
			// with the first review varies, some second reviews flagged.
			x := rng.IntN(40)
			instances = append(instances, map[string]any{"label": "cat", "mask": rect(60, 80, x, 3, x+20, 30)})
		} else {
			for _, p := range item["proposals"].([]any) {
				p := p.(map[string]any)
				switch rng.IntN(4) {
				case 0:
					instances = append(instances, map[string]any{"proposal_id": p["id"], "label": "cat", "mask": p["mask"]})
				case 1:
					instances = append(instances, map[string]any{"proposal_id": p["id"], "label": "cat", "mask": rect(60, 80, 5, 5, 40, 40)})
				case 2:
					instances = append(instances, map[string]any{"proposal_id": p["id"], "label": "dog", "mask": p["mask"]})
				default:
					rejected = append(rejected, p["id"])
				}
			}
			if rng.IntN(3) == 0 {
				instances = append(instances, map[string]any{"label": "dog", "mask": rect(60, 80, 50, 40, 70, 55)})
			}
		}
		body := map[string]any{"instances": instances, "rejected_proposals": rejected}
		if rng.IntN(3) > 0 {
			body["time_spent_ms"] = 1000 + rng.IntN(120000)
		}
		res := c.json(http.MethodPost, "/api/v1/review/"+item["item_id"].(string), body)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
		return fmt.Sprintf("%s review of %s", item["kind"], item["item_id"])
	}

	steps := []func() string{
		func() string {
			f := seedReview(t, tb, owner.ID, 1+rng.IntN(4), rng.Float32())
			return "an image waiting for review " + f.image.String()
		},
		func() string { return review(clients[rng.IntN(len(clients))]) },
		func() string { return review(clients[rng.IntN(len(clients))]) },
		func() string { return review(clients[rng.IntN(len(clients))]) },
		func() string {
			// A lease given back, or left to expire: neither counts.
			c := clients[rng.IntN(len(clients))]
			status, item := next(t, c)
			if status != http.StatusOK {
				return "no lease"
			}
			id := item["item_id"].(string)
			if rng.IntN(2) == 0 {
				require.Equal(t, http.StatusNoContent, c.json(http.MethodPost, "/api/v1/review/"+id+"/release", map[string]any{}).StatusCode)
				return "lease given back " + id
			}
			_, err := tb.pool.Exec(ctx, `UPDATE review_items SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, id)
			require.NoError(t, err)
			return "lease expired " + id
		},
		func() string {
			// An import's first review, over an item waiting (the upsert's
			// update) or of an image that has none (its insert).
			done := users[rng.IntN(len(users))]
			img, ok := pick(`SELECT image_id AS id FROM review_items WHERE kind = 'first' AND done_at IS NULL`)
			if !ok || rng.IntN(2) == 0 {
				f := seedReview(t, tb, owner.ID, 1+rng.IntN(3), rng.Float32())
				_, err := tb.pool.Exec(ctx, `DELETE FROM review_items WHERE id = $1`, f.item)
				require.NoError(t, err)
				img = f.image
			}
			_, err := tb.q.ReviewFirstImported(ctx, tb.pool, queries.ReviewFirstImportedParams{ImageID: img, DoneBy: &done})
			require.NoError(t, err)
			return "imported first review of " + img.String()
		},
		func() string {
			img, ok := pick(`SELECT image_id AS id FROM review_items WHERE done_at IS NOT NULL`)
			if !ok {
				return "no image to delete"
			}
			_, err := tb.pool.Exec(ctx, `DELETE FROM images WHERE id = $1`, img)
			require.NoError(t, err)
			return "image deleted " + img.String()
		},
		func() string {
			p, ok := pick(`SELECT proposal_id AS id FROM proposal_verdicts`)
			if !ok {
				return "no proposal to delete"
			}
			_, err := tb.pool.Exec(ctx, `DELETE FROM proposals WHERE id = $1`, p)
			require.NoError(t, err)
			return "proposal deleted " + p.String()
		},
		func() string {
			// A second review deleted, or a first with none waiting (its
			// verdicts with it; the second review of its image then counts
			// for no first reviewer).
			r, ok := pick(`SELECT r.id FROM review_items r WHERE r.done_at IS NOT NULL
				AND NOT EXISTS (SELECT 1 FROM review_items s
				                WHERE s.image_id = r.image_id AND s.kind = 'second' AND s.done_at IS NULL)`)
			if !ok {
				return "no review item to delete"
			}
			_, err := tb.pool.Exec(ctx, `DELETE FROM review_items WHERE id = $1`, r)
			require.NoError(t, err)
			return "review item deleted " + r.String()
		},
		func() string {
			_, err := tb.q.InsightCompactSummaries(ctx, tb.pool)
			require.NoError(t, err)
			return "summaries folded in"
		},
	}
	for i := range 80 {
		step := steps[rng.IntN(len(steps))]()
		requireReviewerSummaryMatch(t, tb, fmt.Sprintf("step %d, %s", i, step))
	}
	// Then the queue emptied, so that the mix ends with second reviews.
	for range 3 {
		seedReview(t, tb, owner.ID, 2, rng.Float32())
	}
	for i, idle := 0, 0; idle < len(clients); i++ {
		c := clients[i%len(clients)]
		step := review(c)
		if step == "nothing to review" {
			idle++
			continue
		}
		idle = 0
		requireReviewerSummaryMatch(t, tb, fmt.Sprintf("closing review %d, %s", i, step))
	}
	require.Positive(t, tb.count(t, `SELECT count(*) FROM review_items WHERE kind = 'second' AND done_at IS NOT NULL`),
		"the mix holds second reviews")
	require.Positive(t, tb.count(t, `SELECT count(*) FROM proposal_verdicts`), "the mix holds verdicts")

	// What a user reads: the CSV's items are the full count's.
	slow, err := tb.q.ReviewerStatsFullCount(ctx, tb.pool, nil)
	require.NoError(t, err)
	want := map[string]string{}
	for _, r := range slow {
		want[r.Email] = strconv.Itoa(int(r.Items))
	}
	res := admin.get("/review/stats.csv")
	require.Equal(t, http.StatusOK, res.StatusCode)
	rows, err := csv.NewReader(bytes.NewReader(res.body)).ReadAll()
	require.NoError(t, err)
	got := map[string]string{}
	for _, r := range rows[1:] {
		got[r[1]] = r[2]
	}
	require.Equal(t, want, got)
}
