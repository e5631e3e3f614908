package app

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"image"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/browsertest"
	"github.com/deepimageshub/imagehub/config"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/views"
)

// jsErrors collects the page's uncaught exceptions, so a test fails on a
// script error even when what it checks happens to look right.
type jsErrors struct {
	mu   sync.Mutex
	errs []string
}

func watchJSErrors(t testing.TB, ctx context.Context) *jsErrors {
	t.Helper()
	je := &jsErrors{}
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			msg := e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
			je.mu.Lock()
			je.errs = append(je.errs, msg)
			je.mu.Unlock()
		}
	}))
	return je
}

func (je *jsErrors) none(t testing.TB) {
	t.Helper()
	je.mu.Lock()
	defer je.mu.Unlock()
	require.Empty(t, je.errs, "uncaught JavaScript exceptions")
}

// eval evaluates a JavaScript expression into T, failing the test on error.
func eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	require.NoError(t, err, "evaluating %.200s", expr)
	return v
}

// rowsHash is FNV-1a over a row-major bitmap, the same in Go and in the page.
func rowsHash(pix []uint8) uint32 {
	h := fnv.New32a()
	for _, v := range pix {
		if v != 0 {
			h.Write([]byte{1})
		} else {
			h.Write([]byte{0})
		}
	}
	return h.Sum32()
}

const jsRowsHash = `function rowsHash(rows) {
	let h = 0x811c9dc5;
	for (let i = 0; i < rows.length; i++) { h ^= rows[i] ? 1 : 0; h = Math.imul(h, 0x01000193) >>> 0; }
	return h >>> 0;
}`

// TestReviewRLEInBrowser runs static/rle.js (the ES module, imported as it
// is) in headless Chromium against
// the Go package mask: every one of the 734 real COCO masks decodes and
// re-encodes to the same string with the same area, box and pixels; random
// masks encoded by Go read back the same in the page; and random masks
// encoded by the page, from the whole image and from crops of it, are what
// Go decodes and encodes, pixel for pixel and character for character.
func TestReviewRLEInBrowser(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("../static/rle.js")
	require.NoError(t, err)
	ctx := browsertest.New(t)
	je := watchJSErrors(t, ctx)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("about:blank")))
	eval[bool](t, ctx, `import("data:text/javascript;base64,`+base64.StdEncoding.EncodeToString(src)+`").then(m => {
		window.imagehubRLE = m;
		`+jsRowsHash+`
		window.rowsHash = rowsHash;
		return true;
	})`)

	type result struct {
		Counts string `json:"counts"`
		Area   int    `json:"area"`
		BBox   [4]int `json:"bbox"`
		Hash   uint32 `json:"hash"`
	}
	roundTrip := func(t *testing.T, masks []mask.RLE) []result {
		t.Helper()
		in, err := json.Marshal(masks)
		require.NoError(t, err)
		return eval[[]result](t, ctx, `(() => {
			const R = window.imagehubRLE;
			return `+string(in)+`.map(m => {
				const d = R.decode(m), h = m.size[0], w = m.size[1];
				return {counts: R.encode(d.crop, w, h), area: d.area, bbox: R.bbox(d.crop), hash: rowsHash(R.toRows(d.crop, w, h))};
			});
		})()`)
	}
	check := func(t *testing.T, masks []mask.RLE, got []result) {
		t.Helper()
		require.Len(t, got, len(masks))
		for i, m := range masks {
			b, err := m.Decode()
			require.NoError(t, err)
			area, err := m.Area()
			require.NoError(t, err)
			box, err := m.BBox()
			require.NoError(t, err)
			require.Equal(t, m.Counts, got[i].Counts, "mask %d: decode then encode in the page changed the string", i)
			require.Equal(t, area, got[i].Area, "mask %d: area", i)
			require.Equal(t, box, got[i].BBox, "mask %d: box", i)
			require.Equal(t, rowsHash(b.Pix), got[i].Hash, "mask %d: pixels", i)
		}
	}

	t.Run("coco", func(t *testing.T) {
		data, err := os.ReadFile("../mask/testdata/instances_val2014_fakesegm100_results.json")
		require.NoError(t, err)
		var rows []struct {
			Segmentation mask.RLE `json:"segmentation"`
		}
		require.NoError(t, json.Unmarshal(data, &rows))
		require.Len(t, rows, 734)
		masks := make([]mask.RLE, len(rows))
		for i, r := range rows {
			masks[i] = r.Segmentation
		}
		for start := 0; start < len(masks); start += 100 {
			part := masks[start:min(start+100, len(masks))]
			check(t, part, roundTrip(t, part))
		}
	})

	t.Run("go to page", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 6))
		var masks []mask.RLE
		for i := range 120 {
			w, h := 1+rng.IntN(90), 1+rng.IntN(90)
			if i%10 == 0 {
				w, h = 1+rng.IntN(3), 1+rng.IntN(700) // thin
			}
			b := mask.NewBitmap(w, h)
			density := []float64{0, 0.02, 0.5, 0.98, 1}[i%5]
			for j := range b.Pix {
				if rng.Float64() < density {
					b.Pix[j] = 1
				}
			}
			if i%7 == 0 {
				b.Pix[0] = 1 // the first run is empty
			}
			masks = append(masks, mask.Encode(b))
		}
		// Long runs: differences that take five and six characters.
		big := mask.NewBitmap(4000, 3000)
		for y := 1000; y < 2900; y++ {
			for x := 100; x < 3900; x++ {
				big.Pix[y*4000+x] = 1
			}
		}
		big.Pix[0] = 1
		masks = append(masks, mask.Encode(big))
		check(t, masks, roundTrip(t, masks))
	})

	t.Run("page to go", func(t *testing.T) {
		type made struct {
			W, H   int
			Rows   string   // base64 of the row-major bitmap
			Counts []string // from the whole image, the tight crop, and a loose crop
		}
		got := eval[[]made](t, ctx, `(() => {
			const R = window.imagehubRLE;
			let s = 12345;
			const rnd = () => { s = (s + 0x6D2B79F5) | 0; let t = Math.imul(s ^ (s >>> 15), 1 | s); t ^= t + Math.imul(t ^ (t >>> 7), 61 | t); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
			const out = [];
			for (let i = 0; i < 150; i++) {
				const w = 1 + Math.floor(rnd() * 120), h = 1 + Math.floor(rnd() * 120);
				const rows = new Uint8Array(w * h);
				const kind = i % 4;
				if (kind === 0) { for (let j = 0; j < rows.length; j++) rows[j] = rnd() < 0.5 ? 1 : 0; }
				if (kind === 1) { // a disk, as the brush paints
					const cx = rnd() * w, cy = rnd() * h, r = rnd() * 40;
					for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if ((x - cx) ** 2 + (y - cy) ** 2 <= r * r) rows[y * w + x] = 1;
				}
				if (kind === 2) { for (let j = 0; j < rows.length; j++) rows[j] = rnd() < 0.97 ? 1 : 0; }
				// kind 3: empty
				const full = R.fromRows(rows, w, h);
				const counts = [R.encode(full, w, h)];
				const tight = R.decode({size: [h, w], counts: counts[0]}).crop;
				counts.push(R.encode(tight, w, h));
				const bb = R.bbox(full);
				if (bb[2] > 0) {
					const x0 = Math.max(0, bb[0] - 3), y0 = Math.max(0, bb[1] - 2);
					const x1 = Math.min(w, bb[0] + bb[2] + 4), y1 = Math.min(h, bb[1] + bb[3] + 1);
					const loose = {x: x0, y: y0, w: x1 - x0, h: y1 - y0, data: new Uint8Array((x1 - x0) * (y1 - y0))};
					for (let x = x0; x < x1; x++) for (let y = y0; y < y1; y++) loose.data[(x - x0) * loose.h + (y - y0)] = rows[y * w + x];
					counts.push(R.encode(loose, w, h));
				}
				let bin = ""; for (const v of rows) bin += String.fromCharCode(v);
				out.push({W: w, H: h, Rows: btoa(bin), Counts: counts});
			}
			return out;
		})()`)
		require.Len(t, got, 150)
		for i, m := range got {
			rows, err := base64.StdEncoding.DecodeString(m.Rows)
			require.NoError(t, err)
			want := mask.Encode(&mask.Bitmap{W: m.W, H: m.H, Pix: rows})
			for j, counts := range m.Counts {
				require.Equal(t, want.Counts, counts, "mask %d, encoding %d: the page and Go disagree", i, j)
				b, err := mask.RLE{Size: [2]int{m.H, m.W}, Counts: counts}.Decode()
				require.NoError(t, err, "mask %d: Go cannot read the page's counts", i)
				require.Equal(t, rows, b.Pix, "mask %d: Go reads other pixels than the page wrote", i)
			}
		}
	})
	je.none(t)
}

