package review

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/dbtest"
)

// queueOrder is the review queue's order as one query over the image's
// campaign, the way it was first written: the reference the indexed
// leases must follow item for item.
const queueOrder = `
SELECT r.id, r.image_id
FROM review_items r
JOIN images i ON i.id = r.image_id
LEFT JOIN campaigns c ON c.id = i.campaign_id AND c.closes_at > now()
WHERE r.done_at IS NULL
  AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= now())
  AND (r.excluded_user IS NULL OR r.excluded_user <> $1)
  AND ($2::uuid IS NULL OR EXISTS (SELECT 1 FROM image_labels il WHERE il.image_id = r.image_id AND il.label_id = $2))
  AND ($3::uuid IS NULL OR i.campaign_id = $3)
ORDER BY (c.id IS NOT NULL) DESC, c.priority DESC NULLS LAST, coalesce(r.model_agreement, 1) ASC,
         r.confidence ASC NULLS LAST, r.created_at, r.id`

// TestQueueOrder: on a queue of items in open campaigns of equal and
// different priorities, a closed campaign and none, with ties in
// agreement, confidence and age, items leased by others (live and
// expired), done, and kept from the reviewer, every lease (and the items
// Upcoming names beforehand) follows queueOrder, for each filter, until
// nothing waits. The items are written without their campaign, as every
// writer does: the trigger fills it in.
func TestQueueOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := pool.Exec(ctx, sql, args...)
		require.NoError(t, err, "%.80s", sql)
	}
	var owner, me, other uuid.UUID
	for _, u := range []*uuid.UUID{&owner, &me, &other} {
		require.NoError(t, pool.QueryRow(ctx, `INSERT INTO users (email, name, password_hash, role)
			VALUES (gen_random_uuid() || '@example.com', 'u', 'x', 'reviewer') RETURNING id`).Scan(u))
	}
	labels := map[string]uuid.UUID{}
	for _, name := range []string{"cat", "dog"} {
		var id uuid.UUID
		require.NoError(t, pool.QueryRow(ctx, `INSERT INTO labels (name, display_name) VALUES ($1, $1)
			ON CONFLICT (name) DO UPDATE SET display_name = EXCLUDED.display_name RETURNING id`, name).Scan(&id))
		labels[name] = id
	}
	campaign := func(priority int, open bool) uuid.UUID {
		closes := time.Now().Add(24 * time.Hour)
		if !open {
			closes = time.Now().Add(-time.Hour)
		}
		var id uuid.UUID
		require.NoError(t, pool.QueryRow(ctx, `INSERT INTO campaigns (title, target_count, priority, closes_at, created_by)
			VALUES ('c', 10, $1, $2, $3) RETURNING id`, priority, closes, owner).Scan(&id))
		return id
	}
	high1, high2, low, closed := campaign(5, true), campaign(5, true), campaign(1, true), campaign(9, false)
	campaigns := []*uuid.UUID{&high1, &high2, &low, &closed, nil}

	rng := rand.New(rand.NewPCG(17, 4))
	pick := func(n int) int { return rng.IntN(n) }
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	for k := range 120 {
		image := uuid.New()
		var c *uuid.UUID
		if p := campaigns[pick(len(campaigns))]; p != nil {
			c = p
		}
		exec(`INSERT INTO images (id, upload_sha256, sha256, owner_id, filename, content_type, byte_size, width, height, status, campaign_id)
			VALUES ($1, sha256($2::bytea), sha256($2::bytea || '\x01'::bytea), $3, 'x.jpg', 'image/jpeg', 1, 8, 8, 'awaiting_review', $4)`,
			image, image[:], owner, c)
		for name, id := range labels {
			if pick(2) == 0 || name == "cat" && k%3 == 0 {
				exec(`INSERT INTO image_labels (image_id, label_id, added_by) VALUES ($1, $2, $3)`, image, id, owner)
			}
		}
		confidence := []*float32{nil, ptr[float32](0.1), ptr[float32](0.5), ptr[float32](0.9)}[pick(4)]
		agreement := []*float32{nil, ptr[float32](0.2), ptr[float32](0.7), ptr[float32](1)}[pick(4)]
		created := base.Add(time.Duration(pick(4)) * time.Minute)
		var excluded *uuid.UUID
		if pick(8) == 0 {
			excluded = &me
		}
		exec(`INSERT INTO review_items (image_id, kind, confidence, model_agreement, created_at, excluded_user)
			VALUES ($1, $2, $3, $4, $5, $6)`,
			image, []string{"first", "second"}[pick(2)], confidence, agreement, created, excluded)
		switch pick(10) {
		case 0: // another reviewer holds it
			exec(`UPDATE review_items SET leased_by = $2, leased_at = now(), lease_expires_at = now() + interval '1 hour' WHERE image_id = $1`, image, other)
		case 1: // their lease ran out: free again
			exec(`UPDATE review_items SET leased_by = $2, leased_at = now() - interval '2 hours', lease_expires_at = now() - interval '1 hour' WHERE image_id = $1`, image, other)
		case 2:
			exec(`UPDATE review_items SET done_by = $2, done_at = now() WHERE image_id = $1`, image, other)
		}
	}
	require.Zero(t, countRows(t, pool, `SELECT count(*) FROM review_items r JOIN images i ON i.id = r.image_id
		WHERE r.campaign_id IS DISTINCT FROM i.campaign_id`), "the trigger sets each item's campaign")

	s := NewService(pool, nil, Settings{Lease: time.Hour, MaxInstances: 10})
	cat, dog := labels["cat"], labels["dog"]
	filters := []struct {
		name string
		f    Filter
	}{
		// Each leases every item it matches; the last, everything left.
		{"a closed campaign", Filter{CampaignID: &closed}},
		{"an open campaign and a label", Filter{CampaignID: &low, LabelID: &dog}},
		{"a label", Filter{LabelID: &cat}},
		{"an open campaign", Filter{CampaignID: &high1}},
		{"none", Filter{}},
	}
	leased := 0
	for _, tc := range filters {
		t.Run(tc.name, func(t *testing.T) {
			for step := 0; ; step++ {
				want := reference(t, pool, me, tc.f)
				up, err := s.Upcoming(ctx, me, tc.f, 5)
				require.NoError(t, err)
				var wantUp []uuid.UUID
				for _, w := range want[:min(5, len(want))] {
					wantUp = append(wantUp, w[1])
				}
				require.Equal(t, wantUp, up, "upcoming before lease %d", step)
				item, ok, err := s.Next(ctx, me, tc.f)
				require.NoError(t, err)
				if len(want) == 0 {
					require.False(t, ok, "nothing waits, yet %s was leased", item.ID)
					require.Positive(t, step, "the filter matched something")
					return
				}
				require.True(t, ok, "lease %d: %d items wait", step, len(want))
				require.Equal(t, want[0][0], item.ID, "lease %d", step)
				leased++
			}
		})
	}
	require.Zero(t, countRows(t, pool, `SELECT count(*) FROM review_items WHERE done_at IS NULL
		AND (lease_expires_at IS NULL OR lease_expires_at <= now()) AND excluded_user IS DISTINCT FROM $1`, me),
		"every item the reviewer may take was leased")
	require.Greater(t, leased, 60)
}

// reference is queueOrder's (item, image) pairs for reviewer and f.
func reference(t *testing.T, pool *pgxpool.Pool, reviewer uuid.UUID, f Filter) [][2]uuid.UUID {
	t.Helper()
	rows, err := pool.Query(context.Background(), queueOrder, reviewer, f.LabelID, f.CampaignID)
	require.NoError(t, err)
	defer rows.Close()
	var out [][2]uuid.UUID
	for rows.Next() {
		var p [2]uuid.UUID
		require.NoError(t, rows.Scan(&p[0], &p[1]))
		out = append(out, p)
	}
	require.NoError(t, rows.Err())
	return out
}

func countRows(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), sql, args...).Scan(&n), fmt.Sprintf("%.60s", sql))
	return n
}

func ptr[T any](v T) *T { return &v }
