package app

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/browsertest"
	"github.com/deepimageshub/imagehub/dataset/datasettest"
	"github.com/deepimageshub/imagehub/lifecycle"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/worker"
)

// modWorld is a server with a contributor's flagged photos and a model
// that proposes.
type modWorld struct {
	*testBundle
	fx                    *datasettest.Fixture
	reviewer, contributor *client
	owner                 queries.User
}

func newModWorld(t *testing.T) *modWorld {
	t.Helper()
	tb := setup(t)
	w := &modWorld{testBundle: tb, fx: datasettest.New(t, tb.pool, tb.blobs)}
	w.reviewer, _ = tb.userWithRole(t, "rev@example.com", auth.RoleReviewer)
	w.contributor, w.owner = tb.userWithRole(t, "ann@example.com", auth.RoleContributor)
	return w
}

// flagged stores a photo of the contributor's that ingest flagged.
func (w *modWorld) flagged(t *testing.T, reason string, twin *uuid.UUID) datasettest.Image {
	t.Helper()
	img := w.fx.Image(datasettest.ImageOpts{Status: "flagged", NearDuplicateOf: twin, W: 320, H: 240})
	ctx := context.Background()
	_, err := w.pool.Exec(ctx, `UPDATE images SET reason = $2, owner_id = $3 WHERE id = $1`, img.ID, reason, w.owner.ID)
	require.NoError(t, err)
	_, err = w.pool.Exec(ctx, `INSERT INTO image_uploads (image_id, user_id, filename) VALUES ($1, $2, 'mine.jpg')`, img.ID, w.owner.ID)
	require.NoError(t, err)
	return img
}

func (w *modWorld) status(t *testing.T, id uuid.UUID) (string, string) {
	t.Helper()
	img := w.contributor.get("/api/v1/images/" + id.String()).json(t)
	reason, _ := img["reason"].(string)
	return img["status"].(string), reason
}

// TestModeration: the queue lists flagged photos with the photo each
// resembles, narrowed by reason; approving one sends it to inference and
// review as ingest would; rejecting one gives its contributor the reason;
// a second decision is a 409; bad input a 400 naming the field; only
// reviewers and admins may look.
func TestModeration(t *testing.T) {
	t.Parallel()
	w := newModWorld(t)
	admin, _ := w.userWithRole(t, "admin@example.com", auth.RoleAdmin)
	srv := httptest.NewServer(worker.New(worker.Config{Synthetic: true}))
	t.Cleanup(srv.Close)
	res := admin.json(http.MethodPost, "/api/v1/models", map[string]any{"name": "imagehub-segmenter", "endpoints": []string{srv.URL}, "enabled": true})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)

	original := w.fx.Image(datasettest.ImageOpts{W: 320, H: 240})
	near := w.flagged(t, lifecycle.ReasonNearDuplicate, &original.ID)
	blurry := w.flagged(t, "The photo looks blurry; a person will check whether it is usable.", nil)

	list := w.reviewer.get("/api/v1/moderation")
	require.Equal(t, http.StatusOK, list.StatusCode, "%s", list.body)
	items := list.json(t)["items"].([]any)
	require.Len(t, items, 2)
	first := items[0].(map[string]any)
	require.Equal(t, near.ID.String(), first["image"].(map[string]any)["id"], "oldest first")
	require.Equal(t, lifecycle.ReasonNearDuplicate, first["reason"])
	require.Equal(t, []any{"near_duplicate"}, first["flags"])
	require.Equal(t, original.ID.String(), first["near_duplicate_of"].(map[string]any)["id"])
	require.NotContains(t, items[1].(map[string]any), "near_duplicate_of")
	for reason, want := range map[string]string{"near_duplicate": near.ID.String(), "blurry": blurry.ID.String()} {
		items := w.reviewer.get("/api/v1/moderation?reason=" + reason).json(t)["items"].([]any)
		require.Len(t, items, 1, reason)
		require.Equal(t, want, items[0].(map[string]any)["image"].(map[string]any)["id"], reason)
	}
	require.Empty(t, w.reviewer.get("/api/v1/moderation?reason=dark").json(t)["items"])
	res = w.reviewer.get("/api/v1/moderation?reason=ugly")
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	_, f := res.apiError(t)
	require.Equal(t, "reason", f)
	page := w.reviewer.get("/api/v1/moderation?limit=1").json(t)
	require.Len(t, page["items"], 1)
	page = w.reviewer.get("/api/v1/moderation?limit=1&cursor=" + page["next_cursor"].(string)).json(t)
	require.Equal(t, blurry.ID.String(), page["items"].([]any)[0].(map[string]any)["image"].(map[string]any)["id"])

	// Bad input changes nothing.
	for field, body := range map[string]map[string]any{
		"decision": {"decision": "maybe"},
		"reason":   {"decision": "reject", "reason": strings.Repeat("x", lifecycle.MaxReasonLength+1)},
	} {
		res := w.reviewer.json(http.MethodPost, "/api/v1/moderation/"+near.ID.String(), body)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s", res.body)
		_, f := res.apiError(t)
		require.Equal(t, field, f)
	}
	res = w.reviewer.json(http.MethodPost, "/api/v1/moderation/"+near.ID.String(), map[string]any{})
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	require.Equal(t, http.StatusNotFound, w.reviewer.json(http.MethodPost, "/api/v1/moderation/"+uuid.NewString(), map[string]any{"decision": "approve"}).StatusCode)
	st, _ := w.status(t, near.ID)
	require.Equal(t, "flagged", st)

	// Only reviewers and admins.
	require.Equal(t, http.StatusForbidden, w.contributor.get("/api/v1/moderation").StatusCode)
	require.Equal(t, http.StatusForbidden, w.contributor.get("/admin/moderation").StatusCode)
	require.Equal(t, http.StatusForbidden, w.contributor.json(http.MethodPost, "/api/v1/moderation/"+near.ID.String(), map[string]any{"decision": "approve"}).StatusCode)
	require.Equal(t, http.StatusOK, admin.get("/api/v1/moderation").StatusCode)

	// Approve: on to the model and to review, as if it had passed ingest.
	recordEvents(t, w.pool)
	res = w.reviewer.json(http.MethodPost, "/api/v1/moderation/"+near.ID.String(), map[string]any{"decision": "approve"})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	require.Equal(t, "awaiting_inference", res.json(t)["image"].(map[string]any)["status"])
	require.Equal(t, []string{"image.accepted"}, emitted(t, w.pool))
	require.Eventually(t, func() bool { st, _ := w.status(t, near.ID); return st == "awaiting_review" }, 30*time.Second, 50*time.Millisecond)
	img := w.contributor.get("/api/v1/images/" + near.ID.String()).json(t)
	require.Len(t, img["proposals"], 1)
	require.Nil(t, img["reason"], "no reason once it passed")
	require.Equal(t, 1, w.count(t, fmt.Sprintf("SELECT count(*) FROM review_items WHERE image_id = '%s'", near.ID)))
	res = w.reviewer.json(http.MethodPost, "/api/v1/moderation/"+near.ID.String(), map[string]any{"decision": "reject"})
	require.Equal(t, http.StatusConflict, res.StatusCode, "decided already")

	// Reject: the contributor sees why.
	res = w.reviewer.json(http.MethodPost, "/api/v1/moderation/"+blurry.ID.String(), map[string]any{"decision": "reject", "reason": "  Too blurry to draw masks on.  "})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	st, reason := w.status(t, blurry.ID)
	require.Equal(t, "rejected", st)
	require.Equal(t, "Too blurry to draw masks on.", reason)
	require.Zero(t, w.count(t, fmt.Sprintf("SELECT count(*) FROM river_job WHERE kind = 'infer' AND args->>'image_id' = '%s'", blurry.ID)))
	require.Empty(t, w.reviewer.get("/api/v1/moderation").json(t)["items"])
}

