package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/config"
	"github.com/deepimageshub/imagehub/mask"
)

// rect is an h×w mask with the rectangle [x0, x1) × [y0, y1) set.
func rect(h, w, x0, y0, x1, y1 int) mask.RLE {
	b := mask.NewBitmap(w, h)
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			b.Set(x, y, true)
		}
	}
	return mask.Encode(b)
}

// reviewFixture is an image waiting for review with its proposals.
type reviewFixture struct {
	image     uuid.UUID
	item      uuid.UUID
	proposals []uuid.UUID
	masks     []mask.RLE
	h, w      int
}

// seedReview stores an image in awaiting_review with n proposals labelled
// "cat" (each a rectangle) and its first review item, as inference leaves
// them.
func seedReview(t *testing.T, tb *testBundle, owner uuid.UUID, n int, confidence float32) reviewFixture {
	t.Helper()
	ctx := context.Background()
	f := reviewFixture{image: uuid.New(), h: 60, w: 80}
	sha := uuid.New()
	_, err := tb.pool.Exec(ctx, `
		INSERT INTO images (id, upload_sha256, sha256, owner_id, filename, content_type, byte_size, width, height, status)
		VALUES ($1, sha256($2::bytea), sha256($3::bytea), $4, 'cat.jpg', 'image/jpeg', 1, $5, $6, 'awaiting_review')`,
		f.image, sha[:], append(sha[:], 1), owner, f.w, f.h)
	require.NoError(t, err)
	var model uuid.UUID
	require.NoError(t, tb.pool.QueryRow(ctx, `
		INSERT INTO models (name, version) VALUES ('m', '1') ON CONFLICT (name, version) DO UPDATE SET name = 'm' RETURNING id`).Scan(&model))
	for i := range n {
		m := rect(f.h, f.w, 2+i, 3, 20+i, 30)
		area, _ := m.Area()
		box, _ := m.BBox()
		id := uuid.New()
		_, err := tb.pool.Exec(ctx, `
			INSERT INTO proposals (id, image_id, model_id, rank, label_id, score, bbox, area, height, width, counts)
			VALUES ($1, $2, $3, $4, (SELECT id FROM labels WHERE name = 'cat'), 0.5, $5, $6, $7, $8, $9)`,
			id, f.image, model, i, []int32{int32(box[0]), int32(box[1]), int32(box[2]), int32(box[3])}, area, f.h, f.w, m.Counts)
		require.NoError(t, err)
		f.proposals = append(f.proposals, id)
		f.masks = append(f.masks, m)
	}
	require.NoError(t, tb.pool.QueryRow(ctx, `INSERT INTO review_items (image_id, confidence) VALUES ($1, $2) RETURNING id`,
		f.image, confidence).Scan(&f.item))
	return f
}

func next(t *testing.T, c *client) (int, map[string]any) {
	t.Helper()
	res := c.json(http.MethodPost, "/api/v1/review/next", map[string]any{})
	if res.StatusCode != http.StatusOK {
		return res.StatusCode, nil
	}
	return res.StatusCode, res.json(t)
}

func count(t *testing.T, tb *testBundle, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, tb.pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// TestReviewLeasesUnderConcurrency: 50 concurrent requests for the next item
// never get the same item twice.
func TestReviewLeasesUnderConcurrency(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	_, owner := tb.userWithRole(t, "owner@example.com", auth.RoleContributor)
	const items = 30
	for i := range items {
		seedReview(t, tb, owner.ID, 1, float32(i)/items)
	}
	var reviewers []*client
	for i := range 5 {
		c, _ := tb.userWithRole(t, fmt.Sprintf("rev%d@example.com", i), auth.RoleReviewer)
		reviewers = append(reviewers, c)
	}
	var mu sync.Mutex
	got := map[string]int{}
	empty := 0
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		c := reviewers[i%len(reviewers)]
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, c.base+"/api/v1/review/next", strings.NewReader("{}"))
			req.Header.Set("Content-Type", "application/json")
			res, err := c.http.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer res.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			switch res.StatusCode {
			case http.StatusNoContent:
				empty++
			case http.StatusOK:
				var body struct {
					ItemID string `json:"item_id"`
				}
				if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
					errs <- err
					return
				}
				got[body.ItemID]++
			default:
				b, _ := io.ReadAll(res.Body)
				errs <- fmt.Errorf("status %d: %s", res.StatusCode, b)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, got, items, "every item leased")
	for id, n := range got {
		require.Equal(t, 1, n, "item %s handed out twice", id)
	}
	require.Equal(t, 50-items, empty, "the rest were told nothing waits")
}

