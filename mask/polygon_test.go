package mask

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func bitmapOf(rows ...string) *Bitmap {
	b := NewBitmap(len(rows[0]), len(rows))
	for y, r := range rows {
		for x, c := range r {
			b.Set(x, y, c == '#')
		}
	}
	return b
}

// TestOutlinesSmall pins the tracing on shapes small enough to check by
// hand: corners, two parts touching at a corner, a hole.
func TestOutlinesSmall(t *testing.T) {
	t.Parallel()
	b := bitmapOf(
		".....",
		".##..",
		".##..",
		".....")
	polys, holes := Outlines(b, 0)
	require.False(t, holes)
	require.Equal(t, []Polygon{{1, 1, 3, 1, 3, 3, 1, 3}}, polys, "the square's corners, clockwise from top-left")
	require.Equal(t, b.Pix, FromPolygons(polys, b.H, b.W).Pix)

	b = bitmapOf(
		"#...",
		".#..",
		"..##",
		"..#.")
	polys, holes = Outlines(b, 0)
	require.False(t, holes, "background is 8-connected: the diagonal does not close anything")
	require.Len(t, polys, 3, "parts touching at a corner are separate")
	require.Equal(t, b.Pix, FromPolygons(polys, b.H, b.W).Pix)

	b = bitmapOf(
		"#####",
		"#...#",
		"#.#.#",
		"#...#",
		"#####")
	polys, holes = Outlines(b, 0)
	require.True(t, holes)
	require.Len(t, polys, 2, "the ring and the island in its hole")
	filled := FromPolygons(polys[:1], b.H, b.W)
	require.Equal(t, 25, filled.Area(), "the ring's outline covers its hole")

	b = bitmapOf(
		"###",
		"#.#",
		"###")
	_, holes = Outlines(b, 0)
	require.True(t, holes)
	b = bitmapOf(
		"###",
		"#.#",
		"##.")
	_, holes = Outlines(b, 0)
	require.False(t, holes, "a gap at a corner lets the background out")
}

// TestOutlinesExactWithoutSimplifying: unsimplified outlines rasterise, by
// the COCO API's rule, to exactly the pixels of every COCO mask without
// holes.
func TestOutlinesExactWithoutSimplifying(t *testing.T) {
	t.Parallel()
	for i, r := range cocoMasks(t) {
		b, err := r.Decode()
		require.NoError(t, err)
		polys, holes := Outlines(b, 0)
		if holes {
			continue
		}
		require.Equal(t, b.Pix, FromPolygons(polys, b.H, b.W).Pix, "mask %d", i)
	}
}

// TestOutlinesCOCOIoU: simplified as exports do (FitPolygons), the
// polygons of every COCO mask of at least 32×32 pixels without holes
// rasterise, by the COCO API's rule, to an IoU of 0.95 or more with the
// mask.
func TestOutlinesCOCOIoU(t *testing.T) {
	t.Parallel()
	var checked, withHoles int
	worst := 1.0
	var points, corners int
	for i, r := range cocoMasks(t) {
		b, err := r.Decode()
		require.NoError(t, err)
		box := b.BBox()
		if box[2] < 32 || box[3] < 32 {
			continue
		}
		polys, holes := FitPolygons(b)
		if holes {
			withHoles++
			continue
		}
		exact, _ := Outlines(b, 0)
		for j := range polys {
			points += len(polys[j]) / 2
			corners += len(exact[j]) / 2
		}
		iou := pixelIoU(b, FromPolygons(polys, b.H, b.W))
		require.GreaterOrEqual(t, iou, 0.95, "mask %d", i)
		worst = min(worst, iou)
		checked++
	}
	require.Greater(t, checked, 300)
	t.Logf("%d masks of 32×32 or more checked, worst IoU %.4f; %d have holes and keep RLE; %d points instead of %d corners",
		checked, worst, withHoles, points, corners)
}

// TestFitPolygonsRLE: reading the runs into the box gives what the
// expanded bitmap gives.
func TestFitPolygonsRLE(t *testing.T) {
	t.Parallel()
	for i, r := range cocoMasks(t)[:200] {
		b, err := r.Decode()
		require.NoError(t, err)
		want, wantHoles := FitPolygons(b)
		got, holes, err := FitPolygonsRLE(r)
		require.NoError(t, err)
		require.Equal(t, wantHoles, holes, "mask %d", i)
		require.Equal(t, want, got, "mask %d", i)
	}
	_, _, err := FitPolygonsRLE(RLE{Size: [2]int{2, 2}, Counts: "zz"})
	require.ErrorIs(t, err, ErrInvalid)
}