// reviewScene is uploaded photos waiting for review with proposals, and a
// reviewer signed in in a headless browser with the review page open.
type reviewScene struct {
	tb        *testBundle
	ctx       context.Context
	js        *jsErrors
	image     uuid.UUID   // the first image in the queue
	item      uuid.UUID   // its review item
	proposals []uuid.UUID // its proposals
	items     []uuid.UUID // every review item, in queue order
	w, h      int
}

// sceneProposal is one proposal to seed.
type sceneProposal struct {
	label string
	score float32
	mask  mask.RLE
}

// newReviewScene uploads images w×h photos through the API (so ingest
// makes the real thumbnails), stores the proposals and a first review item
// for each as inference leaves them (the first image first in the queue),
// and opens the review page as a reviewer in the browser.
func newReviewScene(t testing.TB, w, h, images int, props func(h, w int) []sceneProposal) *reviewScene {
	t.Helper()
	s := seedReviewScene(t, w, h, images, props, 0)
	s.open(t, "rita@example.com", len(props(h, w)))
	require.Equal(t, s.item.String(), eval[string](t, s.ctx, `imagehubReview.item().id`))
	return s
}

// seedReviewScene is newReviewScene before the browser: the reviewer
// rita@example.com uploads the photos, and secondShare of first reviews
// get a blind second review.
func seedReviewScene(t testing.TB, w, h, images int, props func(h, w int) []sceneProposal, secondShare float64) *reviewScene {
	t.Helper()
	return seedReviewScenePhotos(t, w, h, images, props, secondShare, func(n int) image.Image { return imagingtest.Photo(w, h, 41+uint64(n)) })
}

// seedReviewScenePhotos is seedReviewScene with the photos photo(n) makes.
func seedReviewScenePhotos(t testing.TB, w, h, images int, props func(h, w int) []sceneProposal, secondShare float64, photo func(n int) image.Image) *reviewScene {
	t.Helper()
	tb := setup(t, func(c *config.Config) { c.SecondReviewShare = secondShare })
	rev, _ := tb.userWithRole(t, "rita@example.com", auth.RoleReviewer)
	s := &reviewScene{tb: tb, w: w, h: h}
	ctx := context.Background()
	var model uuid.UUID
	require.NoError(t, tb.pool.QueryRow(ctx, `INSERT INTO models (name, version, enabled) VALUES ('seg', '1', false) RETURNING id`).Scan(&model))
	list := props(h, w)
	for n := range images {
		res := rev.upload([]file{{fmt.Sprintf("street-%d.jpg", n), imagingtest.JPEG(photo(n))}}, nil)
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
		id := res.json(t)["results"].([]any)[0].(map[string]any)["image"].(map[string]any)["id"].(string)
		img := rev.waitStatus(id)
		require.Equal(t, "awaiting_inference", img["status"], "no model is registered yet")
		image, props, item := s.seed(t, uuid.MustParse(id), model, list, float64(n)/10)
		if n == 0 {
			s.image, s.proposals, s.item = image, props, item
		}
		s.items = append(s.items, item)
	}
	return s
}

