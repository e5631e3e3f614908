package app

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/browsertest"
	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/worker"
	"github.com/deepimageshub/imagehub/worker/segment/segmenttest"
)

// enableClickSegmenter starts the project's worker, which serves the CPU
// interactive segmenter, and registers that model (task "interactive"), so
// the hub's segment API answers; done before the page leases, so leasing
// warms it up as it would in use.
func enableClickSegmenter(t testing.TB, tb *testBundle) {
	t.Helper()
	admin, _ := tb.userWithRole(t, "segadmin@example.com", auth.RoleAdmin)
	wk := worker.New(worker.Config{Capacity: 4})
	srv := httptest.NewServer(wk)
	t.Cleanup(srv.Close)
	res := admin.json(http.MethodPost, "/api/v1/models", map[string]any{"name": wk.InteractiveModel(), "task": "interactive",
		"endpoints": []string{srv.URL}, "capacity": 4})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
}

// shapesScene is a review scene of segmenttest photos (shapes whose true
// outlines are known), uploaded through the API, with no proposals.
func shapesScene(t testing.TB, w, h, images int) (*reviewScene, []*segmenttest.Photo) {
	t.Helper()
	var photos []*segmenttest.Photo
	for n := range images {
		photos = append(photos, segmenttest.NewPhoto(w, h, 3+uint64(n), 92))
	}
	s := seedReviewScenePhotos(t, w, h, images, func(h, w int) []sceneProposal { return nil }, 0,
		func(n int) image.Image { return photos[n].Image })
	return s, photos
}

// promptInfo is the page's click-tool session (imagehubReview.prompt()).
type promptInfo struct {
	Points     int            `json:"points"`
	Refining   bool           `json:"refining"`
	InFlight   bool           `json:"inFlight"`
	Preview    int            `json:"preview"` // the preview's area, -1 for none
	LastSent   map[string]any `json:"lastSent"`
	LastAnswer *segAnswer     `json:"lastAnswer"`
}

type segAnswer struct {
	Mask  mask.RLE `json:"mask"`
	Score float64  `json:"score"`
}

func (s *reviewScene) prompt(t testing.TB) *promptInfo {
	t.Helper()
	var p *promptInfo
	require.NoError(t, json.Unmarshal(eval[json.RawMessage](t, s.ctx, `imagehubReview.prompt()`), &p))
	return p
}

// waitPrompt waits for the session to have points points and the answer
// for them on screen.
func (s *reviewScene) waitPrompt(t testing.TB, points int) *promptInfo {
	t.Helper()
	browsertest.WaitFor(t, s.ctx,
		fmt.Sprintf(`(p => !!p && p.points === %d && !p.inFlight && p.preview >= 0)(imagehubReview.prompt())`, points),
		`JSON.stringify({prompt: imagehubReview.prompt(), message: document.getElementById('review-message').textContent})`, 15*time.Second)
	s.nextFrames(t)
	return s.prompt(t)
}

// segment asks the segment API from the page (its session, lease and CSRF
// token), as the click tool does, and returns the answer.
func (s *reviewScene) segment(t testing.TB, body map[string]any) (int, *segAnswer) {
	t.Helper()
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	var out struct {
		Status int        `json:"status"`
		Body   *segAnswer `json:"body"`
	}
	got := eval[json.RawMessage](t, s.ctx, fmt.Sprintf(`fetch('/api/v1/review/' + imagehubReview.item().id + '/segment', {
		method: 'POST', credentials: 'same-origin',
		headers: {'Content-Type': 'application/json', 'Accept': 'application/json', 'X-CSRF-Token': document.querySelector('meta[name="csrf-token"]').content},
		body: %q}).then(async r => ({status: r.status, body: r.status === 200 ? await r.json() : null}))`, raw))
	require.NoError(t, json.Unmarshal(got, &out))
	return out.Status, out.Body
}

// clickAt clicks the client pixel showing image point (x, y), and returns
// the point the page sends for it: where the click falls in the image
// (toImage), kept to a tenth of a pixel, down.
func (s *reviewScene) clickAt(t testing.TB, v reviewView, x, y float64, mods ...chromedp.MouseOption) [2]float64 {
	t.Helper()
	cx, cy := v.toClient(x, y)
	require.NoError(t, chromedp.Do(s.ctx, chromedp.MouseClickXY(cx, cy, mods...)))
	p := v.toImage(cx, cy)
	return [2]float64{math.Floor(p[0]*10) / 10, math.Floor(p[1]*10) / 10}
}

