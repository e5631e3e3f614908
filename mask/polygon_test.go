package mask

import (
	"math/rand/v2"
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

// BenchmarkFitPolygonsRLE fits the outlines of a 600×440 ellipse with a
// few holes and a ragged edge in a 1024×768 image, as the polygon exports
// do for every instance (MB/s of image pixels would mislead: the work is
// the mask's box).
func BenchmarkFitPolygonsRLE(b *testing.B) {
	r := Encode(benchMask(500, 380))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := FitPolygonsRLE(r); err != nil {
			b.Fatal(err)
		}
	}
}

// floodParts and floodHoles are the flood fills labelParts and hasHoles
// replaced, kept as their oracle: every pixel's 4 neighbours for the
// parts, the background's 8 from the frame for the holes.
func floodParts(fg []bool, gw int) ([]int32, []int) {
	part := make([]int32, len(fg))
	var starts []int
	for i, on := range fg {
		if !on || part[i] != 0 {
			continue
		}
		starts = append(starts, i)
		n := int32(len(starts))
		part[i] = n
		stack := []int{i}
		for len(stack) > 0 {
			j := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, k := range [4]int{j - 1, j + 1, j - gw, j + gw} {
				if fg[k] && part[k] == 0 {
					part[k] = n
					stack = append(stack, k)
				}
			}
		}
	}
	return part, starts
}

func floodHoles(fg []bool, gw, gh int) bool {
	seen := make([]bool, len(fg))
	seen[0] = true
	stack := []int{0}
	for len(stack) > 0 {
		j := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		x, y := j%gw, j/gw
		for dy := -1; dy <= 1; dy++ {
			for dx := -1; dx <= 1; dx++ {
				nx, ny := x+dx, y+dy
				if nx < 0 || ny < 0 || nx >= gw || ny >= gh {
					continue
				}
				if k := ny*gw + nx; !fg[k] && !seen[k] {
					seen[k] = true
					stack = append(stack, k)
				}
			}
		}
	}
	for i, on := range fg {
		if !on && !seen[i] {
			return true
		}
	}
	return false
}

// TestLabelPartsAndHolesMatchFloods: on random masks of every density,
// from one pixel to 40×40 (U shapes, spirals, diagonal touches and holes
// in holes all occur), the run-based labels and the Euler-number hole
// test give exactly what the flood fills give.
func TestLabelPartsAndHolesMatchFloods(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 11))
	withHoles := 0
	for i := range 5000 {
		w, h := 1+rng.IntN(40), 1+rng.IntN(40)
		density := rng.Float64()
		b := NewBitmap(w, h)
		for p := range b.Pix {
			if rng.Float64() < density {
				b.Pix[p] = 1
			}
		}
		g := gridOf(b)
		if g.box[2] == 0 {
			continue
		}
		part, starts := labelParts(g.fg, g.gw, g.gh)
		wantPart, wantStarts := floodParts(g.fg, g.gw)
		require.Equal(t, wantStarts, starts, "mask %d (%dx%d)", i, w, h)
		require.Equal(t, wantPart, part, "mask %d (%dx%d)", i, w, h)
		holes := floodHoles(g.fg, g.gw, g.gh)
		require.Equal(t, holes, hasHoles(g.fg, g.gw, g.gh, len(starts)), "mask %d (%dx%d)", i, w, h)
		if holes {
			withHoles++
		}
	}
	require.Greater(t, withHoles, 500, "the masks exercise holes")
}
