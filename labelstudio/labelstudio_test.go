package labelstudio

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// bitWriter and encodeRLE are an encoder written here from the format's
// definition (brush.go's comment; label_studio_converter.brush.encode_rle
// writes the same stream), sharing nothing with the decoder: runs of equal
// values become repeat chunks, and stretches of differing values literal
// chunks, each count in the smallest of the four field sizes that holds it.
type bitWriter struct {
	bits []byte // one 0 or 1 per bit
}

func (w *bitWriter) put(v uint64, n int) {
	for i := n - 1; i >= 0; i-- {
		w.bits = append(w.bits, byte(v>>i&1))
	}
}

func (w *bitWriter) bytes() []byte {
	out := make([]byte, (len(w.bits)+7)/8)
	for i, b := range w.bits {
		out[i/8] |= b << (7 - i%8)
	}
	return out
}

func encodeRLE(vals []byte, sizes [4]int) []byte {
	w := &bitWriter{}
	w.put(uint64(len(vals)), 32)
	w.put(8-1, 5)
	for _, s := range sizes {
		w.put(uint64(s-1), 4)
	}
	chunk := func(repeat bool, words []byte) {
		c := len(words) - 1
		k := 0
		for c >= 1<<sizes[k] {
			k++
		}
		if repeat {
			w.put(1, 1)
		} else {
			w.put(0, 1)
		}
		w.put(uint64(k), 2)
		w.put(uint64(c), sizes[k])
		if repeat {
			w.put(uint64(words[0]), 8)
			return
		}
		for _, v := range words {
			w.put(uint64(v), 8)
		}
	}
	most := 1 << sizes[3]
	var lit []byte
	flush := func() {
		for len(lit) > 0 {
			n := min(len(lit), most)
			chunk(false, lit[:n])
			lit = lit[n:]
		}
	}
	for i := 0; i < len(vals); {
		j := i
		for j < len(vals) && vals[j] == vals[i] {
			j++
		}
		if j-i < 3 {
			lit = append(lit, vals[i:j]...)
			i = j
			continue
		}
		flush()
		for i < j {
			n := min(j-i, most)
			chunk(true, vals[i:i+n])
			i += n
		}
	}
	flush()
	return w.bytes()
}

func ints(b []byte) []int {
	out := make([]int, len(b))
	for i, v := range b {
		out[i] = int(v)
	}
	return out
}

// rgba spreads a mask into RGBA values as Label Studio stores a brush:
// a colour where the mask is on, alpha the mask's level.
func rgba(alpha []byte) []byte {
	out := make([]byte, 0, 4*len(alpha))
	for i, a := range alpha {
		if a == 0 {
			out = append(out, 0, 0, 0, 0)
			continue
		}
		out = append(out, byte(i), 200, 30, a)
	}
	return out
}

func TestBrushDecodesIndependentEncoding(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(18, 3))
	for _, tc := range []struct {
		w, h  int
		sizes [4]int
	}{
		{1, 1, [4]int{3, 4, 8, 16}},
		{37, 23, [4]int{3, 4, 8, 16}},
		{300, 200, [4]int{3, 4, 8, 16}},
		{64, 48, [4]int{1, 2, 5, 9}}, // other field sizes, long runs split
	} {
		alpha := make([]byte, tc.w*tc.h)
		// Blobs, noise and a soft edge: alpha 255, 0 and levels around 128.
		cx, cy, rad := r.IntN(tc.w), r.IntN(tc.h), 1+r.IntN(max(tc.w, tc.h))
		for y := range tc.h {
			for x := range tc.w {
				d := (x-cx)*(x-cx) + (y-cy)*(y-cy)
				switch {
				case d < rad*rad/2:
					alpha[y*tc.w+x] = 255
				case d < rad*rad:
					alpha[y*tc.w+x] = byte(100 + r.IntN(60))
				case r.IntN(50) == 0:
					alpha[y*tc.w+x] = byte(1 + r.IntN(255))
				}
			}
		}
		p := Prediction{Result: []Region{{
			Type: "brushlabels", OriginalWidth: tc.w, OriginalHeight: tc.h, Score: ptr(0.75),
			Value: Value{Format: "rle", RLE: ints(encodeRLE(rgba(alpha), tc.sizes)), BrushLabels: []string{"cat"}},
		}}}
		got, err := p.Instances(tc.w, tc.h, 0.5)
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, "cat", got[0].Label)
		require.InDelta(t, 0.75, got[0].Score, 1e-7)
		for i, a := range alpha {
			require.Equal(t, a > 127, got[0].Mask.Pix[i] == 1, "%d×%d pixel %d of alpha %d", tc.w, tc.h, i, a)
		}
		vals, err := DecodeRLE(encodeRLE(rgba(alpha), tc.sizes), 0)
		require.NoError(t, err)
		require.Equal(t, rgba(alpha), vals, "every channel decodes exactly")
	}
}

