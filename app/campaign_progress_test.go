package app

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
)

// TestCampaignProgress: a campaign counts the photos uploaded into it,
// accepted and reviewed, shows them in a part of its page that refreshes
// itself while it is open, and closes itself once it has as many accepted
// photos as it asked for.
func TestCampaignProgress(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	admin, _ := tb.userWithRole(t, "admin@example.com", auth.RoleAdmin)
	res := admin.json(http.MethodPost, "/api/v1/campaigns", map[string]any{
		"title": "More bicycles", "labels": []string{"bicycle"}, "target_count": 2,
		"closes_at": time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339),
	})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	id := res.json(t)["campaign"].(map[string]any)["id"].(string)

	c, _ := tb.userWithRole(t, "c@example.com", auth.RoleContributor)
	doc := c.get("/campaigns/" + id + "/progress").doc(t)
	require.Equal(t, "/campaigns/"+id+"/progress", doc.Find("#progress-"+id).AttrOr("hx-get", ""), "open: it refreshes itself")
	require.Contains(t, doc.Find(".figures").Text(), "0 uploaded · 0 accepted · 0 reviewed · 0 instances")

	res = c.upload(photos(1, 70), map[string][]string{"campaign_id": {id}, "labels": {"bicycle"}})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	c.waitStatus(res.json(t)["results"].([]any)[0].(map[string]any)["image"].(map[string]any)["id"].(string))
	camp := c.get("/api/v1/campaigns").json(t)["items"].([]any)[0].(map[string]any)
	require.Equal(t, map[string]any{"uploads": 1.0, "accepted": 1.0, "reviewed": 0.0, "instances": 0.0}, camp["progress"])
	require.Equal(t, true, camp["open"], "one of two")

	res = c.upload(photos(1, 80), map[string][]string{"campaign_id": {id}, "labels": {"bicycle"}})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	c.waitStatus(res.json(t)["results"].([]any)[0].(map[string]any)["image"].(map[string]any)["id"].(string))
	camp = c.get("/api/v1/campaigns").json(t)["items"].([]any)[0].(map[string]any)
	require.Equal(t, false, camp["open"], "closed at its target")
	require.EqualValues(t, 2, camp["progress"].(map[string]any)["accepted"])
	doc = c.get("/campaigns/" + id + "/progress").doc(t)
	require.Empty(t, doc.Find("#progress-"+id).AttrOr("hx-get", ""), "closed: it stops refreshing")
	require.Contains(t, doc.Find(".figures").Text(), "closed")
	require.Equal(t, "2", c.get("/campaigns").doc(t).Find("#campaign-"+id+" progress").AttrOr("value", ""))
	require.Equal(t, http.StatusNotFound, c.get("/campaigns/00000000-0000-0000-0000-000000000001/progress").StatusCode)
}
