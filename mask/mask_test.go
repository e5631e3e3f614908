package mask

import (
	"bytes"
	"encoding/json"
	"image/png"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// cocoMasks are 734 compressed RLE masks from the COCO API's own results
// folder (testdata/LICENSE-cocoapi.txt).
func cocoMasks(t testing.TB) []RLE {
	t.Helper()
	b, err := os.ReadFile("testdata/instances_val2014_fakesegm100_results.json")
	require.NoError(t, err)
	var rows []struct {
		Segmentation RLE `json:"segmentation"`
	}
	require.NoError(t, json.Unmarshal(b, &rows))
	out := make([]RLE, len(rows))
	for i, r := range rows {
		out[i] = r.Segmentation
	}
	return out
}

func TestCOCOMasksRoundTrip(t *testing.T) {
	t.Parallel()
	masks := cocoMasks(t)
	require.Len(t, masks, 734)
	for i, m := range masks {
		bm, err := m.Decode()
		require.NoError(t, err, "mask %d", i)
		require.Equal(t, m.Counts, Encode(bm).Counts, "mask %d: decode then encode must give the same string", i)

		a, err := m.Area()
		require.NoError(t, err)
		require.Equal(t, bm.Area(), a, "mask %d area", i)

		// pycocotools' toBbox equals the tight box except for its rounding
		// of runs that wrap columns; on these masks both agree with the
		// pixels' box wherever no run wraps within the box.
		box, err := m.BBox()
		require.NoError(t, err)
		tight := bm.BBox()
		require.Equal(t, tight[0], box[0], "mask %d x", i)
		require.Equal(t, tight[2], box[2], "mask %d w", i)
		require.LessOrEqual(t, box[1], tight[1], "mask %d y", i)
		require.GreaterOrEqual(t, box[1]+box[3], tight[1]+tight[3], "mask %d y+h", i)

		iou, err := IoU(m, m)
		require.NoError(t, err)
		if a > 0 {
			require.InDelta(t, 1.0, iou, 1e-12)
		}
	}
}

// TestBBoxMatchesPycocotools pins toBbox's behaviour on hand-made cases,
// including the wrap rule (a run that continues into the next column makes
// the box full height).
func TestBBoxMatchesPycocotools(t *testing.T) {
	t.Parallel()
	cases := []struct {
		h, w int
		runs []uint32
		want [4]int
	}{
		{4, 4, []uint32{16}, [4]int{0, 0, 0, 0}},
		{4, 4, []uint32{0, 16}, [4]int{0, 0, 4, 4}},
		{4, 4, []uint32{5, 2, 9}, [4]int{1, 1, 1, 2}}, // x=1, y=1..2
		{4, 4, []uint32{6, 3, 7}, [4]int{1, 0, 2, 4}}, // wraps from column 1 to 2
		{4, 4, []uint32{0, 1, 14, 1}, [4]int{0, 0, 4, 4}},
		{3, 5, []uint32{4, 1, 10}, [4]int{1, 1, 1, 1}},
	}
	for _, c := range cases {
		got, err := FromRuns(c.h, c.w, c.runs).BBox()
		require.NoError(t, err)
		require.Equal(t, c.want, got, "runs %v", c.runs)
	}
}

func TestKnownStrings(t *testing.T) {
	t.Parallel()
	empty := NewBitmap(3, 2)
	require.Equal(t, RLE{Size: [2]int{2, 3}, Counts: "6"}, Encode(empty))
	full := NewBitmap(3, 2)
	for i := range full.Pix {
		full.Pix[i] = 1
	}
	require.Equal(t, "06", Encode(full).Counts)
	one := NewBitmap(3, 2)
	one.Set(2, 1, true) // the last pixel in column-major order
	require.Equal(t, "51", Encode(one).Counts)
	b, err := RLE{Size: [2]int{2, 3}, Counts: "51"}.Decode()
	require.NoError(t, err)
	require.Equal(t, one, b)

	// JSON: the compressed form out, both forms in.
	out, err := json.Marshal(Encode(one))
	require.NoError(t, err)
	require.JSONEq(t, `{"size":[2,3],"counts":"51"}`, string(out))
	var r RLE
	require.NoError(t, json.Unmarshal([]byte(`{"size":[2,3],"counts":[5,1]}`), &r))
	require.Equal(t, "51", r.Counts)
	require.Error(t, json.Unmarshal([]byte(`{"size":[2,3],"counts":[-5,1]}`), &r))
}

func TestRandomRoundTripAndIoU(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 300; i++ {
		w, h := 1+rng.IntN(60), 1+rng.IntN(60)
		a, b := NewBitmap(w, h), NewBitmap(w, h)
		density := rng.Float64()
		for j := range a.Pix {
			if rng.Float64() < density {
				a.Pix[j] = 1
			}
			if rng.Float64() < density {
				b.Pix[j] = 1
			}
		}
		ra, rb := Encode(a), Encode(b)
		da, err := ra.Decode()
		require.NoError(t, err)
		require.Equal(t, a, da)

		inter, union := 0, 0
		for j := range a.Pix {
			if a.Pix[j] == 1 && b.Pix[j] == 1 {
				inter++
			}
			if a.Pix[j] == 1 || b.Pix[j] == 1 {
				union++
			}
		}
		want := 0.0
		if union > 0 {
			want = float64(inter) / float64(union)
		}
		got, err := IoU(ra, rb)
		require.NoError(t, err)
		require.InDelta(t, want, got, 1e-12)
	}
	_, err := IoU(RLE{Size: [2]int{2, 2}, Counts: "4"}, RLE{Size: [2]int{2, 3}, Counts: "6"})
	require.Error(t, err)
}

func TestValidateRefusesBadMasks(t *testing.T) {
	t.Parallel()
	for name, r := range map[string]RLE{
		"sum too small":    {Size: [2]int{10, 10}, Counts: "9"},
		"sum too large":    FromRuns(2, 2, []uint32{3, 3}),
		"bad character":    {Size: [2]int{2, 2}, Counts: "4 "},
		"char above 111":   {Size: [2]int{2, 2}, Counts: "4z"},
		"truncated number": {Size: [2]int{40, 40}, Counts: "R"}, // continuation bit set on the last character
		"negative run":     {Size: [2]int{10, 10}, Counts: rawCounts(10, 5, 10, -10, 75)},
		"zero size":        {Size: [2]int{0, 5}, Counts: ""},
		"huge size":        {Size: [2]int{100000, 5}, Counts: "0"},
		"over-long":        {Size: [2]int{1, 1}, Counts: "0000000000000000000"},
		"huge number":      {Size: [2]int{4, 4}, Counts: "oooooooooooo0"},
	} {
		require.Error(t, r.Validate(), name)
	}
	require.NoError(t, RLE{Size: [2]int{1, 1}, Counts: "1"}.Validate())
}

// rawCounts writes numbers in the string form as they are, deltas included,
// so tests can build strings an encoder would never make.
func rawCounts(vals ...int64) string {
	var s []byte
	for _, x := range vals {
		for more := true; more; {
			c := byte(x & 0x1f)
			x >>= 5
			if c&0x10 != 0 {
				more = x != -1
			} else {
				more = x != 0
			}
			if more {
				c |= 0x20
			}
			s = append(s, c+48)
		}
	}
	return string(s)
}

func TestPNGAndScale(t *testing.T) {
	t.Parallel()
	b := NewBitmap(4, 3)
	b.Set(1, 1, true)
	b.Set(2, 1, true)
	var buf bytes.Buffer
	require.NoError(t, b.WritePNG(&buf))
	img, err := png.Decode(&buf)
	require.NoError(t, err)
	back := FromImage(img)
	require.Equal(t, b, back)
	big := b.Scale(8, 6)
	require.Equal(t, 8, big.Area())
	require.Equal(t, [4]int{2, 2, 4, 2}, big.BBox())
}

func FuzzDecode(f *testing.F) {
	f.Add(2, 3, "51")
	f.Add(478, 640, "VQi31m>0O2N100O100O2N100O10001N101O1N2O1")
	f.Fuzz(func(t *testing.T, h, w int, counts string) {
		r := RLE{Size: [2]int{h % 200, w % 200}, Counts: counts}
		b, err := r.Decode()
		if err != nil {
			return
		}
		if got := Encode(b); got.Counts != r.Counts {
			// Different strings may decode to one mask (redundant zero
			// runs); the canonical one must decode to the same pixels.
			b2, err := got.Decode()
			if err != nil || !bytes.Equal(b.Pix, b2.Pix) {
				t.Fatalf("re-encoding changed the mask")
			}
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	m := cocoMasks(b)[0]
	bm, _ := m.Decode()
	for b.Loop() {
		Encode(bm)
	}
}

func BenchmarkDecode(b *testing.B) {
	m := cocoMasks(b)[0]
	for b.Loop() {
		if _, err := m.Decode(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIoU(b *testing.B) {
	ms := cocoMasks(b)
	for b.Loop() {
		if _, err := IoU(ms[0], ms[0]); err != nil {
			b.Fatal(err)
		}
	}
}