// open signs the reviewer in, in a new headless browser that asks for the
// page's test hook, opens the review page and waits for an item with
// instances instances on screen.
func (s *reviewScene) open(t testing.TB, email string, instances int) {
	t.Helper()
	s.ctx = browsertest.New(t)
	browsertest.ExposeHooks(t, s.ctx)
	s.js = watchJSErrors(t, s.ctx)
	require.NoError(t, chromedp.Do(s.ctx,
		chromedp.Navigate(s.tb.base+"/login"),
		chromedp.SendKeys(`#email`, email),
		chromedp.SendKeys(`#password`, testPassword),
		chromedp.Submit(`#password`),
		chromedp.WaitVisible(`a[href="/review"]`),
		chromedp.Navigate(s.tb.base+"/review"),
	))
	browsertest.WaitFor(t, s.ctx,
		fmt.Sprintf(`!!(window.imagehubReview && imagehubReview.item() && imagehubReview.item().instances === %d)`, instances),
		`JSON.stringify({item: window.imagehubReview && imagehubReview.item(), message: document.getElementById('review-message').textContent, overlay: document.getElementById('review-overlay').textContent})`,
		30*time.Second)
}

// seed stores an image's proposals and its first review item (queued with
// the confidence given), and marks the image awaiting review.
func (s *reviewScene) seed(t testing.TB, image, model uuid.UUID, list []sceneProposal, confidence float64) (uuid.UUID, []uuid.UUID, uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	tx, err := s.tb.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	var ids []uuid.UUID
	for i, p := range list {
		area, err := p.mask.Area()
		require.NoError(t, err)
		box, err := p.mask.BBox()
		require.NoError(t, err)
		pid := uuid.New()
		_, err = tx.Exec(ctx, `
			INSERT INTO labels (name, display_name) VALUES ($1, initcap($1)) ON CONFLICT (name) DO NOTHING`, p.label)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, `
			INSERT INTO proposals (id, image_id, model_id, rank, label_id, score, bbox, area, height, width, counts)
			VALUES ($1, $2, $3, $4, (SELECT id FROM labels WHERE name = $5), $6, $7, $8, $9, $10, $11)`,
			pid, image, model, i, p.label, p.score, []int32{int32(box[0]), int32(box[1]), int32(box[2]), int32(box[3])},
			area, s.h, s.w, p.mask.Counts)
		require.NoError(t, err)
		ids = append(ids, pid)
	}
	_, err = tx.Exec(ctx, `UPDATE images SET status = 'awaiting_review' WHERE id = $1`, image)
	require.NoError(t, err)
	var item uuid.UUID
	require.NoError(t, tx.QueryRow(ctx, `
		INSERT INTO review_items (image_id, kind, confidence) VALUES ($1, 'first', $2)
		ON CONFLICT (image_id, kind) DO UPDATE SET confidence = EXCLUDED.confidence RETURNING id`,
		image, confidence).Scan(&item))
	require.NoError(t, tx.Commit(ctx))
	return image, ids, item
}

// reviewView is the page's view: where the stage is on screen and which
// image pixel its corner shows.
type reviewView struct {
	Left, Top, Width, Height float64
	Zoom, PanX, PanY, DPR    float64
}

func (s *reviewScene) view(t testing.TB) reviewView {
	t.Helper()
	var v reviewView
	raw := eval[json.RawMessage](t, s.ctx, `imagehubReview.view()`)
	require.NoError(t, json.Unmarshal(raw, &v))
	return v
}

// toImage is the page's pointer mapping (toImage in review.js), in the same
// floating-point operations.
func (v reviewView) toImage(cx, cy float64) [2]float64 {
	return [2]float64{(cx-v.Left)/v.Zoom + v.PanX, (cy-v.Top)/v.Zoom + v.PanY}
}

// toClient is the whole client pixel showing image point (x, y).
func (v reviewView) toClient(x, y float64) (float64, float64) {
	return math.Round(v.Left + (x-v.PanX)*v.Zoom), math.Round(v.Top + (y-v.PanY)*v.Zoom)
}

func (s *reviewScene) key(t testing.TB, keys string, opts ...chromedp.KeyOption) {
	t.Helper()
	require.NoError(t, chromedp.Do(s.ctx, chromedp.KeyEvent(keys, opts...)))
}

func buttonsLeft(p *input.DispatchMouseEventParams) { p.Buttons = 1 }

// drag presses the left button at the first client point, moves through
// the others and releases at the last; it returns the image points the
// page saw, in order.
func (s *reviewScene) drag(t testing.TB, v reviewView, pts [][2]float64) [][2]float64 {
	t.Helper()
	var img [][2]float64
	steps := []chromedp.Action[chromedp.Void]{chromedp.MouseEvent(chromedp.MouseMoved, pts[0][0], pts[0][1])}
	steps = append(steps, chromedp.MouseEvent(chromedp.MousePressed, pts[0][0], pts[0][1], chromedp.ButtonLeft, buttonsLeft, chromedp.ClickCount(1)))
	for _, p := range pts {
		img = append(img, v.toImage(p[0], p[1]))
	}
	for _, p := range pts[1:] {
		steps = append(steps, chromedp.MouseEvent(chromedp.MouseMoved, p[0], p[1], chromedp.ButtonLeft, buttonsLeft))
	}
	last := pts[len(pts)-1]
	steps = append(steps, chromedp.MouseEvent(chromedp.MouseReleased, last[0], last[1], chromedp.ButtonLeft, chromedp.ClickCount(1)))
	require.NoError(t, chromedp.Do(s.ctx, steps...))
	return img
}

// nextFrames waits until the page has drawn two more frames, so work
// queued for the next animation frame is done.
func (s *reviewScene) nextFrames(t testing.TB) {
	t.Helper()
	eval[bool](t, s.ctx, `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`)
}