func decodeRLE(t testing.TB, m mask.RLE) *mask.Bitmap {
	t.Helper()
	b, err := m.Decode()
	require.NoError(t, err)
	return b
}

// TestReviewClickToSegmentInBrowser: in real Chromium, with the project's
// interactive segmenter behind the hub, a reviewer picks the click tool
// (C), clicks on the disc in a photo and its mask is on screen at once; a
// click on the rectangle adds it, and a Shift-click on the rectangle takes
// it back out; Enter keeps the mask as a new instance (label picked as for
// N), and undo and redo take it away and back; a box dragged around the
// ellipse gives the ellipse; with the instance selected, a click on the
// rectangle refines it (the instance is sent along) and Enter keeps that as
// an edit, undone and redone. Every preview is the segment API's answer for
// the prompts the page sent, and what is stored on submit is, pixel for
// pixel, the last kept answer.
func TestReviewClickToSegmentInBrowser(t *testing.T) {
	t.Parallel()
	const w, h = 800, 600
	s, photos := shapesScene(t, w, h, 1)
	enableClickSegmenter(t, s.tb)
	s.open(t, "rita@example.com", 0)
	ctx := s.ctx
	disc, rect, ellipse := photos[0].Shapes[0].Mask, photos[0].Shapes[1].Mask, photos[0].Shapes[2].Mask
	s.key(t, "c")
	s.nextFrames(t)
	require.Equal(t, "click", eval[string](t, ctx, `document.getElementById('review-stage').dataset.tool`))
	v := s.view(t)
	// answered checks that the preview is the API's answer for what the
	// page sent.
	answered := func(p *promptInfo) *mask.Bitmap {
		t.Helper()
		require.NotNil(t, p.LastAnswer)
		status, want := s.segment(t, p.LastSent)
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, want.Mask, p.LastAnswer.Mask, "the preview is the API's answer to %v", p.LastSent)
		got := decodeRLE(t, p.LastAnswer.Mask)
		require.Equal(t, got.Area(), p.Preview, "the preview shows the answer")
		return got
	}

	// A click on the disc: its mask appears.
	dx, dy := pointIn(disc)
	d := s.clickAt(t, v, dx, dy)
	p := s.waitPrompt(t, 1)
	require.False(t, p.Refining)
	require.Equal(t, []any{[]any{d[0], d[1], 1.0}}, p.LastSent["points"], "the click is sent in image pixels")
	first := answered(p)
	require.GreaterOrEqual(t, segmenttest.IoU(first, disc), 0.85)
	require.Equal(t, 255, s.layerAlpha(t, "prompt", d[0], d[1]), "the preview is drawn")
	browsertest.Screenshot(t, ctx, "click-first")

	// The rectangle clicked too, then taken back with a Shift-click on it.
	rx, ry := pointIn(rect)
	s.clickAt(t, v, rx, ry)
	both := answered(s.waitPrompt(t, 2))
	require.Greater(t, both.Area(), first.Area()+rect.Area()*8/10)
	r := s.clickAt(t, v, rx, ry, chromedp.ButtonModifiers(chromedp.ModifierShift))
	p = s.waitPrompt(t, 3)
	require.Equal(t, []any{r[0], r[1], 0.0}, p.LastSent["points"].([]any)[2], "a background point")
	back := answered(p)
	require.GreaterOrEqual(t, segmenttest.IoU(back, disc), 0.85)
	require.Zero(t, back.Pix[int(r[1])*w+int(r[0])], "the background point is outside the mask")
	require.Equal(t, 0, s.layerAlpha(t, "prompt", r[0], r[1]), "and outside the preview")

	// Enter keeps it as a new instance; undo and redo.
	s.key(t, kb.Enter)
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(`#review-picker-input`)))
	s.key(t, "cat")
	browsertest.WaitFor(t, ctx, `document.querySelector('#review-picker-list li[aria-selected=true]').dataset.name === 'cat'`,
		`document.getElementById('review-picker-list').textContent`, 5*time.Second)
	s.key(t, kb.Enter)
	browsertest.WaitFor(t, ctx, `imagehubReview.item().instances === 1 && imagehubReview.item().active === 0 && imagehubReview.prompt() === null`,
		`JSON.stringify([imagehubReview.item(), imagehubReview.prompt()])`, 5*time.Second)
	require.Equal(t, 1, eval[int](t, ctx, `imagehubReview.item().undo`))
	s.key(t, "z", chromedp.KeyModifiers(chromedp.ModifierCtrl))
	require.Equal(t, 0, eval[int](t, ctx, `imagehubReview.item().instances`), "undo takes the kept mask away")
	s.key(t, "Z", chromedp.KeyModifiers(chromedp.ModifierCtrl, chromedp.ModifierShift))
	require.Equal(t, 1, eval[int](t, ctx, `imagehubReview.item().instances`), "redo brings it back")

	// A box around the ellipse, in a session of its own; Esc drops it.
	eb := ellipse.BBox()
	var drag [][2]float64
	for i := 0; i <= 6; i++ {
		f := float64(i) / 6
		cx, cy := v.toClient(float64(eb[0]-8)+f*float64(eb[2]+16), float64(eb[1]-8)+f*float64(eb[3]+16))
		drag = append(drag, [2]float64{cx, cy})
	}
	s.drag(t, v, drag)
	browsertest.WaitFor(t, ctx, `(p => !!p && !!p.box && !p.inFlight && p.preview >= 0)(imagehubReview.prompt())`,
		`JSON.stringify({prompt: imagehubReview.prompt(), message: document.getElementById('review-message').textContent})`, 15*time.Second)
	p = s.prompt(t)
	require.Nil(t, p.LastSent["points"], "a box alone")
	require.GreaterOrEqual(t, segmenttest.IoU(answered(p), ellipse), 0.85)
	s.key(t, kb.Escape)
	require.Nil(t, s.prompt(t))

	// With the instance selected, a click on the rectangle refines it.
	s.key(t, kb.Tab)
	require.Equal(t, 0, eval[int](t, ctx, `imagehubReview.item().active`))
	s.clickAt(t, v, rx, ry)
	p = s.waitPrompt(t, 1)
	require.True(t, p.Refining)
	inst := mask.Encode(back)
	require.Equal(t, map[string]any{"size": []any{float64(h), float64(w)}, "counts": inst.Counts}, p.LastSent["instance"],
		"the selected instance is sent to be refined")
	refined := answered(p)
	require.Greater(t, refined.Area(), back.Area()+rect.Area()*8/10, "the rectangle added to the disc")
	s.key(t, kb.Enter)
	browsertest.WaitFor(t, ctx, `imagehubReview.prompt() === null && imagehubReview.item().undo === 2`,
		`JSON.stringify([imagehubReview.item(), imagehubReview.prompt()])`, 5*time.Second)
	s.key(t, "z", chromedp.KeyModifiers(chromedp.ModifierCtrl))
	s.key(t, "z", chromedp.KeyModifiers(chromedp.ModifierCtrl))
	s.key(t, "y", chromedp.KeyModifiers(chromedp.ModifierCtrl))
	s.key(t, "y", chromedp.KeyModifiers(chromedp.ModifierCtrl))
	require.Equal(t, 2, eval[int](t, ctx, `imagehubReview.item().undo`))

	// Submitted, the instance is the API's refined answer, pixel for pixel.
	s.key(t, kb.Enter)
	browsertest.WaitFor(t, ctx, `imagehubReview.saved() === 1`, `document.getElementById('review-message').textContent`, 15*time.Second)
	var label string
	var rle mask.RLE
	require.NoError(t, s.tb.pool.QueryRow(context.Background(), `
		SELECT l.name, a.height, a.width, a.counts FROM annotations a JOIN labels l ON l.id = a.label_id
		WHERE a.review_item_id = $1`, s.item).Scan(&label, &rle.Size[0], &rle.Size[1], &rle.Counts))
	require.Equal(t, "cat", label)
	requireSamePixels(t, refined, rle, "the kept, refined mask")
	s.js.none(t)
}

