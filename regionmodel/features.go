package regionmodel

import (
	"math"

	"github.com/deepimageshub/imagehub/worker/segment"
)

// FeatureSpec is the version of the features below. A model records the one
// it was trained with, and Load refuses another: the weights mean nothing
// against features computed differently.
const FeatureSpec = 1

// NumFeatures is the length of a region's feature vector (FeatureSpec 1):
//
//	0-2   mean L, a, b (CIELAB, of the smoothed working copy) / 100
//	3-5   standard deviation of L, a, b / 50
//	6     mean gradient magnitude of L / 20 (texture strength)
//	7-10  gradient orientation histogram, 4 bins over 0..π, weighted by
//	      magnitude and normalised (texture direction: stripes vs. noise)
//	11    standard deviation of the gradient magnitude / 20
//	12-13 centroid x, y as fractions of the image
//	14    √(area / image area)
//	15    area / bounding-box area (fill)
//	16    log(box width / box height) (aspect)
//	17    share of the image's frame the region touches
//	18    the segmenter's saliency score
//	19    mean Lab distance across the region's boundary / 50 (contrast)
//	20    compactness 4π·area / perimeter², capped at 1
const NumFeatures = 21

// features computes every region's feature vector.
func features(r *segment.Regions) [][NumFeatures]float64 {
	w, h, n := r.W, r.H, r.N
	type acc struct {
		area                float64
		sum, sq             [3]float64
		gsum, gsq           float64
		ori                 [4]float64
		cx, cy              float64
		x0, y0, x1, y1      int
		frame               float64
		bsum, bcount, perim float64
	}
	as := make([]acc, n)
	for i := range as {
		as[i].x0, as[i].y0, as[i].x1, as[i].y1 = w, h, -1, -1
	}
	L := r.Lab[0]
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			p := y*w + x
			a := &as[r.Label[p]]
			a.area++
			for c := range 3 {
				v := float64(r.Lab[c][p])
				a.sum[c] += v
				a.sq[c] += v * v
			}
			xl, xr := max(x-1, 0), min(x+1, w-1)
			yu, yd := max(y-1, 0), min(y+1, h-1)
			gx := float64(L[y*w+xr]-L[y*w+xl]) / 2
			gy := float64(L[yd*w+x]-L[yu*w+x]) / 2
			m := math.Hypot(gx, gy)
			a.gsum += m
			a.gsq += m * m
			if m > 0 {
				t := math.Atan2(gy, gx)
				if t < 0 {
					t += math.Pi
				}
				a.ori[min(3, int(t/(math.Pi/4)))] += m
			}
			a.cx += float64(x)
			a.cy += float64(y)
			a.x0, a.y0, a.x1, a.y1 = min(a.x0, x), min(a.y0, y), max(a.x1, x), max(a.y1, y)
			if x == 0 || y == 0 || x == w-1 || y == h-1 {
				a.frame++
			}
			for _, d := range [2][2]int{{1, 0}, {0, 1}} {
				qx, qy := x+d[0], y+d[1]
				if qx >= w || qy >= h {
					continue
				}
				q := qy*w + qx
				lq := r.Label[q]
				if lq == r.Label[p] {
					continue
				}
				var dd float64
				for c := range 3 {
					v := float64(r.Lab[c][p] - r.Lab[c][q])
					dd += v * v
				}
				dd = math.Sqrt(dd)
				b := &as[lq]
				a.bsum += dd
				a.bcount++
				a.perim++
				b.bsum += dd
				b.bcount++
				b.perim++
			}
		}
	}
	frame := float64(2*(w+h) - 4)
	out := make([][NumFeatures]float64, n)
	for i := range as {
		a := &as[i]
		f := &out[i]
		if a.area == 0 {
			continue
		}
		for c := range 3 {
			mu := a.sum[c] / a.area
			f[c] = mu / 100
			f[3+c] = math.Sqrt(max(0, a.sq[c]/a.area-mu*mu)) / 50
		}
		gm := a.gsum / a.area
		f[6] = gm / 20
		if a.gsum > 0 {
			for k := range 4 {
				f[7+k] = a.ori[k] / a.gsum
			}
		}
		f[11] = math.Sqrt(max(0, a.gsq/a.area-gm*gm)) / 20
		f[12] = (a.cx/a.area + 0.5) / float64(w)
		f[13] = (a.cy/a.area + 0.5) / float64(h)
		f[14] = math.Sqrt(a.area / float64(w*h))
		bw, bh := float64(a.x1-a.x0+1), float64(a.y1-a.y0+1)
		f[15] = a.area / (bw * bh)
		f[16] = math.Log(bw / bh)
		f[17] = a.frame / frame
		f[18] = r.Saliency[i]
		if a.bcount > 0 {
			f[19] = a.bsum / a.bcount / 50
		}
		// The image's frame closes the region's perimeter.
		perim := a.perim + a.frame
		if perim > 0 {
			f[20] = min(1, 4*math.Pi*a.area/(perim*perim))
		}
	}
	return out
}
