package segment_test

import (
	"slices"
	"time"

	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/worker/segment"
	"github.com/deepimageshub/imagehub/worker/segment/segmenttest"
)

// centre is a pixel well inside m: the on pixel farthest from the box's
// edges along the middle row of its box.
func centre(m *mask.Bitmap) (float64, float64) {
	b := m.BBox()
	y := b[1] + b[3]/2
	best, bx := -1, 0
	run := 0
	for x := 0; x < m.W; x++ {
		if m.At(x, y) {
			run++
			if run > best {
				best, bx = run, x-run/2
			}
		} else {
			run = 0
		}
	}
	return float64(bx) + 0.5, float64(y) + 0.5
}

func TestClickFindsTheObject(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= 3; seed++ {
		p := segmenttest.NewPhoto(800, 600, seed, 90)
		prep := segment.Prepare(decode(t, p.JPEG), segment.InteractiveOptions{})
		for _, s := range p.Shapes {
			x, y := centre(s.Mask)
			m, score, err := prep.Prompt([]segment.Click{{X: x, Y: y, Object: true}}, nil, nil)
			require.NoError(t, err)
			require.Equal(t, 800, m.W)
			iou := segmenttest.IoU(m, s.Mask)
			t.Logf("seed %d %s: IoU %.3f score %.2f regions %d", seed, s.Name, iou, score, prep.Regions())
			require.GreaterOrEqual(t, iou, 0.9, "seed %d: %s", seed, s.Name)
			require.True(t, score >= 0 && score <= 1)
		}
	}
}

func TestBackgroundClickRemovesARegion(t *testing.T) {
	t.Parallel()
	p := segmenttest.NewPhoto(800, 600, 2, 90)
	prep := segment.Prepare(decode(t, p.JPEG), segment.InteractiveOptions{})
	disc, rect := p.Shapes[0].Mask, p.Shapes[1].Mask
	dx, dy := centre(disc)
	rx, ry := centre(rect)
	// Two object clicks take in both shapes; a background click on the
	// rectangle then leaves the disc alone.
	both, _, err := prep.Prompt([]segment.Click{{X: dx, Y: dy, Object: true}, {X: rx, Y: ry, Object: true}}, nil, nil)
	require.NoError(t, err)
	require.Greater(t, overlap(both, rect), 0.9, "the rectangle is in")
	fixed, _, err := prep.Prompt([]segment.Click{{X: dx, Y: dy, Object: true}, {X: rx, Y: ry, Object: true}, {X: rx, Y: ry, Object: false}}, nil, nil)
	require.NoError(t, err)
	require.Less(t, overlap(fixed, rect), 0.05, "the rectangle is out")
	require.GreaterOrEqual(t, segmenttest.IoU(fixed, disc), 0.9)

	// A box around the disc and part of the background is the disc.
	b := disc.BBox()
	box := [4]float64{float64(b[0] - 15), float64(b[1] - 15), float64(b[0] + b[2] + 15), float64(b[1] + b[3] + 15)}
	boxed, _, err := prep.Prompt(nil, &box, nil)
	require.NoError(t, err)
	require.GreaterOrEqual(t, segmenttest.IoU(boxed, disc), 0.9)

	// Refining: the disc given, a click on the rectangle adds it.
	refined, _, err := prep.Prompt([]segment.Click{{X: rx, Y: ry, Object: true}}, nil, fixed)
	require.NoError(t, err)
	require.Greater(t, overlap(refined, disc), 0.95)
	require.Greater(t, overlap(refined, rect), 0.9)

	_, _, err = prep.Prompt([]segment.Click{{X: dx, Y: dy, Object: false}}, nil, nil)
	require.ErrorIs(t, err, segment.ErrEmptyPrompt)
}

// overlap is the share of b's pixels that a covers.
func overlap(a, b *mask.Bitmap) float64 {
	var in, all int
	for i, v := range b.Pix {
		if v != 0 {
			all++
			if a.Pix[i] != 0 {
				in++
			}
		}
	}
	return float64(in) / float64(max(all, 1))
}

func TestPromptIsDeterministic(t *testing.T) {
	t.Parallel()
	img := decode(t, segmenttest.NewPhoto(640, 480, 5, 85).JPEG)
	clicks := []segment.Click{{X: 200, Y: 170, Object: true}, {X: 500, Y: 100, Object: false}}
	a, sa, err := segment.Prepare(img, segment.InteractiveOptions{}).Prompt(clicks, nil, nil)
	require.NoError(t, err)
	prep := segment.Prepare(img, segment.InteractiveOptions{})
	for range 3 {
		b, sb, err := prep.Prompt(clicks, nil, nil)
		require.NoError(t, err)
		require.Equal(t, a.Pix, b.Pix)
		require.Equal(t, sa, sb)
	}
}

// BenchmarkInteractivePrompt is one prompt on a prepared 1-megapixel photo
// (1155×866), as the worker answers it: the graph cut, the full-size mask
// and its RLE. prepare-ms is the once-per-image work the worker caches.
func BenchmarkInteractivePrompt(b *testing.B) {
	p := segmenttest.NewPhoto(1155, 866, 4, 90)
	img := decode(b, p.JPEG)
	start := time.Now()
	prep := segment.Prepare(img, segment.InteractiveOptions{})
	prepMS := float64(time.Since(start).Microseconds()) / 1000
	var prompts [][]segment.Click
	for _, s := range p.Shapes {
		x, y := centre(s.Mask)
		prompts = append(prompts, []segment.Click{{X: x, Y: y, Object: true}})
	}
	x, y := centre(p.Shapes[1].Mask)
	prompts = append(prompts, append(slices.Clone(prompts[0]), segment.Click{X: x, Y: y, Object: true}, segment.Click{X: x, Y: y}))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		m, _, err := prep.Prompt(prompts[i%len(prompts)], nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		_ = mask.Encode(m)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/prompt")
	b.ReportMetric(prepMS, "prepare-ms")
	b.ReportMetric(float64(prep.Regions()), "regions")
}