// TestModerationPage: the page shows each photo beside the one it
// resembles, decides one photo or several at once with the forms, and
// answers A and R in a browser.
func TestModerationPage(t *testing.T) {
	t.Parallel()
	w := newModWorld(t)
	original := w.fx.Image(datasettest.ImageOpts{W: 320, H: 240})
	near := w.flagged(t, lifecycle.ReasonNearDuplicate, &original.ID)
	dark := w.flagged(t, "The photo looks too dark; a person will check whether it is usable.", nil)
	flat := w.flagged(t, "The photo looks flat, with almost no contrast; a person will check whether it is usable.", nil)

	require.Equal(t, 0, w.contributor.get("/").doc(t).Find(`nav a[href="/admin/moderation"]`).Length())
	doc := w.reviewer.get("/admin/moderation").doc(t)
	require.Equal(t, 1, doc.Find(`nav a[href="/admin/moderation"][aria-current=page]`).Length())
	require.Equal(t, 3, doc.Find("#moderation-items li.mod-item").Length())
	item := doc.Find(fmt.Sprintf(`li.mod-item[data-id="%s"]`, near.ID))
	require.Equal(t, "near_duplicate", item.AttrOr("data-flags", ""))
	require.Equal(t, "/images/"+near.ID.String()+"/thumb/review", item.Find("figure.photo img").AttrOr("src", ""))
	require.Equal(t, "/images/"+original.ID.String()+"/thumb/review", item.Find("figure.twin img").AttrOr("src", ""))
	require.Equal(t, 0, doc.Find(fmt.Sprintf(`li.mod-item[data-id="%s"] figure.twin`, dark.ID)).Length())
	require.Equal(t, 1, doc.Find(`script[src*="moderation.js"]`).Length())
	doc = w.reviewer.get("/admin/moderation?reason=dark").doc(t)
	require.Equal(t, 1, doc.Find("li.mod-item").Length())
	require.Equal(t, "dark", doc.Find(`select[name=reason] option[selected]`).AttrOr("value", ""))

	// Several at once with the form: the dark and flat ones.
	res := w.reviewer.form("/admin/moderation", url.Values{"decision": {"reject"}, "image_ids": {dark.ID.String(), flat.ID.String()}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "%s", res.body)
	doc = w.reviewer.get(res.Header.Get("Location")).doc(t)
	require.Contains(t, doc.Find(".flash").Text(), "2 rejected.")
	for _, id := range []uuid.UUID{dark.ID, flat.ID} {
		st, reason := w.status(t, id)
		require.Equal(t, "rejected", st)
		require.Equal(t, lifecycle.ReasonModeratorDefault, reason)
	}
	res = w.reviewer.form("/admin/moderation", url.Values{"decision": {"approve"}, "image_ids": {dark.ID.String()}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Contains(t, w.reviewer.get(res.Header.Get("Location")).doc(t).Find(".flash").Text(), "1 skipped")

	// The keys, in a browser: R rejects the current photo.
	ctx := browsertest.New(t)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(w.base+"/login"),
		chromedp.SendKeys(`#email`, "rev@example.com"),
		chromedp.SendKeys(`#password`, testPassword),
		chromedp.Submit(`#password`),
		chromedp.WaitVisible(`a[href="/review"]`),
		chromedp.Navigate(w.base+"/admin/moderation"),
		chromedp.WaitVisible(`li.mod-item.current`),
		chromedp.KeyEvent("r"),
		chromedp.WaitVisible(`#moderation-empty`),
	))
	st, _ := w.status(t, near.ID)
	require.Equal(t, "rejected", st)
}