// TestReviewSubmit: the least confident item comes first; a submission
// stores annotations beside the proposals with their IoU and a verdict for
// every proposal; the image is reviewed and its API shows both.
func TestReviewSubmit(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	_, owner := tb.userWithRole(t, "owner@example.com", auth.RoleContributor)
	rev, revUser := tb.userWithRole(t, "rev@example.com", auth.RoleReviewer)
	sure := seedReview(t, tb, owner.ID, 1, 0.9)
	f := seedReview(t, tb, owner.ID, 4, 0.2)

	status, item := next(t, rev)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, f.item.String(), item["item_id"], "the least confident first")
	require.Len(t, item["proposals"], 4)
	require.EqualValues(t, f.w, item["image"].(map[string]any)["width"])
	require.NotEmpty(t, item["lease_expires_at"])

	corrected := rect(f.h, f.w, 5, 5, 25, 35)
	drawn := rect(f.h, f.w, 60, 40, 70, 50)
	body := map[string]any{
		"instances": []map[string]any{
			{"proposal_id": f.proposals[0], "label": "cat", "mask": f.masks[0]},
			{"proposal_id": f.proposals[1], "label": "cat", "mask": corrected},
			{"proposal_id": f.proposals[2], "label": "dog", "mask": f.masks[2]},
			{"label": "dog", "mask": drawn},
		},
		"rejected_proposals": []uuid.UUID{f.proposals[3]},
		"time_spent_ms":      42000,
	}
	recordEvents(t, tb.pool)
	res := rev.json(http.MethodPost, "/api/v1/review/"+f.item.String(), body)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	require.Equal(t, []string{"review.submitted"}, emitted(t, tb.pool))
	anns := res.json(t)["annotations"].([]any)
	require.Len(t, anns, 4)

	verdicts := map[uuid.UUID]string{}
	rows, err := tb.pool.Query(context.Background(), "SELECT proposal_id, verdict FROM proposal_verdicts WHERE review_item_id = $1", f.item)
	require.NoError(t, err)
	for rows.Next() {
		var id uuid.UUID
		var v string
		require.NoError(t, rows.Scan(&id, &v))
		verdicts[id] = v
	}
	require.Equal(t, map[uuid.UUID]string{
		f.proposals[0]: "accepted", f.proposals[1]: "corrected", f.proposals[2]: "corrected", f.proposals[3]: "rejected",
	}, verdicts, "relabelling is a correction too")
	wantIoU, err := mask.IoU(f.masks[1], corrected)
	require.NoError(t, err)
	var iou float32
	require.NoError(t, tb.pool.QueryRow(context.Background(), "SELECT iou FROM annotations WHERE proposal_id = $1", f.proposals[1]).Scan(&iou))
	require.InDelta(t, wantIoU, iou, 1e-6)
	require.Equal(t, 4, count(t, tb, "SELECT count(*) FROM proposals WHERE image_id = $1", f.image), "proposals are never changed")
	var who uuid.UUID
	var spent int
	require.NoError(t, tb.pool.QueryRow(context.Background(), "SELECT done_by, time_spent_ms FROM review_items WHERE id = $1", f.item).Scan(&who, &spent))
	require.Equal(t, revUser.ID, who)
	require.Equal(t, 42000, spent)

	img := rev.get("/api/v1/images/" + f.image.String()).json(t)
	require.Equal(t, "reviewed", img["status"])
	require.Len(t, img["proposals"], 4)
	require.Len(t, img["annotations"], 4)
	a := img["annotations"].([]any)[1].(map[string]any)
	require.Equal(t, "rev", a["author"])
	require.Contains(t, a, "iou")

	// The model's record: 5 "cat" proposals (one on the image not yet
	// reviewed); 1 accepted, 2 corrected (one relabelled), 1 rejected; mean
	// IoU over the reviewed ones (1 + IoU + 1 + 0) / 4.
	admin, _ := tb.userWithRole(t, "admin@example.com", auth.RoleAdmin)
	stats := admin.get("/api/v1/stats/models").json(t)["items"].([]any)
	require.Len(t, stats, 1)
	st := stats[0].(map[string]any)
	require.Equal(t, "cat", st["label"])
	require.EqualValues(t, 5, st["proposals"])
	require.EqualValues(t, 1, st["accepted"])
	require.EqualValues(t, 2, st["corrected"])
	require.EqualValues(t, 1, st["rejected"])
	require.InDelta(t, (2+wantIoU)/4, st["mean_iou"], 1e-6)

	// The lease ended with the submission: a second submission is refused.
	res = rev.json(http.MethodPost, "/api/v1/review/"+f.item.String(), body)
	require.Equal(t, http.StatusConflict, res.StatusCode)

	// Next comes the other item; then nothing.
	status, item = next(t, rev)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, sure.item.String(), item["item_id"])
	status, _ = next(t, rev)
	require.Equal(t, http.StatusNoContent, status)
}

