package segment_test

import (
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
