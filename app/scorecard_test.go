package app

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/config"
)

// TestReviewerScorecards checks the figures of /review/stats and its CSV:
// items per hour from the time the review page reports, and from the lease
// when a client (a script using the API) reports none, which used to count
// as no time at all and print 0.0; what each reviewer made of the
// proposals; and that a reviewer sees only their own row.
func TestReviewerScorecards(t *testing.T) {
	t.Parallel()
	tb := setup(t, func(c *config.Config) { c.SecondReviewShare = 0 })
	_, owner := tb.userWithRole(t, "owner@example.com", auth.RoleContributor)
	ann, _ := tb.userWithRole(t, "ann@example.com", auth.RoleReviewer)
	bob, _ := tb.userWithRole(t, "bob@example.com", auth.RoleReviewer)
	admin, _ := tb.userWithRole(t, "admin@example.com", auth.RoleAdmin)
	for range 3 {
		seedReview(t, tb, owner.ID, 4, 0.5)
	}
	// submit reviews the next item: the first `accept` proposals kept as
	// they are, the next one corrected, the rest rejected.
	submit := func(c *client, accept int, spent *int) string {
		t.Helper()
		status, item := next(t, c)
		require.Equal(t, http.StatusOK, status)
		props := item["proposals"].([]any)
		var instances []map[string]any
		var rejected []any
		for i, p := range props {
			p := p.(map[string]any)
			switch {
			case i < accept:
				instances = append(instances, map[string]any{"proposal_id": p["id"], "label": "cat", "mask": p["mask"]})
			case i == accept:
				instances = append(instances, map[string]any{"proposal_id": p["id"], "label": "cat", "mask": rect(60, 80, 0, 0, 40, 40)})
			default:
				rejected = append(rejected, p["id"])
			}
		}
		body := map[string]any{"instances": instances, "rejected_proposals": rejected}
		if spent != nil {
			body["time_spent_ms"] = *spent
		}
		id := item["item_id"].(string)
		res := c.json(http.MethodPost, "/api/v1/review/"+id, body)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
		return id
	}
	one, two := 60000, 120000
	submit(ann, 2, &one) // 2 accepted, 1 corrected, 1 rejected
	submit(ann, 4, &two) // 4 accepted
	// Bob's script says nothing of time: 90 s from lease to submission.
	status, item := next(t, bob)
	require.Equal(t, http.StatusOK, status)
	_, err := tb.pool.Exec(context.Background(), `UPDATE review_items SET leased_at = now() - interval '90 seconds' WHERE id = $1`, item["item_id"])
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, bob.json(http.MethodPost, "/api/v1/review/"+item["item_id"].(string),
		map[string]any{"instances": []any{}, "rejected_proposals": []any{
			item["proposals"].([]any)[0].(map[string]any)["id"], item["proposals"].([]any)[1].(map[string]any)["id"],
			item["proposals"].([]any)[2].(map[string]any)["id"], item["proposals"].([]any)[3].(map[string]any)["id"],
		}}).StatusCode)
	var bobMS int
	require.NoError(t, tb.pool.QueryRow(context.Background(), `SELECT time_spent_ms FROM review_items WHERE id = $1`, item["item_id"]).Scan(&bobMS))
	require.InDelta(t, 90000, bobMS, 5000, "measured from the lease")

	doc := admin.get("/review/stats").doc(t)
	row := func(email string) func(string) string {
		return func(cell string) string {
			return doc.Find(fmt.Sprintf(`#reviewer-stats tr[data-email="%s"] td.%s`, email, cell)).Text()
		}
	}
	a, b := row("ann@example.com"), row("bob@example.com")
	require.Equal(t, "2", a("items"))
	require.Equal(t, "40.0", a("per-hour"), "2 items in 3 minutes")
	require.Equal(t, "6 / 1 / 1", a("verdicts"))
	require.Equal(t, "75%", a("acceptance"))
	require.Contains(t, a("agreement"), "no second review yet")
	require.Equal(t, "1", b("items"))
	require.Equal(t, fmt.Sprintf("%.1f", 3.6e6/float64(bobMS)), b("per-hour"))
	require.Equal(t, "0 / 0 / 4", b("verdicts"))
	require.Equal(t, "0%", b("acceptance"))
	require.Equal(t, "/review/stats.csv", doc.Find("#stats-csv").AttrOr("href", ""))

	res := admin.get("/review/stats.csv")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "text/csv; charset=utf-8", res.Header.Get("Content-Type"))
	rows, err := csv.NewReader(bytes.NewReader(res.body)).ReadAll()
	require.NoError(t, err)
	require.Equal(t, []string{"reviewer", "email", "items", "hours", "items_per_hour", "proposals_accepted", "proposals_corrected",
		"proposals_rejected", "acceptance_rate", "second_reviews", "agreement"}, rows[0])
	require.Len(t, rows, 3)
	require.Equal(t, []string{"ann", "ann@example.com", "2", "0.0500", "40.0", "6", "1", "1", "0.7500", "0", ""}, rows[1], "most items first")
	require.Equal(t, "bob@example.com", rows[2][1])
	require.Equal(t, "0.0000", rows[2][8])

	own, err := csv.NewReader(bytes.NewReader(bob.get("/review/stats.csv").body)).ReadAll()
	require.NoError(t, err)
	require.Len(t, own, 2, "a reviewer gets their own row only")
	require.Equal(t, "bob@example.com", own[1][1])
	contributor, _ := tb.userWithRole(t, "carl@example.com", auth.RoleContributor)
	require.Equal(t, http.StatusForbidden, contributor.get("/review/stats.csv").StatusCode)
}