// brushPaint is the page's brush (stamp and applyStroke in review.js) in
// Go: a disk of size s, where 4(dx² + dy²) ≤ s², centred on the pixel
// under each point, stamped at the first point and every quarter size
// along each segment after it.
func brushPaint(b *mask.Bitmap, size int, val uint8, pts [][2]float64) {
	stamp := func(fx, fy float64) {
		cx, cy, r := int(math.Floor(fx)), int(math.Floor(fy)), size/2
		for x := max(0, cx-r); x <= min(b.W-1, cx+r); x++ {
			for y := max(0, cy-r); y <= min(b.H-1, cy+r); y++ {
				if dx, dy := x-cx, y-cy; 4*(dx*dx+dy*dy) <= size*size {
					b.Pix[y*b.W+x] = val
				}
			}
		}
	}
	step := math.Max(1, float64(size)/4)
	for i, p := range pts {
		if i == 0 {
			stamp(p[0], p[1])
			continue
		}
		last := pts[i-1]
		dx, dy := p[0]-last[0], p[1]-last[1]
		n := int(math.Ceil(math.Sqrt(dx*dx+dy*dy) / step))
		for j := 1; j <= n; j++ {
			stamp(last[0]+dx*float64(j)/float64(n), last[1]+dy*float64(j)/float64(n))
		}
	}
}

func rectMask(h, w, x0, y0, x1, y1 int) *mask.Bitmap {
	b := mask.NewBitmap(w, h)
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			b.Pix[y*w+x] = 1
		}
	}
	return b
}

// ellipseRLE is an h×w mask holding an axis-aligned ellipse, built from
// its runs column by column.
func ellipseRLE(h, w int, cx, cy, rx, ry float64) mask.RLE {
	var runs []uint32
	zeros := uint32(0)
	for x := range w {
		dx := (float64(x) + 0.5 - cx) / rx
		if dx*dx >= 1 {
			zeros += uint32(h)
			continue
		}
		half := ry * math.Sqrt(1-dx*dx)
		y0 := max(0, int(math.Ceil(cy-half-0.5)))
		y1 := min(h, int(math.Ceil(cy+half-0.5)))
		if y1 <= y0 {
			zeros += uint32(h)
			continue
		}
		runs = append(runs, zeros+uint32(y0), uint32(y1-y0))
		zeros = uint32(h - y1)
	}
	runs = append(runs, zeros)
	return mask.FromRuns(h, w, runs)
}

// TestReviewBrushUndoSubmitInBrowser: in real headless Chromium a reviewer
// rejects one proposal, adds an instance, paints a stroke, undoes it, paints
// another, erases part of a proposal, and submits with Enter; the stored
// masks are exactly the pixels painted and erased.
func TestReviewBrushUndoSubmitInBrowser(t *testing.T) {
	t.Parallel()
	const w, h = 640, 480
	cat := rectMask(h, w, 60, 80, 260, 240)
	s := newReviewScene(t, w, h, 1, func(h, w int) []sceneProposal {
		return []sceneProposal{
			{"cat", 0.9, mask.Encode(cat)},
			{"dog", 0.4, ellipseRLE(h, w, 470, 300, 90, 60)},
		}
	})
	ctx := s.ctx

	// One image pixel per screen pixel, so the pointer lands on known pixels.
	s.key(t, "1")
	s.nextFrames(t)
	v := s.view(t)
	require.Equal(t, 1.0, v.Zoom)
	require.Equal(t, 1.0, v.DPR)
	brush := eval[int](t, ctx, `imagehubReview.brushSize()`)

	// Tab selects the first proposal (the cat, best score), Tab the dog; X rejects it.
	s.key(t, kb.Tab)
	s.key(t, kb.Tab)
	require.Equal(t, 1, eval[int](t, ctx, `imagehubReview.item().active`))
	s.key(t, "x")
	require.Equal(t, "rejected", eval[string](t, ctx, `document.querySelectorAll('#review-instances li')[1].dataset.status`))

	// N adds an instance: type to find its label, Enter to choose it.
	s.key(t, "n")
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(`#review-picker-input`)))
	s.key(t, "do")
	browsertest.WaitFor(t, ctx, `document.querySelector('#review-picker-list li[aria-selected=true]').dataset.name === 'dog'`,
		`document.getElementById('review-picker-input').value + ' | ' + document.getElementById('review-picker-list').textContent`, 5*time.Second)
	s.key(t, kb.Enter)
	browsertest.WaitFor(t, ctx, `imagehubReview.item().instances === 3 && imagehubReview.item().active === 2`,
		`JSON.stringify(imagehubReview.item())`, 5*time.Second)

	// Stroke A, undone; then stroke B stays.
	line := func(x0, y0, x1, y1 float64, n int) [][2]float64 {
		var pts [][2]float64
		for i := 0; i <= n; i++ {
			cx, cy := v.toClient(x0+(x1-x0)*float64(i)/float64(n), y0+(y1-y0)*float64(i)/float64(n))
			pts = append(pts, [2]float64{cx, cy})
		}
		return pts
	}
	s.drag(t, v, line(300, 60, 420, 120, 15))
	s.nextFrames(t)
	require.Equal(t, 3, eval[int](t, ctx, `imagehubReview.item().undo`), "reject, add and stroke A")
	s.key(t, "z", chromedp.KeyModifiers(chromedp.ModifierCtrl))
	require.Equal(t, 2, eval[int](t, ctx, `imagehubReview.item().undo`))
	require.Equal(t, 1, eval[int](t, ctx, `imagehubReview.item().redo`))

	var strokeB [][2]float64
	for i := 0; i <= 24; i++ { // a curve, with uneven steps
		a := float64(i) / 24 * math.Pi
		cx, cy := v.toClient(330+150*float64(i)/24, 380-70*math.Sin(a)+float64(i%3))
		strokeB = append(strokeB, [2]float64{cx, cy})
	}
	imgB := s.drag(t, v, strokeB)
	s.nextFrames(t)
	require.Equal(t, 3, eval[int](t, ctx, `imagehubReview.item().undo`), "reject, add and stroke B")

	// Tab wraps to the cat; the eraser takes a bite out of its corner.
	s.key(t, kb.Tab)
	require.Equal(t, 0, eval[int](t, ctx, `imagehubReview.item().active`))
	s.key(t, "e")
	imgC := s.drag(t, v, line(240, 70, 280, 120, 6))
	s.nextFrames(t)
	browsertest.Screenshot(t, ctx, "review-before-submit")

	s.key(t, kb.Enter)
	browsertest.WaitFor(t, ctx, `imagehubReview.saved() === 1`,
		`document.getElementById('review-message').textContent`, 15*time.Second)

	wantDog := mask.NewBitmap(w, h)
	brushPaint(wantDog, brush, 1, imgB)
	wantCat := &mask.Bitmap{W: w, H: h, Pix: slices.Clone(cat.Pix)}
	brushPaint(wantCat, brush, 0, imgC)
	require.NotEqual(t, 0, wantDog.Area())
	require.Less(t, wantCat.Area(), cat.Area(), "the eraser stroke crosses the cat")

	rows, err := s.tb.pool.Query(context.Background(), `
		SELECT l.name, a.proposal_id, a.height, a.width, a.counts
		FROM annotations a JOIN labels l ON l.id = a.label_id
		WHERE a.review_item_id = $1 ORDER BY l.name`, s.item)
	require.NoError(t, err)
	type stored struct {
		label    string
		proposal *uuid.UUID
		rle      mask.RLE
	}
	var got []stored
	for rows.Next() {
		var st stored
		require.NoError(t, rows.Scan(&st.label, &st.proposal, &st.rle.Size[0], &st.rle.Size[1], &st.rle.Counts))
		got = append(got, st)
	}
	require.NoError(t, rows.Err())
	require.Len(t, got, 2, "the cat, corrected, and the new dog; the rejected dog proposal is not an annotation")

	require.Equal(t, "cat", got[0].label)
	require.NotNil(t, got[0].proposal)
	require.Equal(t, s.proposals[0], *got[0].proposal)
	requireSamePixels(t, wantCat, got[0].rle, "the erased cat")

	require.Equal(t, "dog", got[1].label)
	require.Nil(t, got[1].proposal)
	requireSamePixels(t, wantDog, got[1].rle, "the painted dog")

	var verdicts []string
	require.NoError(t, s.tb.pool.QueryRow(context.Background(), `
		SELECT array_agg(verdict ORDER BY proposal_id = $2 DESC) FROM proposal_verdicts WHERE review_item_id = $1`,
		s.item, s.proposals[0]).Scan(&verdicts))
	require.Equal(t, []string{"corrected", "rejected"}, verdicts)
	require.Equal(t, 1, s.tb.count(t, `SELECT count(*) FROM images WHERE id = $1 AND status = 'reviewed'`, s.image))
	s.js.none(t)
}