// TestReviewClickToSegmentUnavailableInBrowser: with no interactive model
// enabled a click with the click tool says so plainly, and the page goes
// on working.
func TestReviewClickToSegmentUnavailableInBrowser(t *testing.T) {
	t.Parallel()
	const w, h = 320, 240
	s := seedReviewScene(t, w, h, 1, func(h, w int) []sceneProposal { return nil }, 0)
	s.open(t, "rita@example.com", 0)
	status, _ := s.segment(t, map[string]any{"points": [][3]float64{{10, 10, 1}}})
	require.Equal(t, http.StatusServiceUnavailable, status)
	s.key(t, "c")
	s.nextFrames(t)
	s.clickAt(t, s.view(t), 100, 100)
	browsertest.WaitFor(t, s.ctx, `document.getElementById('review-message').textContent.includes('Click to segment is not available')`,
		`document.getElementById('review-message').textContent`, 10*time.Second)
	require.Equal(t, -1, s.prompt(t).Preview)
	s.key(t, kb.Escape)
	require.Nil(t, s.prompt(t))
	s.js.none(t)
}

// BenchmarkReviewClickToMask: in headless Chromium, a reviewer with the
// click tool on 1200×900 photos (about a megapixel, segmenttest's shapes)
// served by the project's CPU interactive segmenter behind the hub. It
// reports, from the release of each click to the frame that drew its mask
// (timed in the page; the hub's and the worker's time included), the
// median and 95th percentile over 50 clicks (object clicks starting
// sessions, and background clicks added to them), and the first click's
// time on the image leased when the page opened and on the next image,
// leased ahead while the first was worked on, right after the submit
// shows it.
func BenchmarkReviewClickToMask(b *testing.B) {
	const w, h = 1200, 900
	s, photos := shapesScene(b, w, h, 2)
	enableClickSegmenter(b, s.tb)
	s.open(b, "rita@example.com", 0)
	s.key(b, "c")
	s.nextFrames(b)
	v := s.view(b)
	rng := rand.New(rand.NewPCG(3, 4))
	// inside is a random pixel of a shape.
	inside := func(m *mask.Bitmap) (float64, float64) {
		bb := m.BBox()
		for {
			x, y := bb[0]+rng.IntN(bb[2]), bb[1]+rng.IntN(bb[3])
			if m.Pix[y*m.W+x] != 0 {
				return float64(x) + 0.5, float64(y) + 0.5
			}
		}
	}
	firstMs := func() float64 {
		b.Helper()
		return eval[float64](b, s.ctx, `imagehubReview.promptTimings.filter(t => t.first).slice(-1)[0].ms`)
	}
	shapes := photos[0].Shapes
	x, y := inside(shapes[0].Mask)
	s.clickAt(b, v, x, y)
	s.waitPrompt(b, 1)
	first := firstMs()

	var all []float64
	for b.Loop() {
		eval[bool](b, s.ctx, `(imagehubReview.promptTimings.length = 0, true)`)
		for i := range 50 {
			k := (i / 2) % len(shapes)
			if i%2 == 0 {
				s.key(b, kb.Escape)
				x, y := inside(shapes[k].Mask)
				s.clickAt(b, v, x, y)
				s.waitPrompt(b, 1)
			} else {
				x, y := inside(shapes[(k+1)%len(shapes)].Mask)
				s.clickAt(b, v, x, y, chromedp.ButtonModifiers(chromedp.ModifierShift))
				s.waitPrompt(b, 2)
			}
		}
		all = append(all, eval[[]float64](b, s.ctx, `imagehubReview.promptTimings.map(t => t.ms)`)...)
	}
	require.Len(b, all, 50*b.N, "every click's mask was drawn")
	slices.Sort(all)
	pct := func(q float64) float64 { return all[int(math.Ceil(q*float64(len(all))))-1] }

	// Submit (nothing kept): the next image, leased ahead, is on screen at
	// once; the first click on it.
	s.key(b, kb.Escape)
	s.key(b, kb.Enter)
	browsertest.WaitFor(b, s.ctx, fmt.Sprintf(`(imagehubReview.item() || {}).id === %q`, s.items[1].String()),
		`JSON.stringify(imagehubReview.item())`, 15*time.Second)
	s.nextFrames(b)
	v = s.view(b)
	x, y = inside(photos[1].Shapes[0].Mask)
	s.clickAt(b, v, x, y)
	s.waitPrompt(b, 1)
	next := firstMs()

	b.ReportMetric(pct(0.5), "p50-ms/click")
	b.ReportMetric(pct(0.95), "p95-ms/click")
	b.ReportMetric(all[len(all)-1], "max-ms/click")
	b.ReportMetric(first, "first-ms")
	b.ReportMetric(next, "next-first-ms")
	browsertest.Screenshot(b, s.ctx, "review-click")
	s.js.none(b)
}
