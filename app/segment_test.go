package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/worker"
	"github.com/deepimageshub/imagehub/worker/segment/segmenttest"
)

// seedPhotoReview stores a generated photo (its JPEG in the blob store as
// the canonical image) in awaiting_review with its first review item.
func seedPhotoReview(t testing.TB, tb *testBundle, owner uuid.UUID, p *segmenttest.Photo) (image, item uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	sum := sha256.Sum256(p.JPEG)
	require.NoError(t, tb.blobs.Put(ctx, blob.ImageKey(sum[:]), bytes.NewReader(p.JPEG), int64(len(p.JPEG)), "image/jpeg"))
	image = uuid.New()
	b := p.Image.Bounds()
	_, err := tb.pool.Exec(ctx, `
		INSERT INTO images (id, upload_sha256, sha256, owner_id, filename, content_type, byte_size, width, height, status)
		VALUES ($1, $2, $2, $3, 'shapes.jpg', 'image/jpeg', $4, $5, $6, 'awaiting_review')`,
		image, sum[:], owner, len(p.JPEG), b.Dx(), b.Dy())
	require.NoError(t, err)
	require.NoError(t, tb.pool.QueryRow(ctx, `INSERT INTO review_items (image_id, confidence) VALUES ($1, 0.5) RETURNING id`, image).Scan(&item))
	return image, item
}

// pointIn is a pixel in the middle of m's bounding box, which for the
// drawn shapes lies inside them.
func pointIn(m *mask.Bitmap) (float64, float64) {
	b := m.BBox()
	return float64(b[0] + b[2]/2), float64(b[1] + b[3]/2)
}

func decodeAnswer(t *testing.T, res *response) (*mask.Bitmap, float64) {
	t.Helper()
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	j := res.json(t)
	m := j["mask"].(map[string]any)
	size := m["size"].([]any)
	rle := mask.RLE{Size: [2]int{int(size[0].(float64)), int(size[1].(float64))}, Counts: m["counts"].(string)}
	bm, err := rle.Decode()
	require.NoError(t, err)
	return bm, j["score"].(float64)
}