// polygonFill is the page's polygon fill (closePolygon in review.js) in
// Go: a pixel is inside when its centre is, by the even-odd rule.
func polygonFill(b *mask.Bitmap, pts [][2]float64) {
	for x := range b.W {
		X := float64(x) + 0.5
		var ys []float64
		for i, j := 0, len(pts)-1; i < len(pts); j, i = i, i+1 {
			a, c := pts[j], pts[i]
			if (a[0] <= X) != (c[0] <= X) {
				ys = append(ys, a[1]+(X-a[0])*(c[1]-a[1])/(c[0]-a[0]))
			}
		}
		slices.Sort(ys)
		for q := 0; q+1 < len(ys); q += 2 {
			for y := max(0, int(math.Ceil(ys[q]-0.5))); y <= min(b.H-1, int(math.Ceil(ys[q+1]-0.5))-1); y++ {
				b.Pix[y*b.W+x] = 1
			}
		}
	}
}

// TestReviewPolygonRelabelQueueInBrowser: a reviewer draws an instance as
// two polygons (one closed by a click on its first point, one with Enter),
// undoes and redoes the second, relabels a proposal by typing, and submits
// with the button: the next image, leased ahead, is on screen at once, and
// the stored masks are the polygons' pixels. When the lease of the image on
// screen is lost the page says so, and Enter moves on.
func TestReviewPolygonRelabelQueueInBrowser(t *testing.T) {
	t.Parallel()
	const w, h = 640, 480
	cat := rectMask(h, w, 40, 40, 200, 160)
	s := newReviewScene(t, w, h, 2, func(h, w int) []sceneProposal {
		return []sceneProposal{{"cat", 0.8, mask.Encode(cat)}}
	})
	ctx := s.ctx
	// The next image is leased while this one is worked on.
	require.Eventually(t, func() bool {
		return s.tb.count(t, `SELECT count(*) FROM review_items WHERE leased_by IS NOT NULL`) == 2
	}, 10*time.Second, 50*time.Millisecond, "the second item is leased ahead")

	s.key(t, "1")
	s.nextFrames(t)
	v := s.view(t)
	click := func(x, y float64) {
		cx, cy := v.toClient(x, y)
		require.NoError(t, chromedp.Do(ctx, chromedp.MouseClickXY(cx, cy)))
	}
	s.key(t, "n")
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(`#review-picker-input`)))
	s.key(t, "dog")
	s.key(t, kb.Enter)
	browsertest.WaitFor(t, ctx, `imagehubReview.item().active === 1`, `JSON.stringify(imagehubReview.item())`, 5*time.Second)
	s.key(t, "p")
	// A concave pentagon, closed by clicking its first point again.
	first := [][2]float64{{300, 100}, {420, 130}, {360, 180}, {440, 260}, {290, 240}}
	var seen [][2]float64
	for _, p := range first {
		cx, cy := v.toClient(p[0], p[1])
		seen = append(seen, v.toImage(cx, cy))
		click(p[0], p[1])
	}
	click(first[0][0]+2, first[0][1]-1)
	// A triangle, closed with Enter.
	second := [][2]float64{{450, 300}, {600, 320}, {500, 450}}
	var seen2 [][2]float64
	for _, p := range second {
		cx, cy := v.toClient(p[0], p[1])
		seen2 = append(seen2, v.toImage(cx, cy))
		click(p[0], p[1])
	}
	s.key(t, kb.Enter)
	s.nextFrames(t)
	require.Equal(t, 3, eval[int](t, ctx, `imagehubReview.item().undo`), "add and two polygons")
	s.key(t, "z", chromedp.KeyModifiers(chromedp.ModifierCtrl))
	require.Equal(t, 1, eval[int](t, ctx, `imagehubReview.item().redo`))
	s.key(t, "Z", chromedp.KeyModifiers(chromedp.ModifierCtrl, chromedp.ModifierShift))
	require.Equal(t, 0, eval[int](t, ctx, `imagehubReview.item().redo`))
	require.Equal(t, 3, eval[int](t, ctx, `imagehubReview.item().undo`))

	// Relabel the cat: select it with the select tool, L, type, Enter.
	s.key(t, "v")
	click(100, 100)
	require.Equal(t, 0, eval[int](t, ctx, `imagehubReview.item().active`))
	s.key(t, "l")
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(`#review-picker-input`)))
	s.key(t, "hors")
	s.key(t, kb.Enter)
	browsertest.WaitFor(t, ctx, `document.querySelector('#review-instances li .name').textContent === 'Horse'`,
		`document.getElementById('review-instances').textContent`, 5*time.Second)

	require.NoError(t, chromedp.Do(ctx, chromedp.Click(`#review-submit`)))
	// The second image was leased and prepared ahead: it is on screen as
	// soon as the click is handled, before the submission is answered.
	require.Equal(t, s.items[1].String(), eval[string](t, ctx, `(imagehubReview.item() || {}).id || 'not yet'`))
	browsertest.WaitFor(t, ctx, `imagehubReview.saved() === 1`, `document.getElementById('review-message').textContent`, 15*time.Second)

	want := mask.NewBitmap(w, h)
	polygonFill(want, seen)
	polygonFill(want, seen2)
	var label string
	var rle mask.RLE
	require.NoError(t, s.tb.pool.QueryRow(context.Background(), `
		SELECT l.name, a.height, a.width, a.counts FROM annotations a JOIN labels l ON l.id = a.label_id
		WHERE a.review_item_id = $1 AND a.proposal_id IS NULL`, s.item).Scan(&label, &rle.Size[0], &rle.Size[1], &rle.Counts))
	require.Equal(t, "dog", label)
	requireSamePixels(t, want, rle, "the polygons")
	var iou float32
	require.NoError(t, s.tb.pool.QueryRow(context.Background(), `
		SELECT l.name, a.iou FROM annotations a JOIN labels l ON l.id = a.label_id
		WHERE a.review_item_id = $1 AND a.proposal_id = $2`, s.item, s.proposals[0]).Scan(&label, &iou))
	require.Equal(t, "horse", label)
	require.Equal(t, float32(1), iou, "relabelled, mask untouched")

	// The lease on the second image runs out (the page renews it every
	// minute; here it is taken away), and the page says so when it next
	// renews. Enter moves on: the queue hands the same image out again, on
	// a fresh lease, with nothing of the lost edits.
	s.key(t, "n")
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(`#review-picker-input`)))
	s.key(t, kb.Enter)
	browsertest.WaitFor(t, ctx, `imagehubReview.item().undo === 1`, `JSON.stringify(imagehubReview.item())`, 5*time.Second)
	_, err := s.tb.pool.Exec(context.Background(), `UPDATE review_items SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, s.items[1])
	require.NoError(t, err)
	eval[bool](t, ctx, `(imagehubReview.renew(), true)`)
	browsertest.WaitFor(t, ctx, `document.getElementById('review-message').textContent.includes('lease on this image has expired')`,
		`document.getElementById('review-message').textContent`, 5*time.Second)
	s.key(t, kb.Enter)
	browsertest.WaitFor(t, ctx, fmt.Sprintf(`(imagehubReview.item() || {}).id === %q && imagehubReview.item().undo === 0`, s.items[1].String()),
		`JSON.stringify(imagehubReview.item())`, 5*time.Second)
	require.Equal(t, 1, s.tb.count(t, `SELECT count(*) FROM review_items WHERE id = $1 AND lease_expires_at > now() AND done_at IS NULL`, s.items[1]))
	require.Equal(t, 1, eval[int](t, ctx, `imagehubReview.saved()`))
	s.js.none(t)
}

// TestReviewRefusedSubmissionInBrowser: when the server refuses a
// submission (here a label deleted meanwhile), the next image, already on
// screen, makes way for the refused one, with the instance at fault
// selected and the reason shown; fixed, it goes through, and the next image
// comes back.
func TestReviewRefusedSubmissionInBrowser(t *testing.T) {
	t.Parallel()
	const w, h = 640, 480
	s := newReviewScene(t, w, h, 2, func(h, w int) []sceneProposal {
		return []sceneProposal{{"cat", 0.8, mask.Encode(rectMask(h, w, 40, 40, 200, 160))}}
	})
	ctx := s.ctx
	relabel := func(typed, want string) {
		s.key(t, "l")
		require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(`#review-picker-input`)))
		s.key(t, typed)
		s.key(t, kb.Enter)
		browsertest.WaitFor(t, ctx, fmt.Sprintf(`document.querySelector('#review-instances li .name').textContent === %q`, want),
			`document.getElementById('review-instances').textContent`, 5*time.Second)
	}
	s.key(t, kb.Tab)
	relabel("zebr", "Zebra")
	_, err := s.tb.pool.Exec(context.Background(), `DELETE FROM labels WHERE name = 'zebra'`)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return s.tb.count(t, `SELECT count(*) FROM review_items WHERE leased_by IS NOT NULL`) == 2
	}, 10*time.Second, 50*time.Millisecond, "the second item is leased ahead")

	s.key(t, kb.Enter)
	browsertest.WaitFor(t, ctx,
		fmt.Sprintf(`(imagehubReview.item() || {}).id === %q && document.getElementById('review-message').textContent.includes('refused')`, s.items[0].String()),
		`JSON.stringify([imagehubReview.item(), document.getElementById('review-message').textContent])`, 10*time.Second)
	require.Contains(t, eval[string](t, ctx, `document.getElementById('review-message').textContent`), "not a label")
	require.Equal(t, 0, eval[int](t, ctx, `imagehubReview.item().active`))
	require.True(t, eval[bool](t, ctx, `document.querySelector('#review-instances li').classList.contains('invalid')`))
	require.Equal(t, 0, s.tb.count(t, `SELECT count(*) FROM annotations`), "nothing stored")

	relabel("cat", "Cat")
	s.key(t, kb.Enter)
	browsertest.WaitFor(t, ctx, `imagehubReview.saved() === 1`, `document.getElementById('review-message').textContent`, 10*time.Second)
	require.Equal(t, s.items[1].String(), eval[string](t, ctx, `(imagehubReview.item() || {}).id || 'not yet'`), "the next image, kept ahead")
	var label string
	require.NoError(t, s.tb.pool.QueryRow(context.Background(), `
		SELECT l.name FROM annotations a JOIN labels l ON l.id = a.label_id WHERE a.review_item_id = $1`, s.item).Scan(&label))
	require.Equal(t, "cat", label)
	s.js.none(t)
}