// TestReviewBadInput: every malformed submission is refused with 400 and
// the field named; nothing is stored and the lease is kept.
func TestReviewBadInput(t *testing.T) {
	t.Parallel()
	tb := setup(t, func(c *config.Config) { c.ReviewMaxInstances = 3 })
	_, owner := tb.userWithRole(t, "owner@example.com", auth.RoleContributor)
	rev, _ := tb.userWithRole(t, "rev@example.com", auth.RoleReviewer)
	f := seedReview(t, tb, owner.ID, 2, 0.5)
	status, _ := next(t, rev)
	require.Equal(t, http.StatusOK, status)

	good := rect(f.h, f.w, 1, 1, 10, 10)
	inst := func(m any) map[string]any {
		return map[string]any{"instances": []map[string]any{{"label": "cat", "mask": m}}}
	}
	cases := []struct {
		name, field string
		body        any
	}{
		{"wrong size", "instances[0].mask.size", inst(rect(f.h+1, f.w, 1, 1, 5, 5))},
		{"undecodable counts", "instances[0].mask.counts", inst(map[string]any{"size": []int{f.h, f.w}, "counts": "\x01\x02 not rle"})},
		{"runs short of h×w", "instances[0].mask.counts", inst(mask.FromRuns(f.h, f.w, []uint32{10, 5}))},
		{"runs past h×w", "instances[0].mask.counts", inst(mask.FromRuns(f.h, f.w, []uint32{uint32(f.h * f.w), 5}))},
		{"over-long counts", "instances[0].mask.counts", inst(map[string]any{"size": []int{f.h, f.w}, "counts": strings.Repeat("1", 20000)})},
		{"empty mask", "instances[0].mask", inst(rect(f.h, f.w, 0, 0, 0, 0))},
		{"unknown label", "instances[0].label", map[string]any{"instances": []map[string]any{{"label": "unicorn", "mask": good}}}},
		{"unknown proposal", "instances[0].proposal_id", map[string]any{"instances": []map[string]any{{"label": "cat", "mask": good, "proposal_id": uuid.New()}}}},
		{"unknown rejected proposal", "rejected_proposals[0]", map[string]any{"instances": []any{}, "rejected_proposals": []uuid.UUID{uuid.New()}}},
		{"proposal kept twice", "instances[1].proposal_id", map[string]any{"instances": []map[string]any{
			{"label": "cat", "mask": good, "proposal_id": f.proposals[0]}, {"label": "cat", "mask": good, "proposal_id": f.proposals[0]}}}},
		{"too many instances", "instances", map[string]any{"instances": []map[string]any{
			{"label": "cat", "mask": good}, {"label": "cat", "mask": good}, {"label": "cat", "mask": good}, {"label": "cat", "mask": good}}}},
	}
	for _, tc := range cases {
		res := rev.json(http.MethodPost, "/api/v1/review/"+f.item.String(), tc.body)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s: %s", tc.name, res.body)
		_, field := res.apiError(t)
		require.Equal(t, tc.field, field, tc.name)
	}
	res := rev.json(http.MethodPost, "/api/v1/review/"+f.item.String(), "{not json")
	require.Equal(t, http.StatusBadRequest, res.StatusCode)

	require.Zero(t, count(t, tb, "SELECT count(*) FROM annotations"), "nothing stored")
	require.Zero(t, count(t, tb, "SELECT count(*) FROM proposal_verdicts"))
	require.Equal(t, "awaiting_review", rev.get("/api/v1/images/" + f.image.String()).json(t)["status"])
	res = rev.json(http.MethodPost, "/api/v1/review/"+f.item.String()+"/renew", map[string]any{})
	require.Equal(t, http.StatusOK, res.StatusCode, "the lease was kept: %s", res.body)
	res = rev.json(http.MethodPost, "/api/v1/review/"+f.item.String(), inst(good))
	require.Equal(t, http.StatusOK, res.StatusCode, "and the fixed submission goes through: %s", res.body)
}

