package app

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/queries"
)

// pageAll walks a list with ?limit=per and returns field of every item,
// failing after 100 pages (a cursor that never ends).
func pageAll(t *testing.T, c *client, path string, per int, field string) []string {
	t.Helper()
	var seen []string
	next := ""
	for range 100 {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		p := path + sep + "limit=" + strconv.Itoa(per)
		if next != "" {
			p += "&cursor=" + next
		}
		res := c.get(p)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
		m := res.json(t)
		items := m["items"].([]any)
		require.LessOrEqual(t, len(items), per)
		for _, it := range items {
			seen = append(seen, it.(map[string]any)[field].(string))
		}
		if m["next_cursor"] == nil {
			return seen
		}
		next = m["next_cursor"].(string)
	}
	t.Fatalf("%s never ended", path)
	return nil
}

// Labels, datasets and campaigns page like images: limit 1–500 (400 naming limit
// beyond), default 50, keyset cursors that visit each item once in order.
func TestListPagingLabelsDatasetsCampaigns(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	admin := tb.client(t)
	admin.signup("ada@example.com", "Ada")
	ctx := context.Background()

	rows, err := tb.pool.Query(ctx, `SELECT name FROM labels ORDER BY name`)
	require.NoError(t, err)
	want, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Greater(t, len(want), 50, "the seeded taxonomy spans pages")
	require.Equal(t, want, pageAll(t, admin, "/api/v1/labels", 7, "name"))
	m := admin.get("/api/v1/labels").json(t)
	require.Len(t, m["items"], 50, "default limit")
	require.NotNil(t, m["next_cursor"])

	for _, n := range []string{"beta", "Alpha", "gamma", "Delta", "epsilon"} {
		res := admin.json(http.MethodPost, "/api/v1/datasets", map[string]any{"name": n})
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	}
	require.Equal(t, []string{"Alpha", "beta", "Delta", "epsilon", "gamma"}, pageAll(t, admin, "/api/v1/datasets", 2, "name"))

	// Campaigns: open ones first by priority and closing date, then closed
	// ones newest first, the order of the unpaged list the pages show.
	for i, p := range []int{0, 2, 0, 1, 2, 0} {
		res := admin.json(http.MethodPost, "/api/v1/campaigns", map[string]any{
			"title": "c" + strconv.Itoa(i), "labels": []string{"cat"}, "target_count": 10, "priority": p,
			"closes_at": time.Now().Add(time.Duration(24*(1+i%3)) * time.Hour).UTC().Format(time.RFC3339),
		})
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	}
	_, err = tb.pool.Exec(ctx, `UPDATE campaigns SET closes_at = now() - interval '1 hour' WHERE title IN ('c1', 'c3')`)
	require.NoError(t, err)
	all, err := queries.New().CampaignList(ctx, tb.pool, queries.CampaignListParams{})
	require.NoError(t, err)
	var wantCamps []string
	for _, c := range all {
		wantCamps = append(wantCamps, c.Title)
	}
	require.Len(t, wantCamps, 6)
	require.ElementsMatch(t, []string{"c1", "c3"}, wantCamps[4:], "closed ones last")
	require.Equal(t, wantCamps, pageAll(t, admin, "/api/v1/campaigns", 2, "title"))
	require.Equal(t, wantCamps[:4], pageAll(t, admin, "/api/v1/campaigns?open=true", 3, "title"))

	for _, path := range []string{"/api/v1/labels", "/api/v1/datasets", "/api/v1/campaigns"} {
		for _, q := range []string{"?limit=501", "?limit=0", "?limit=x"} {
			res := admin.get(path + q)
			require.Equal(t, http.StatusBadRequest, res.StatusCode, path+q)
			_, f := res.apiError(t)
			require.Equal(t, "limit", f)
		}
		res := admin.get(path + "?cursor=garbage")
		require.Equal(t, http.StatusBadRequest, res.StatusCode)
		_, f := res.apiError(t)
		require.Equal(t, "cursor", f)
	}
}