func requireSamePixels(t *testing.T, want *mask.Bitmap, got mask.RLE, what string) {
	t.Helper()
	require.Equal(t, [2]int{want.H, want.W}, got.Size, what)
	b, err := got.Decode()
	require.NoError(t, err, what)
	if !slices.Equal(want.Pix, b.Pix) {
		var diff []string
		for i := range want.Pix {
			if want.Pix[i] != b.Pix[i] && len(diff) < 10 {
				diff = append(diff, fmt.Sprintf("(%d,%d) want %d got %d", i%want.W, i/want.W, want.Pix[i], b.Pix[i]))
			}
		}
		t.Fatalf("%s: stored mask differs from what was painted (area want %d, got %d): %s",
			what, want.Area(), b.Area(), strings.Join(diff, ", "))
	}
	require.Equal(t, mask.Encode(want).Counts, got.Counts, what)
}

// TestReviewPage: the page is for reviewers, lists every shortcut without
// JavaScript, and says the editor needs it.
func TestReviewPage(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	contributor, _ := tb.userWithRole(t, "carl@example.com", auth.RoleContributor)
	require.Equal(t, http.StatusForbidden, contributor.get("/review").StatusCode)
	require.Equal(t, 0, contributor.get("/").doc(t).Find(`nav a[href="/review"]`).Length())

	rev, _ := tb.userWithRole(t, "rita@example.com", auth.RoleReviewer)
	res := rev.get("/review?label=cat")
	require.Equal(t, http.StatusOK, res.StatusCode)
	doc := res.doc(t)
	require.Equal(t, 1, doc.Find(`nav a[href="/review"]`).Length())
	require.Contains(t, doc.Find("#review-nojs").Text(), "needs JavaScript")
	label, _ := doc.Find("#review-app").Attr("data-label")
	require.Equal(t, "cat", label)
	require.Equal(t, "cat", doc.Find("#review-label option[selected]").AttrOr("value", ""))
	help := doc.Find("#review-help").Text()
	for _, want := range []string{"Enter", "Ctrl+Z", "Ctrl+Shift+Z", "[", "]", "Space+drag", "Tab"} {
		require.Contains(t, help, want)
	}
	require.Equal(t, len(views.ReviewShortcuts), doc.Find("#review-help tbody tr").Length())
}

