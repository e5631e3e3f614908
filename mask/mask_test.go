package mask

import (
	"bytes"
	"encoding/json"
	"image"
	"image/png"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// cocoMasks returns the 734 masks of the COCO API's own results file
// (testdata/LICENSE-cocoapi.txt), read through RLE.UnmarshalJSON.
func cocoMasks(t testing.TB) []RLE {
	t.Helper()
	data, err := os.ReadFile("testdata/instances_val2014_fakesegm100_results.json")
	require.NoError(t, err)
	var rows []struct {
		Segmentation RLE `json:"segmentation"`
	}
	require.NoError(t, json.Unmarshal(data, &rows))
	masks := make([]RLE, len(rows))
	for i, row := range rows {
		masks[i] = row.Segmentation
	}
	return masks
}

// cocoReference is what pycocotools' C code computes for cocoMasks (see
// "about" in the file): per mask [area, x, y, w, h], and [i, j, iou] for
// every pair of masks of one image.
type cocoReference struct {
	Masks [][5]int     `json:"masks"`
	IoUs  [][3]float64 `json:"ious"`
}

func readCOCOReference(t *testing.T) cocoReference {
	t.Helper()
	data, err := os.ReadFile("testdata/pycocotools_reference.json")
	require.NoError(t, err)
	var ref cocoReference
	require.NoError(t, json.Unmarshal(data, &ref))
	return ref
}

func TestCOCOMasks(t *testing.T) {
	t.Parallel()
	masks := cocoMasks(t)
	ref := readCOCOReference(t)
	require.Len(t, masks, 734)
	require.Len(t, ref.Masks, len(masks))

	for i, m := range masks {
		bm, err := m.Decode()
		require.NoError(t, err, "mask %d", i)
		require.Equal(t, m.Size, [2]int{bm.H, bm.W})
		require.Equal(t, m.Counts, Encode(bm).Counts, "mask %d: decoding then encoding must give the same string", i)

		runs, err := m.Runs()
		require.NoError(t, err)
		require.Equal(t, m, FromRuns(m.Size[0], m.Size[1], runs), "mask %d", i)

		area, err := m.Area()
		require.NoError(t, err)
		require.Equal(t, bm.Area(), area, "mask %d area", i)
		require.Equal(t, ref.Masks[i][0], area, "mask %d area against pycocotools", i)

		box, err := m.BBox()
		require.NoError(t, err)
		require.Equal(t, bm.BBox(), box, "mask %d box", i)
		require.Equal(t, [4]int(ref.Masks[i][1:]), box, "mask %d box against pycocotools", i)
	}
}

func TestCOCOIoU(t *testing.T) {
	t.Parallel()
	masks := cocoMasks(t)
	ref := readCOCOReference(t)
	require.Len(t, ref.IoUs, 5005)
	overlapping := 0
	for _, row := range ref.IoUs {
		a, b := masks[int(row[0])], masks[int(row[1])]
		got, err := IoU(a, b)
		require.NoError(t, err)
		require.Equal(t, row[2], got, "iou of masks %v and %v", row[0], row[1]) // the same division: exactly equal
		if got > 0 {
			overlapping++
		}
	}
	require.Equal(t, 377, overlapping)

	// Spot-check against pixels too, and a mask with itself.
	for _, row := range ref.IoUs[:40] {
		a, b := masks[int(row[0])], masks[int(row[1])]
		requireIoUMatchesPixels(t, a, b)
	}
	iou, err := IoU(masks[0], masks[0])
	require.NoError(t, err)
	require.Equal(t, 1.0, iou)
}

func requireIoUMatchesPixels(t *testing.T, a, b RLE) {
	t.Helper()
	ba, err := a.Decode()
	require.NoError(t, err)
	bb, err := b.Decode()
	require.NoError(t, err)
	inter, union := 0, 0
	for i := range ba.Pix {
		if ba.Pix[i] == 1 || bb.Pix[i] == 1 {
			union++
		}
		if ba.Pix[i] == 1 && bb.Pix[i] == 1 {
			inter++
		}
	}
	want := 0.0
	if union > 0 {
		want = float64(inter) / float64(union)
	}
	got, err := IoU(a, b)
	require.NoError(t, err)
	require.InDelta(t, want, got, 1e-15)

	u, err := Union(a, b)
	require.NoError(t, err)
	area, err := u.Area()
	require.NoError(t, err)
	require.Equal(t, union, area)
}

// TestKnownStrings pins small masks to the strings, areas and boxes that
// pycocotools' C code gives for them.
func TestKnownStrings(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		h, w   int
		runs   []uint32
		counts string
		area   int
		box    [4]int
	}{
		{"empty", 2, 3, []uint32{6}, "6", 0, [4]int{}},
		{"full", 2, 3, []uint32{0, 6}, "06", 6, [4]int{0, 0, 3, 2}},
		{"top left", 2, 3, []uint32{0, 1, 5}, "015", 1, [4]int{0, 0, 1, 1}},
		{"bottom left", 2, 3, []uint32{1, 1, 4}, "114", 1, [4]int{0, 1, 1, 1}},
		{"top right", 2, 3, []uint32{4, 1, 1}, "411", 1, [4]int{2, 0, 1, 1}},
		{"bottom right", 2, 3, []uint32{5, 1}, "51", 1, [4]int{2, 1, 1, 1}},
		{"one pixel mask", 1, 1, []uint32{0, 1}, "01", 1, [4]int{0, 0, 1, 1}},
		{"empty 100x100", 100, 100, []uint32{10000}, "`h9", 0, [4]int{}},
		{"empty 640x478", 478, 640, []uint32{305920}, "PhZ9", 0, [4]int{}},
		// The fourth run is stored as 3-20 = -17: "_O".
		{"negative difference", 10, 10, []uint32{10, 20, 5, 3, 62}, ":d05_Oi1", 23, [4]int{1, 0, 3, 10}},
		// A run from the bottom of column 0 to the top of column 1
		// covers the full height.
		{"run across columns", 10, 2, []uint32{9, 2, 9}, "929", 2, [4]int{0, 0, 2, 10}},
		{"two runs", 4, 5, []uint32{3, 3, 2, 1, 11}, "332N9", 4, [4]int{0, 0, 3, 4}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := FromRuns(c.h, c.w, c.runs)
			require.Equal(t, RLE{Size: [2]int{c.h, c.w}, Counts: c.counts}, r)
			runs, err := r.Runs()
			require.NoError(t, err)
			require.Equal(t, c.runs, runs)
			area, err := r.Area()
			require.NoError(t, err)
			require.Equal(t, c.area, area)
			box, err := r.BBox()
			require.NoError(t, err)
			require.Equal(t, c.box, box)

			bm, err := r.Decode()
			require.NoError(t, err)
			require.Equal(t, c.area, bm.Area())
			require.Equal(t, c.box, bm.BBox())
			require.Equal(t, r, Encode(bm))
		})
	}

	b := NewBitmap(3, 2)
	b.Set(2, 1, true)
	require.True(t, b.At(2, 1))
	require.Equal(t, "51", Encode(b).Counts)
	// Any non-zero byte counts as set. The runs are 0 1 4 1, the last
	// stored as 1-1.
	b.Pix[0] = 255
	require.Equal(t, "0140", Encode(b).Counts)
	b.Set(0, 0, false)
	require.Equal(t, "51", Encode(b).Counts)
}