// TestReviewLeaseExpiryAndRenewal: renewing moves the expiry on; an expired
// lease gets 409 and the item goes to the next reviewer; a foreign lease
// gets 409.
func TestReviewLeaseExpiryAndRenewal(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	_, owner := tb.userWithRole(t, "owner@example.com", auth.RoleContributor)
	ann, _ := tb.userWithRole(t, "ann@example.com", auth.RoleReviewer)
	bob, _ := tb.userWithRole(t, "bob@example.com", auth.RoleReviewer)
	f := seedReview(t, tb, owner.ID, 1, 0.5)
	status, _ := next(t, ann)
	require.Equal(t, http.StatusOK, status)
	status, _ = next(t, bob)
	require.Equal(t, http.StatusNoContent, status, "leased to Ann alone")

	_, err := tb.pool.Exec(ctx, "UPDATE review_items SET lease_expires_at = now() + interval '5 seconds' WHERE id = $1", f.item)
	require.NoError(t, err)
	res := ann.json(http.MethodPost, "/api/v1/review/"+f.item.String()+"/renew", map[string]any{})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	require.Equal(t, 1, count(t, tb, "SELECT count(*) FROM review_items WHERE id = $1 AND lease_expires_at > now() + interval '5 minutes'", f.item), "renewed for the full lease")

	body := map[string]any{"instances": []map[string]any{{"label": "cat", "mask": rect(f.h, f.w, 1, 1, 9, 9)}}}
	res = bob.json(http.MethodPost, "/api/v1/review/"+f.item.String(), body)
	require.Equal(t, http.StatusConflict, res.StatusCode, "a foreign lease")
	res = bob.json(http.MethodPost, "/api/v1/review/"+f.item.String()+"/renew", map[string]any{})
	require.Equal(t, http.StatusConflict, res.StatusCode)

	// Released by its holder, the item goes to the next reviewer at once.
	res = bob.json(http.MethodPost, "/api/v1/review/"+f.item.String()+"/release", map[string]any{})
	require.Equal(t, http.StatusConflict, res.StatusCode, "only the holder releases")
	res = ann.json(http.MethodPost, "/api/v1/review/"+f.item.String()+"/release", map[string]any{})
	require.Equal(t, http.StatusNoContent, res.StatusCode, "%s", res.body)
	status, _ = next(t, bob)
	require.Equal(t, http.StatusOK, status, "released: Bob gets it")
	status, _ = next(t, ann)
	require.Equal(t, http.StatusNoContent, status)
	_, err = tb.pool.Exec(ctx, "UPDATE review_items SET leased_by = (SELECT id FROM users WHERE email = 'ann@example.com') WHERE id = $1", f.item)
	require.NoError(t, err)

	_, err = tb.pool.Exec(ctx, "UPDATE review_items SET lease_expires_at = now() - interval '1 second' WHERE id = $1", f.item)
	require.NoError(t, err)
	res = ann.json(http.MethodPost, "/api/v1/review/"+f.item.String(), body)
	require.Equal(t, http.StatusConflict, res.StatusCode, "an expired lease")
	code, _ := res.apiError(t)
	require.Equal(t, "lease_lost", code)
	require.Equal(t, http.StatusConflict, ann.json(http.MethodPost, "/api/v1/review/"+f.item.String()+"/renew", map[string]any{}).StatusCode)
	status, item := next(t, bob)
	require.Equal(t, http.StatusOK, status, "the expired item is free again")
	require.Equal(t, f.item.String(), item["item_id"])
	require.Zero(t, count(t, tb, "SELECT count(*) FROM annotations"))
}