// BenchmarkReviewBrushFrame loads a 1600×1200 photo with 500 proposals
// into the review page in headless Chromium, selects the largest, zooms to
// 100% and paints a brush stroke of 60 pointer moves across its edge; it
// reports the work of each animation frame of the stroke (stamping and
// drawing, timed in the page with performance.now), its 95th percentile and
// its maximum, and beside them the frame that selects the largest instance
// (repainting the overlay of the 499 others under it), first and once
// warm, and the time the page took to decode the 500 proposals.
func BenchmarkReviewBrushFrame(b *testing.B) {
	const w, h, n = 1600, 1200, 500
	s := newReviewScene(b, w, h, 1, func(h, w int) []sceneProposal {
		rng := rand.New(rand.NewPCG(1, 2))
		labels := []string{"person", "car", "dog", "cat", "bicycle"}
		out := []sceneProposal{{"person", 0.99, ellipseRLE(h, w, 800, 600, 420, 300)}}
		for i := 1; i < n; i++ {
			rx, ry := 8+rng.Float64()*110, 8+rng.Float64()*110
			out = append(out, sceneProposal{labels[i%len(labels)], float32(rng.Float64() * 0.95),
				ellipseRLE(h, w, rng.Float64()*float64(w), rng.Float64()*float64(h), rx, ry)})
		}
		return out
	})
	s.key(b, kb.Tab) // the best score: the big ellipse in the middle
	s.nextFrames(b)
	// Selecting it repaints the overlay of the others under it and draws
	// it whole: the heaviest frame there is. The first time, the page's
	// code is still cold; then as a reviewer going to and fro sees it.
	selectMs := eval[float64](b, s.ctx, `imagehubReview.lastFrameMs()`)
	var reselectMs float64
	for range 3 {
		s.key(b, kb.Tab)
		s.nextFrames(b)
		s.key(b, kb.Tab, chromedp.KeyModifiers(chromedp.ModifierShift))
		s.nextFrames(b)
		reselectMs = max(reselectMs, eval[float64](b, s.ctx, `imagehubReview.lastFrameMs()`))
	}
	require.Equal(b, 0, eval[int](b, s.ctx, `imagehubReview.item().active`))
	decodeMs := eval[float64](b, s.ctx, `imagehubReview.item().decodeMs`)
	s.key(b, "1")
	s.key(b, "]")
	s.key(b, "]")
	s.nextFrames(b)
	v := s.view(b)
	var all []float64
	for i := 0; b.Loop(); i++ {
		eval[bool](b, s.ctx, `(imagehubReview.frames.length = 0, true)`)
		var pts [][2]float64
		for j := 0; j <= 60; j++ {
			a := float64(j)/60*2*math.Pi + float64(i)
			cx, cy := v.toClient(800+440*math.Cos(a), 600+250*math.Sin(a)) // in and out of the ellipse
			pts = append(pts, [2]float64{cx, cy})
		}
		s.drag(b, v, pts)
		s.nextFrames(b)
		fr := eval[[]float64](b, s.ctx, `imagehubReview.frames.slice()`)
		all = append(all, fr...)
	}
	require.NotEmpty(b, all)
	slices.Sort(all)
	p95 := all[int(math.Ceil(0.95*float64(len(all))))-1]
	b.ReportMetric(p95, "p95-ms/frame")
	b.ReportMetric(all[len(all)-1], "max-ms/frame")
	b.ReportMetric(float64(len(all))/float64(b.N), "frames/stroke")
	b.ReportMetric(selectMs, "select-ms")
	b.ReportMetric(reselectMs, "reselect-ms")
	b.ReportMetric(decodeMs, "decode-500-ms")
	browsertest.Screenshot(b, s.ctx, "review-500")
	s.js.none(b)
}