func TestBrushRefusesBrokenRLE(t *testing.T) {
	t.Parallel()
	good := encodeRLE(rgba(make([]byte, 12)), [4]int{3, 4, 8, 16})
	_, err := DecodeRLE(good, 4*12)
	require.NoError(t, err)
	_, err = DecodeRLE(good, 4*13)
	require.ErrorContains(t, err, "not the 52")
	_, err = DecodeRLE(good[:3], 0)
	require.ErrorContains(t, err, "header")
	noise := encodeRLE([]byte{1, 2, 3, 4, 5, 6, 7, 8}, [4]int{3, 4, 8, 16})
	_, err = DecodeRLE(noise[:len(noise)-2], 0)
	require.ErrorContains(t, err, "ends in the middle")
	// A run past the end: n = 2, then a repeat of 8.
	w := &bitWriter{}
	w.put(2, 32)
	w.put(7, 5)
	for range 4 {
		w.put(2, 4)
	}
	w.put(1, 1)
	w.put(0, 2)
	w.put(7, 3)
	w.put(9, 8)
	_, err = DecodeRLE(w.bytes(), 0)
	require.ErrorContains(t, err, "past the end")
}

func ptr(v float64) *float64 { return &v }

func TestPolygonInPercent(t *testing.T) {
	t.Parallel()
	// A 200×100 image; an L of corners (20%, 10%) … in percent: pixels
	// 40…119 across and 10…89 down, less the top right quarter.
	p := Prediction{Score: ptr(0.5), Result: []Region{{
		Type: "polygonlabels", OriginalWidth: 200, OriginalHeight: 100,
		Value: Value{PolygonLabels: []string{"dog"}, Points: [][]float64{{20, 10}, {40, 10}, {40, 50}, {60, 50}, {60, 90}, {20, 90}}},
	}}}
	got, err := p.Instances(200, 100, 0.5)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.InDelta(t, 0.5, got[0].Score, 1e-7)
	for y := range 100 {
		for x := range 200 {
			want := x >= 40 && x < 120 && y >= 10 && y < 90 && !(x >= 80 && y < 50)
			require.Equal(t, want, got[0].Mask.At(x, y), "pixel (%d, %d)", x, y)
		}
	}
}

func TestInstancesRefuseNonsense(t *testing.T) {
	t.Parallel()
	base := func() Region {
		return Region{Type: "polygonlabels", Score: ptr(0.9), OriginalWidth: 10, OriginalHeight: 10,
			Value: Value{PolygonLabels: []string{"x"}, Points: [][]float64{{0, 0}, {50, 0}, {50, 50}}}}
	}
	for name, edit := range map[string]func(*Region){
		"size":     func(r *Region) { r.OriginalWidth = 11 },
		"no label": func(r *Region) { r.Value.PolygonLabels = nil },
		"no score": func(r *Region) { r.Score = nil },
		"score":    func(r *Region) { r.Score = ptr(1.5) },
		"points":   func(r *Region) { r.Value.Points = [][]float64{{1, 2}, {3}} },
		"rle": func(r *Region) {
			r.Type, r.Value.BrushLabels, r.Value.Format, r.Value.RLE = "brushlabels", []string{"x"}, "rle", []int{1, 2, 3}
		},
		"rle byte": func(r *Region) {
			r.Type, r.Value.BrushLabels, r.Value.Format, r.Value.RLE = "brushlabels", []string{"x"}, "rle", []int{300}
		},
		"format": func(r *Region) { r.Type, r.Value.BrushLabels, r.Value.Format = "brushlabels", []string{"x"}, "png" },
	} {
		r := base()
		edit(&r)
		_, err := Prediction{Result: []Region{r}}.Instances(10, 10, 0.5)
		require.Error(t, err, name)
	}
	r := base()
	r.Type = "rectanglelabels"
	got, err := Prediction{Result: []Region{r}}.Instances(10, 10, 0.5)
	require.NoError(t, err)
	require.Empty(t, got, "other region types are left out")
}

func TestParsePredictions(t *testing.T) {
	t.Parallel()
	ps, err := ParsePredictions([]byte(`{"results": [{"result": [], "score": 0.5, "model_version": "sam-1"}, {"result": []}], "model_version": 7}`))
	require.NoError(t, err)
	require.Len(t, ps, 2)
	require.Equal(t, "sam-1", ps[0].ModelVersion)
	require.Equal(t, "7", ps[1].ModelVersion, "the answer's version stands in")
	ps, err = ParsePredictions([]byte(`[{"result": [{"type": "choices"}], "score": 0.1, "model_version": "old"}]`))
	require.NoError(t, err)
	require.Len(t, ps, 1)
	require.Equal(t, "old", ps[0].ModelVersion)
	for _, bad := range []string{``, `nonsense`, `{"predictions": []}`, `{"results": {"a": 1}}`, `[1, 2]`, `{"results": [{"result": "x"}]}`} {
		_, err := ParsePredictions([]byte(bad))
		require.Error(t, err, bad)
	}
}

func TestLabelConfig(t *testing.T) {
	t.Parallel()
	require.Equal(t,
		`<View><Image name="image" value="$image"/><BrushLabels name="tag" toName="image"><Label value="cat"/><Label value="a &amp; &#34;b&#34;"/></BrushLabels></View>`,
		LabelConfig(Brush, []string{"cat", `a & "b"`}))
}