// TestEmptyRuns: pycocotools accepts empty runs inside the counts, so does
// Validate; Encode never writes them, and BBox ignores them where
// pycocotools' toBbox counts an empty run of 1s as a pixel.
func TestEmptyRuns(t *testing.T) {
	t.Parallel()
	r := FromRuns(10, 1, []uint32{5, 0, 5}) // toBbox says [0, 4, 1, 2]
	require.NoError(t, r.Validate())
	box, err := r.BBox()
	require.NoError(t, err)
	require.Equal(t, [4]int{}, box)
	bm, err := r.Decode()
	require.NoError(t, err)
	require.Equal(t, 0, bm.Area())
	require.Equal(t, ":", Encode(bm).Counts) // 10 is '0'+10

	r = FromRuns(10, 1, []uint32{3, 2, 0, 0, 5}) // toBbox says [0, 3, 1, 3]
	box, err = r.BBox()
	require.NoError(t, err)
	require.Equal(t, [4]int{0, 3, 1, 2}, box)
	bm, err = r.Decode()
	require.NoError(t, err)
	require.Equal(t, FromRuns(10, 1, []uint32{3, 2, 5}), Encode(bm))

	iou, err := IoU(r, Encode(bm))
	require.NoError(t, err)
	require.Equal(t, 1.0, iou)
}