// TestSecondReview: with every review drawn for a second one, the second
// goes blind to another reviewer, its agreement is stored, a low one is
// flagged to admins with both versions viewable, and the stats page shows
// the figures.
func TestSecondReview(t *testing.T) {
	t.Parallel()
	tb := setup(t, func(c *config.Config) { c.SecondReviewShare = 1; c.SecondReviewMinAgreement = 0.8 })
	_, owner := tb.userWithRole(t, "owner@example.com", auth.RoleContributor)
	ann, _ := tb.userWithRole(t, "ann@example.com", auth.RoleReviewer)
	bob, _ := tb.userWithRole(t, "bob@example.com", auth.RoleReviewer)
	admin, _ := tb.userWithRole(t, "admin@example.com", auth.RoleAdmin)
	f := seedReview(t, tb, owner.ID, 1, 0.5)

	_, item := next(t, ann)
	first := []map[string]any{
		{"proposal_id": f.proposals[0], "label": "cat", "mask": f.masks[0]},
		{"label": "dog", "mask": rect(f.h, f.w, 50, 30, 70, 50)},
	}
	res := ann.json(http.MethodPost, "/api/v1/review/"+item["item_id"].(string), map[string]any{"instances": first, "time_spent_ms": 60000})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)

	status, _ := next(t, ann)
	require.Equal(t, http.StatusNoContent, status, "never one's own second review")
	status, second := next(t, bob)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "second", second["kind"])
	require.Empty(t, second["proposals"], "blind")

	// Bob finds the cat exactly but misses the dog: (1 + 0) / 2.
	res = bob.json(http.MethodPost, "/api/v1/review/"+second["item_id"].(string), map[string]any{
		"instances": []map[string]any{{"label": "cat", "mask": f.masks[0]}}, "time_spent_ms": 30000})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	require.InDelta(t, 0.5, res.json(t)["agreement"], 1e-6)
	require.Equal(t, 1, count(t, tb, "SELECT count(*) FROM review_items WHERE kind = 'second' AND flagged"))
	img := admin.get("/api/v1/images/" + f.image.String()).json(t)
	require.Len(t, img["annotations"], 2, "the image's annotations stay the first review's")

	page := admin.get("/review/stats")
	require.Equal(t, http.StatusOK, page.StatusCode)
	require.Contains(t, string(page.body), "0.50 over 1 second reviews")
	require.Contains(t, string(page.body), "/admin/reviews/"+second["item_id"].(string))
	cmp := admin.get("/admin/reviews/" + second["item_id"].(string))
	require.Equal(t, http.StatusOK, cmp.StatusCode)
	require.Contains(t, string(cmp.body), "First review")
	require.Contains(t, string(cmp.body), "dog")
	own := ann.get("/review/stats")
	require.Equal(t, http.StatusOK, own.StatusCode)
	require.NotContains(t, string(own.body), "bob@example.com", "a reviewer sees only their own figures")
	require.Equal(t, http.StatusForbidden, ann.get("/admin/reviews/"+second["item_id"].(string)).StatusCode)
}

// TestReviewLargeSubmission: a review may be megabytes (hundreds of
// full-resolution masks), over the 1 MiB other JSON routes take.
func TestReviewLargeSubmission(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	_, owner := tb.userWithRole(t, "owner@example.com", auth.RoleContributor)
	rev, _ := tb.userWithRole(t, "rev@example.com", auth.RoleReviewer)
	f := seedReview(t, tb, owner.ID, 1, 0.5)
	status, _ := next(t, rev)
	require.Equal(t, http.StatusOK, status)
	m, err := json.Marshal(rect(f.h, f.w, 1, 1, 9, 9))
	require.NoError(t, err)
	// 3 MB of JSON whitespace stands in for a big submission.
	body := `{"instances": [{"label": "cat", "mask": ` + string(m) + `}]` + strings.Repeat(" ", 3<<20) + `}`
	res := rev.json(http.MethodPost, "/api/v1/review/"+f.item.String(), body)
	require.Equal(t, http.StatusOK, res.StatusCode, "%.300s", res.body)
}
