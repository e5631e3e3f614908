package app

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
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

// TestUploadPageOpenCampaigns: the upload page opens with the open
// campaigns, in the campaigns list's order (highest priority first), each
// with its labels, progress and closing date and a link that opens the
// form with it chosen; a closed campaign is neither listed nor offered.
func TestUploadPageOpenCampaigns(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	admin, _ := tb.userWithRole(t, "admin@example.com", auth.RoleAdmin)
	closes := time.Now().Add(72 * time.Hour).UTC().Truncate(time.Second)
	create := func(title string, priority int, labels ...string) string {
		t.Helper()
		res := admin.json(http.MethodPost, "/api/v1/campaigns", map[string]any{
			"title": title, "labels": labels, "target_count": 4, "priority": priority,
			"closes_at": closes.Format(time.RFC3339),
		})
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
		return res.json(t)["campaign"].(map[string]any)["id"].(string)
	}
	low := create("More bicycles", 0, "bicycle")
	high := create("More cats and dogs", 5, "cat", "dog")
	closed := create("Old campaign", 9, "person")
	_, err := tb.pool.Exec(context.Background(), `UPDATE campaigns SET closes_at = now() - interval '1 hour' WHERE id = $1`, closed)
	require.NoError(t, err)

	c, _ := tb.userWithRole(t, "c@example.com", auth.RoleContributor)
	res := c.upload(photos(1, 90), map[string][]string{"campaign_id": {low}, "labels": {"bicycle"}})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)

	doc := c.get("/upload").doc(t)
	require.Equal(t, 1, doc.Find("h1 + #open-campaigns").Length(), "the campaigns come first, before the form")
	cards := doc.Find("#open-campaigns li.campaign")
	var ids []string
	cards.Each(func(_ int, s *goquery.Selection) { ids = append(ids, s.AttrOr("data-campaign-id", "")) })
	require.Equal(t, []string{high, low}, ids, "by priority; the closed one is not there")
	first := cards.First()
	require.Equal(t, "More cats and dogs", first.Find("h3").Text())
	require.Equal(t, "cat, dog", first.Find(".labels").Text())
	require.Equal(t, "closes "+closes.Format("2 Jan 2006"), first.Find(".closes").Text())
	require.Equal(t, "0 of 4 images (0%)", first.Find(".progress-text").Text())
	second := cards.Eq(1)
	require.Equal(t, "1 of 4 images (25%)", second.Find(".progress-text").Text())
	require.Equal(t, "1", second.Find("progress").AttrOr("value", ""))
	require.Equal(t, "/upload?campaign_id="+low, second.Find("a.button").AttrOr("href", ""))
	require.Zero(t, doc.Find(`#campaign_id option[value="`+closed+`"]`).Length())
	require.Zero(t, doc.Find("#open-campaigns .chosen").Length())

	// The card's link opens the form with that campaign chosen.
	doc = c.get(second.Find("a.button").AttrOr("href", "")).doc(t)
	require.Equal(t, low, doc.Find("#campaign_id option[selected]").AttrOr("value", ""))
	require.Equal(t, low, doc.Find("#open-campaigns li.chosen").AttrOr("data-campaign-id", ""))
	require.Zero(t, doc.Find("#open-campaigns li.chosen a").Length())

	// With no open campaign, the page is the form alone.
	_, err = tb.pool.Exec(context.Background(), `UPDATE campaigns SET closes_at = now() - interval '1 hour'`)
	require.NoError(t, err)
	doc = c.get("/upload").doc(t)
	require.Zero(t, doc.Find("#open-campaigns").Length())
	require.Equal(t, 1, doc.Find("h1 ~ #upload-form").Length())
}