func TestJSON(t *testing.T) {
	t.Parallel()
	out, err := json.Marshal(RLE{Size: [2]int{2, 3}, Counts: "51"})
	require.NoError(t, err)
	require.Equal(t, `{"size":[2,3],"counts":"51"}`, string(out))

	var r RLE
	require.NoError(t, json.Unmarshal([]byte(`{"size":[2,3],"counts":"51"}`), &r))
	require.Equal(t, RLE{Size: [2]int{2, 3}, Counts: "51"}, r)

	// The uncompressed form, as pycocotools' frPyObjects takes it.
	require.NoError(t, json.Unmarshal([]byte(`{"counts": [10, 20, 5, 3, 62], "size": [10, 10]}`), &r))
	require.Equal(t, RLE{Size: [2]int{10, 10}, Counts: ":d05_Oi1"}, r)

	// Characters JSON escapes come back unchanged.
	r = FromRuns(100, 100, []uint32{12, 14, 44, 9930}) // "<>\\"
	require.Equal(t, `<>\`, r.Counts[:3])
	out, err = json.Marshal(r)
	require.NoError(t, err)
	var back RLE
	require.NoError(t, json.Unmarshal(out, &back))
	require.Equal(t, r, back)

	for name, in := range map[string]string{
		"negative run":   `{"size":[2,3],"counts":[-5,1]}`,
		"fractional run": `{"size":[2,3],"counts":[4.5,1.5]}`,
		"huge run":       `{"size":[2,3],"counts":[4294967296]}`,
		"one side":       `{"size":[6],"counts":"6"}`,
		"three sides":    `{"size":[2,3,1],"counts":"6"}`,
		"no counts":      `{"size":[2,3]}`,
		"counts object":  `{"size":[2,3],"counts":{"a":1}}`,
		"size strings":   `{"size":["2","3"],"counts":"6"}`,
		"not an object":  `"6"`,
	} {
		err := json.Unmarshal([]byte(in), &r)
		require.Error(t, err, name)
		require.ErrorIs(t, err, ErrInvalid, name)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		r    RLE
		want string // part of the error
	}{
		{"sum too small", RLE{Size: [2]int{10, 10}, Counts: rawCounts(99)}, "mask counts sum to 99 pixels, want 100 (10x10)"},
		{"sum too large", FromRuns(2, 2, []uint32{3, 3}), "mask counts sum to more than 4 pixels, want 4 (2x2): run 1 ends at pixel 6"},
		{"no counts", RLE{Size: [2]int{2, 2}}, "mask counts sum to 0 pixels, want 4 (2x2)"},
		{"space", RLE{Size: [2]int{2, 2}, Counts: "4 "}, `mask counts hold ' ' at character 1, outside the characters '0' to 'o'`},
		{"below '0'", RLE{Size: [2]int{2, 2}, Counts: "/4"}, `'/' at character 0`},
		{"above 'o'", RLE{Size: [2]int{2, 2}, Counts: "0p"}, `'p' at character 1`},
		{"not ASCII", RLE{Size: [2]int{2, 2}, Counts: "é"}, "mask counts hold byte 0xc3 at character 0"},
		{"truncated", RLE{Size: [2]int{40, 40}, Counts: "R"}, "mask counts end in the middle of a number"},
		{"truncated later", RLE{Size: [2]int{40, 40}, Counts: "0R"}, "end in the middle of a number"},
		{"negative first run", RLE{Size: [2]int{2, 2}, Counts: "O"}, "mask counts hold a negative run (-1) at run 0"},
		{"negative after difference", RLE{Size: [2]int{10, 10}, Counts: rawCounts(10, 5, 10, -6, 80)}, "negative run (-1) at run 3"},
		{"overflowing number", RLE{Size: [2]int{2, 2}, Counts: rawCounts(1 << 33)}, "sum to more than 4 pixels"},
		{"number over 7 characters", RLE{Size: [2]int{2, 2}, Counts: rawCounts(1 << 40)}, "mask counts hold a number longer than 7 characters at character 0"},
		{"padded number", RLE{Size: [2]int{2, 2}, Counts: "TPPPPPP0"}, "longer than 7 characters"},
		{"too many runs", RLE{Size: [2]int{1, 1}, Counts: "0001"}, "mask counts hold more than 2 runs, more than a 1x1 mask can have"},
		{"zero height", RLE{Size: [2]int{0, 5}, Counts: "0"}, "mask size [0, 5] is not positive"},
		{"negative width", RLE{Size: [2]int{5, -1}, Counts: "0"}, "mask size [5, -1] is not positive"},
		{"too high", RLE{Size: [2]int{40000, 1}, Counts: "0"}, "mask size 1x40000 is over the limit of 32768 pixels a side"},
		{"too many pixels", RLE{Size: [2]int{20000, 20000}, Counts: "0"}, "mask size 20000x20000 is 400000000 pixels, over the limit of 268435456"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := c.r.Validate()
			require.Error(t, err)
			require.ErrorIs(t, err, ErrInvalid)
			require.Contains(t, err.Error(), c.want)

			// Every reader checks as Validate does.
			_, err = c.r.Decode()
			require.EqualError(t, err, c.r.Validate().Error())
			_, err = c.r.Runs()
			require.EqualError(t, err, c.r.Validate().Error())
			_, err = c.r.Area()
			require.EqualError(t, err, c.r.Validate().Error())
			_, err = c.r.BBox()
			require.EqualError(t, err, c.r.Validate().Error())
			_, err = IoU(c.r, c.r)
			require.ErrorIs(t, err, ErrInvalid)
			_, err = Union(c.r, c.r)
			require.ErrorIs(t, err, ErrInvalid)
		})
	}

	// Seven characters is fine when the value fits; a leading empty run
	// and empty runs between are fine.
	require.NoError(t, RLE{Size: [2]int{2, 2}, Counts: "TPPPPP0"}.Validate()) // 4, padded with zero groups
	require.NoError(t, FromRuns(1, 1, []uint32{0, 1}).Validate())
	require.NoError(t, RLE{Size: [2]int{2, 2}, Counts: "0013"}.Validate()) // runs 0 0 1 3

	_, err := IoU(RLE{Size: [2]int{2, 2}, Counts: "4"}, RLE{Size: [2]int{2, 3}, Counts: "6"})
	require.EqualError(t, err, "masks differ in size: 2x2 and 3x2")
	_, err = Union(RLE{Size: [2]int{2, 2}, Counts: "4"}, RLE{Size: [2]int{3, 2}, Counts: "6"})
	require.ErrorIs(t, err, ErrInvalid)
}

// rawCounts writes numbers in the string form as they are, with no
// differences taken, so tests can write strings no encoder would.
func rawCounts(nums ...int64) string {
	var sb strings.Builder
	for _, x := range nums {
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
			sb.WriteByte(c + '0')
		}
	}
	return sb.String()
}

// randomBitmap draws a mask: noise of a random density, or a few filled
// rectangles, so that both short and long runs (across columns) occur.
func randomBitmap(rng *rand.Rand, w, h int) *Bitmap {
	b := NewBitmap(w, h)
	switch rng.IntN(3) {
	case 0:
		p := rng.Float64()
		for i := range b.Pix {
			if rng.Float64() < p {
				b.Pix[i] = 1
			}
		}
	default:
		for range rng.IntN(4) {
			x0, y0 := rng.IntN(w), rng.IntN(h)
			x1, y1 := x0+rng.IntN(w-x0+1), y0+rng.IntN(h-y0+1)
			for y := y0; y < y1; y++ {
				for x := x0; x < x1; x++ {
					b.Set(x, y, true)
				}
			}
		}
	}
	return b
}

func TestRandomMasks(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		w, h := 1+rng.IntN(40), 1+rng.IntN(40)
		a, b := randomBitmap(rng, w, h), randomBitmap(rng, w, h)
		ra, rb := Encode(a), Encode(b)

		back, err := ra.Decode()
		require.NoError(t, err)
		require.Equal(t, a, back)

		runs, err := ra.Runs()
		require.NoError(t, err)
		require.Equal(t, ra, FromRuns(h, w, runs))
		for i, n := range runs {
			require.True(t, n > 0 || i == 0, "Encode writes no empty run but the first")
		}

		area, err := ra.Area()
		require.NoError(t, err)
		require.Equal(t, a.Area(), area)
		box, err := ra.BBox()
		require.NoError(t, err)
		require.Equal(t, a.BBox(), box)

		requireIoUMatchesPixels(t, ra, rb)
		u, err := Union(ra, rb)
		require.NoError(t, err)
		or := NewBitmap(w, h)
		for i := range or.Pix {
			or.Pix[i] = a.Pix[i] | b.Pix[i]
		}
		require.Equal(t, Encode(or), u)
	}
}

func TestIoUEdges(t *testing.T) {
	t.Parallel()
	empty := Encode(NewBitmap(4, 3))
	iou, err := IoU(empty, empty)
	require.NoError(t, err)
	require.Equal(t, 0.0, iou, "two empty masks: 0, as in pycocotools")

	full := FromRuns(3, 4, []uint32{0, 12})
	iou, err = IoU(full, full)
	require.NoError(t, err)
	require.Equal(t, 1.0, iou)
	iou, err = IoU(empty, full)
	require.NoError(t, err)
	require.Equal(t, 0.0, iou)
	u, err := Union(empty, full)
	require.NoError(t, err)
	require.Equal(t, full, u)
	u, err = Union(empty, empty)
	require.NoError(t, err)
	require.Equal(t, empty, u)
}

func TestPNG(t *testing.T) {
	t.Parallel()
	b := NewBitmap(5, 3)
	b.Set(1, 1, true)
	b.Set(4, 2, true)
	data, err := b.PNG()
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, b.WritePNG(&buf))
	require.Equal(t, data, buf.Bytes())

	img, err := png.Decode(bytes.NewReader(data))
	require.NoError(t, err)
	gray, ok := img.(*image.Gray)
	require.True(t, ok, "an 8-bit greyscale PNG")
	require.Equal(t, []uint8{
		0, 0, 0, 0, 0,
		0, 255, 0, 0, 0,
		0, 0, 0, 0, 255,
	}, gray.Pix)

	back, err := FromPNG(bytes.NewReader(data), 127)
	require.NoError(t, err)
	require.Equal(t, b, back)

	// Another colour model goes through the generic path.
	rgba := image.NewRGBA(image.Rect(10, 10, 15, 13))
	for y := range 3 {
		for x := range 5 {
			rgba.Set(10+x, 10+y, gray.At(x, y))
		}
	}
	require.Equal(t, b, FromImage(rgba, 127))
	canvas := image.NewGray(image.Rect(0, 0, 7, 5))
	for y := range 3 {
		for x := range 5 {
			canvas.Set(1+x, 1+y, gray.At(x, y))
		}
	}
	require.Equal(t, b, FromImage(canvas.SubImage(image.Rect(1, 1, 6, 4)), 127))

	_, err = FromPNG(strings.NewReader("not a png"), 127)
	require.Error(t, err)
	big := image.NewGray(image.Rect(0, 0, MaxSide+1, 1))
	buf.Reset()
	require.NoError(t, png.Encode(&buf, big))
	_, err = FromPNG(&buf, 127)
	require.ErrorIs(t, err, ErrInvalid)
}

func TestScale(t *testing.T) {
	t.Parallel()
	b := NewBitmap(3, 2)
	b.Set(0, 0, true)
	b.Set(2, 1, true)

	up := b.Scale(6, 4)
	require.Equal(t, []uint8{
		1, 1, 0, 0, 0, 0,
		1, 1, 0, 0, 0, 0,
		0, 0, 0, 0, 1, 1,
		0, 0, 0, 0, 1, 1,
	}, up.Pix)
	require.Equal(t, b, up.Scale(3, 2))
	require.Equal(t, b, b.Scale(3, 2))

	// Pixel centres: 3 -> 2 columns samples source columns 0 and 2.
	require.Equal(t, []uint8{1, 0, 0, 1}, b.Scale(2, 2).Pix)
	require.Equal(t, 0, NewBitmap(0, 0).Scale(4, 4).Area())
}

func FuzzDecode(f *testing.F) {
	f.Add(uint16(2), uint16(3), "51")
	f.Add(uint16(10), uint16(10), ":d05_Oi1")
	f.Add(uint16(10), uint16(1), "5050")
	f.Add(uint16(40), uint16(40), "R")
	f.Add(uint16(478), uint16(640), "VQi31m>0O2N100O100O2N100O10001N101O1N2O1O2M2O1O1N3N1O1N2O2N1N2O1O1N3N1O1N")
	for _, m := range seedMasks(f) {
		f.Add(uint16(m.Size[0]), uint16(m.Size[1]), m.Counts)
	}
	f.Fuzz(func(t *testing.T, h, w uint16, counts string) {
		r := RLE{Size: [2]int{int(h), int(w)}, Counts: counts}
		err := r.Validate()
		if err != nil {
			require.ErrorIs(t, err, ErrInvalid)
			_, err := r.Decode()
			require.Error(t, err)
			_, err = r.BBox()
			require.Error(t, err)
			return
		}
		if int(h)*int(w) > 1<<20 {
			return // valid, but too large to decode on every try
		}
		b, err := r.Decode()
		require.NoError(t, err)
		area, err := r.Area()
		require.NoError(t, err)
		require.Equal(t, b.Area(), area)
		require.LessOrEqual(t, area, int(h)*int(w))
		box, err := r.BBox()
		require.NoError(t, err)
		require.Equal(t, b.BBox(), box)

		// Strings with empty runs decode to the same pixels as the
		// canonical string Encode writes.
		canon := Encode(b)
		back, err := canon.Decode()
		require.NoError(t, err)
		require.Equal(t, b, back)
		iou, err := IoU(r, canon)
		require.NoError(t, err)
		if area > 0 {
			require.Equal(t, 1.0, iou)
		}
	})
}

// benchMask is a 1024x768 mask like a reviewer's: a filled ellipse with a
// ragged edge and a few holes.
func benchMask(cx, cy float64) *Bitmap {
	rng := rand.New(rand.NewPCG(7, uint64(cx)))
	b := NewBitmap(1024, 768)
	for y := range b.H {
		for x := range b.W {
			dx, dy := (float64(x)-cx)/300, (float64(y)-cy)/220
			if d := dx*dx + dy*dy; d < 1-0.02*rng.Float64() && (d > 0.05 || (x/8+y/8)%3 != 0) {
				b.Set(x, y, true)
			}
		}
	}
	return b
}

func BenchmarkEncode(b *testing.B) {
	m := benchMask(500, 380)
	b.ReportAllocs()
	for b.Loop() {
		Encode(m)
	}
}

func BenchmarkDecode(b *testing.B) {
	r := Encode(benchMask(500, 380))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Decode(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeInto is BenchmarkDecode into one bitmap, reused: the
// codec's own time, without the allocator's and garbage collector's, which
// on a busy machine cost more than the decoding (see BenchmarkNewBitmap).
func BenchmarkDecodeInto(b *testing.B) {
	r := Encode(benchMask(500, 380))
	into := NewBitmap(1024, 768)
	b.ReportAllocs()
	for b.Loop() {
		if err := r.DecodeInto(into); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewBitmap is the floor under BenchmarkDecode: allocating the
// 1024x768 bitmap it returns, which on a busy machine costs as much as the
// decoding itself.
func BenchmarkNewBitmap(b *testing.B) {
	b.ReportAllocs()
	var m *Bitmap
	for b.Loop() {
		m = NewBitmap(1024, 768)
	}
	require.Len(b, m.Pix, 1024*768)
}

func BenchmarkIoU(b *testing.B) {
	ra, rb := Encode(benchMask(500, 380)), Encode(benchMask(540, 360))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := IoU(ra, rb); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCrowdIoU checks the crowd rule of the COCO API's iou (maskApi.c
// rleIou): intersection over the detection's area, against pixels.
func TestCrowdIoU(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		w, h := 1+rng.IntN(20), 1+rng.IntN(20)
		a, b := NewBitmap(w, h), NewBitmap(w, h)
		for i := range a.Pix {
			a.Pix[i] = uint8(rng.IntN(2))
			b.Pix[i] = uint8(rng.IntN(2))
		}
		inter, area := 0, 0
		for i := range a.Pix {
			area += int(a.Pix[i])
			inter += int(a.Pix[i] & b.Pix[i])
		}
		want := 0.0
		if inter > 0 {
			want = float64(inter) / float64(area)
		}
		got, err := CrowdIoU(Encode(a), Encode(b))
		require.NoError(t, err)
		require.Equal(t, want, got)
	}

	// A detection inside a large crowd matches it fully.
	crowd := FromRuns(4, 4, []uint32{0, 16})
	dt := FromRuns(4, 4, []uint32{5, 2, 9})
	iou, err := CrowdIoU(dt, crowd)
	require.NoError(t, err)
	require.Equal(t, 1.0, iou)
	iou, err = IoU(dt, crowd)
	require.NoError(t, err)
	require.Equal(t, 2.0/16, iou)

	_, err = CrowdIoU(dt, FromRuns(2, 8, []uint32{0, 16}))
	require.ErrorIs(t, err, ErrInvalid)
}