// layerAlpha is the alpha of the pixel of a stage layer (image, others,
// active, prompt, ui) that shows image pixel (x, y).
func (s *reviewScene) layerAlpha(t testing.TB, layer string, x, y float64) int {
	t.Helper()
	return eval[int](t, s.ctx, fmt.Sprintf(`(() => {
		const v = imagehubReview.view(), k = v.zoom * v.dpr;
		const c = document.querySelector('canvas[data-layer=%q]');
		return c.getContext('2d').getImageData(Math.floor((%g + 0.5 - v.panX) * k), Math.floor((%g + 0.5 - v.panY) * k), 1, 1).data[3];
	})()`, layer, x, y))
}

// TestReviewOpacityAndHideInBrowser: the opacity control reads what it
// does (the slider's middle is 50%, and the masks are drawn at that
// opacity; the zoom has its own label), and one instance can be hidden and
// shown again, from its row or with Shift+H, while the others stay; a
// hidden instance cannot be clicked on the image, and hiding is no
// verdict: it is stored as accepted.
func TestReviewOpacityAndHideInBrowser(t *testing.T) {
	t.Parallel()
	const w, h = 640, 480
	cat := rectMask(h, w, 60, 80, 260, 240)
	s := newReviewScene(t, w, h, 1, func(h, w int) []sceneProposal {
		return []sceneProposal{
			{"cat", 0.9, mask.Encode(cat)},
			{"dog", 0.4, ellipseRLE(h, w, 470, 300, 90, 60)},
		}
	})
	ctx := s.ctx
	readout := func() (string, string, string, string) {
		t.Helper()
		out := eval[[]string](t, ctx, `[
			document.getElementById('review-opacity').value,
			document.getElementById('review-opacity-value').textContent,
			getComputedStyle(document.querySelector('canvas[data-layer=others]')).opacity,
			document.getElementById('review-zoom').textContent]`)
		return out[0], out[1], out[2], out[3]
	}
	value, text, css, zoom := readout()
	require.Equal(t, []string{"50", "50%", "0.5"}, []string{value, text, css}, "the slider's middle is half opaque, and says so")
	require.Regexp(t, `^Zoom \d+%$`, zoom, "the zoom figure is labelled as the zoom")
	s.key(t, ".")
	value, text, css, _ = readout()
	require.Equal(t, []string{"60", "60%", "0.6"}, []string{value, text, css})
	s.key(t, ",")
	s.key(t, ",")
	s.key(t, ",")
	value, text, css, _ = readout()
	require.Equal(t, []string{"30", "30%", "0.3"}, []string{value, text, css})
	eval[bool](t, ctx, `(() => { const r = document.getElementById('review-opacity'); r.value = '75'; r.dispatchEvent(new Event('input')); return true; })()`)
	value, text, css, _ = readout()
	require.Equal(t, []string{"75", "75%", "0.75"}, []string{value, text, css}, "dragging the slider")

	s.nextFrames(t)
	require.Equal(t, 255, s.layerAlpha(t, "others", 160, 160), "the cat is drawn")
	require.Equal(t, 255, s.layerAlpha(t, "others", 470, 300), "the dog is drawn")

	// Hide the cat from its row: it goes, the dog stays.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(`#review-instances li:nth-child(1) button.hide`)))
	s.nextFrames(t)
	require.Equal(t, "true", eval[string](t, ctx, `document.querySelector('#review-instances li:nth-child(1) button.hide').getAttribute('aria-pressed')`))
	require.Equal(t, 0, s.layerAlpha(t, "others", 160, 160), "the hidden cat is not drawn")
	require.Equal(t, 0, s.layerAlpha(t, "active", 160, 160))
	require.Equal(t, 255, s.layerAlpha(t, "others", 470, 300), "the dog still is")

	// A click on the image where it was selects nothing.
	s.key(t, "v")
	s.nextFrames(t)
	v := s.view(t)
	cx, cy := v.toClient(160, 160)
	require.NoError(t, chromedp.Do(ctx, chromedp.MouseClickXY(cx, cy)))
	require.Equal(t, -1, eval[int](t, ctx, `imagehubReview.item().active`), "a hidden instance cannot be clicked")
	cx, cy = v.toClient(470, 300)
	require.NoError(t, chromedp.Do(ctx, chromedp.MouseClickXY(cx, cy)))
	require.Equal(t, 1, eval[int](t, ctx, `imagehubReview.item().active`), "the dog can")

	// Shift+H hides the selected dog; then the cat's row shows the cat again.
	s.key(t, "H", chromedp.KeyModifiers(chromedp.ModifierShift))
	s.nextFrames(t)
	require.Equal(t, 0, s.layerAlpha(t, "active", 470, 300), "the hidden dog is not drawn, selected")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(`#review-instances li:nth-child(1) button.hide`)))
	s.nextFrames(t)
	require.Equal(t, 255, s.layerAlpha(t, "others", 160, 160), "the cat is back")
	require.Equal(t, 0, s.layerAlpha(t, "active", 470, 300), "the dog, selected, is still hidden")
	require.Equal(t, 0, s.layerAlpha(t, "others", 470, 300))
	require.Equal(t, 0, eval[int](t, ctx, `imagehubReview.item().undo`), "hiding is not an edit")

	s.key(t, kb.Enter)
	browsertest.WaitFor(t, ctx, `imagehubReview.saved() === 1`, `document.getElementById('review-message').textContent`, 15*time.Second)
	var verdicts []string
	require.NoError(t, s.tb.pool.QueryRow(context.Background(), `
		SELECT array_agg(verdict ORDER BY verdict) FROM proposal_verdicts WHERE review_item_id = $1`, s.item).Scan(&verdicts))
	require.Equal(t, []string{"accepted", "accepted"}, verdicts, "hidden or not, both proposals count as accepted")
	s.js.none(t)
}