// TestReviewSegment drives click-to-segment through the real server and
// the project's worker: 503 before an interactive model is registered, a
// warm-up sent to the worker when the item is leased, clicks giving the
// drawn shape's mask, a background click and a box, 400 naming the field
// for bad prompts, and 409 for a reviewer without the lease.
func TestReviewSegment(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	admin, _ := tb.userWithRole(t, "admin@example.com", auth.RoleAdmin)
	rev, u := tb.userWithRole(t, "rev@example.com", auth.RoleReviewer)
	other, _ := tb.userWithRole(t, "other@example.com", auth.RoleReviewer)
	photo := segmenttest.NewPhoto(800, 600, 3, 90)
	_, item := seedPhotoReview(t, tb, u.ID, photo)
	path := "/api/v1/review/" + item.String() + "/segment"
	disc := photo.Shapes[0].Mask
	dx, dy := pointIn(disc)

	status, leased := next(t, rev)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, item.String(), leased["item_id"])

	res := rev.json(http.MethodPost, path, map[string]any{"points": [][]float64{{dx, dy, 1}}})
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode, "%s", res.body)
	code, _ := res.apiError(t)
	require.Equal(t, "no_interactive_model", code)

	wk := worker.New(worker.Config{Capacity: 2})
	srv := httptest.NewServer(wk)
	t.Cleanup(srv.Close)
	res = admin.json(http.MethodPost, "/api/v1/models", map[string]any{"name": wk.InteractiveModel(), "task": "interactive",
		"endpoints": []string{srv.URL}, "capacity": 2})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	require.Empty(t, res.json(t)["model"].(map[string]any)["problems"])
	require.Zero(t, count(t, tb, `SELECT count(*) FROM inference_runs`), "an interactive model proposes nothing by itself")

	// Leasing warms the model up: the worker sees an empty prompt for the
	// image before any click.
	require.Equal(t, http.StatusNoContent, rev.json(http.MethodPost, "/api/v1/review/"+item.String()+"/release", nil).StatusCode)
	status, _ = next(t, rev)
	require.Equal(t, http.StatusOK, status)
	require.Eventually(t, func() bool { return wk.Stats().Prompts >= 1 }, 10*time.Second, 10*time.Millisecond)

	got, score := decodeAnswer(t, rev.json(http.MethodPost, path, map[string]any{"points": [][]float64{{dx, dy, 1}}}))
	require.Equal(t, 800, got.W)
	require.Equal(t, 600, got.H)
	require.GreaterOrEqual(t, segmenttest.IoU(got, disc), 0.9)
	require.True(t, score >= 0 && score <= 1)

	// Two shapes clicked, then the second taken back with a background click.
	rx, ry := pointIn(photo.Shapes[1].Mask)
	both, _ := decodeAnswer(t, rev.json(http.MethodPost, path, map[string]any{"points": [][]float64{{dx, dy, 1}, {rx, ry, 1}}}))
	require.Greater(t, both.Area(), got.Area()+photo.Shapes[1].Mask.Area()*9/10)
	back, _ := decodeAnswer(t, rev.json(http.MethodPost, path, map[string]any{"points": [][]float64{{dx, dy, 1}, {rx, ry, 1}, {rx, ry, 0}}}))
	require.GreaterOrEqual(t, segmenttest.IoU(back, disc), 0.9)

	// A box alone, around the ellipse.
	eb := photo.Shapes[2].Mask.BBox()
	box := []float64{float64(eb[0] - 10), float64(eb[1] - 10), float64(eb[0] + eb[2] + 10), float64(eb[1] + eb[3] + 10)}
	boxed, _ := decodeAnswer(t, rev.json(http.MethodPost, path, map[string]any{"box": box}))
	require.GreaterOrEqual(t, segmenttest.IoU(boxed, photo.Shapes[2].Mask), 0.9)

	// Refining an instance: the disc given, a click on the rectangle adds it.
	inst := mask.Encode(got)
	refined, _ := decodeAnswer(t, rev.json(http.MethodPost, path, map[string]any{"points": [][]float64{{rx, ry, 1}},
		"instance": map[string]any{"size": inst.Size, "counts": inst.Counts}}))
	require.Greater(t, segmenttest.IoU(refined, disc), 0.0)
	require.Greater(t, refined.Area(), got.Area())

	many := make([][]float64, 65)
	for i := range many {
		many[i] = []float64{dx, dy, 1}
	}
	for field, body := range map[string]map[string]any{
		"points":    {"points": [][]float64{}},
		"points[0]": {"points": [][]float64{{800, 10, 1}}},
		"points[1]": {"points": [][]float64{{dx, dy, 1}, {1, 2}}},
		"box":       {"points": [][]float64{{dx, dy, 1}}, "box": []float64{50, 50, 40, 60}},
		"instance":  {"points": [][]float64{{dx, dy, 1}}, "instance": map[string]any{"size": []int{10, 10}, "counts": "PP"}},
	} {
		res := rev.json(http.MethodPost, path, body)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s: %s", field, res.body)
		_, f := res.apiError(t)
		require.Equal(t, field, f)
	}
	res = rev.json(http.MethodPost, path, map[string]any{"points": many})
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	_, f := res.apiError(t)
	require.Equal(t, "points", f)

	res = other.json(http.MethodPost, path, map[string]any{"points": [][]float64{{dx, dy, 1}}})
	require.Equal(t, http.StatusConflict, res.StatusCode, "%s", res.body)

	// An update that names no task keeps the model's: disabling it leaves
	// no interactive model.
	res = admin.json(http.MethodPost, "/api/v1/models", map[string]any{"name": wk.InteractiveModel(), "endpoints": []string{srv.URL}, "enabled": false})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	require.Equal(t, "interactive", res.json(t)["model"].(map[string]any)["task"])
	res = rev.json(http.MethodPost, path, map[string]any{"points": [][]float64{{dx, dy, 1}}})
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode, "%s", res.body)
	res = rev.json(http.MethodPost, "/api/v1/review/"+uuid.NewString()+"/segment", map[string]any{"points": [][]float64{{dx, dy, 1}}})
	require.Equal(t, http.StatusNotFound, res.StatusCode)
}
