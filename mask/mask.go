// Package mask is the one mask format of the hub: COCO run-length encoding
// (RLE), exactly as pycocotools writes it, used in the database, the API, the
// inference protocol and the exports (FORMATS.md).
//
// A binary mask of height h and width w is read in column-major order (pixel
// index x·h + y) as alternating runs of 0s and 1s, starting with 0s. The
// compressed string form stores each run, from the fourth on as a difference
// from the run two before it, in 5-bit groups written as the characters
// 48..111, with bit 0x20 meaning "more groups follow" and bit 0x10 of the last
// group carrying the sign.
package mask

import (
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
)

// MaxSide is the largest height or width a mask may have.
const MaxSide = 1 << 15

// Bitmap is a binary mask, row-major, one byte per pixel (0 or 1).
type Bitmap struct {
	W, H int
	Pix  []uint8
}

// NewBitmap returns an empty w×h mask.
func NewBitmap(w, h int) *Bitmap { return &Bitmap{W: w, H: h, Pix: make([]uint8, w*h)} }

// At reports whether pixel (x, y) is set.
func (b *Bitmap) At(x, y int) bool { return b.Pix[y*b.W+x] != 0 }

// Set sets or clears pixel (x, y).
func (b *Bitmap) Set(x, y int, on bool) {
	var v uint8
	if on {
		v = 1
	}
	b.Pix[y*b.W+x] = v
}

// Area is the number of set pixels.
func (b *Bitmap) Area() int {
	n := 0
	for _, v := range b.Pix {
		if v != 0 {
			n++
		}
	}
	return n
}

// BBox is the tight box [x, y, w, h] of the set pixels; [0, 0, 0, 0] when
// none is set.
func (b *Bitmap) BBox() [4]int {
	x0, y0, x1, y1 := b.W, b.H, -1, -1
	for y := 0; y < b.H; y++ {
		row := b.Pix[y*b.W : (y+1)*b.W]
		for x, v := range row {
			if v != 0 {
				x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
			}
		}
	}
	if x1 < 0 {
		return [4]int{}
	}
	return [4]int{x0, y0, x1 - x0 + 1, y1 - y0 + 1}
}

// WritePNG writes the mask as an 8-bit grey PNG, 0 and 255.
func (b *Bitmap) WritePNG(w io.Writer) error {
	img := image.NewGray(image.Rect(0, 0, b.W, b.H))
	for i, v := range b.Pix {
		if v != 0 {
			img.Pix[i] = 255
		}
	}
	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("error encoding mask PNG: %w", err)
	}
	return nil
}

// FromImage makes a mask of the pixels of img brighter than half grey (a PNG
// mask as Open Images ships them, for instance).
func FromImage(img image.Image) *Bitmap {
	r := img.Bounds()
	b := NewBitmap(r.Dx(), r.Dy())
	for y := 0; y < b.H; y++ {
		for x := 0; x < b.W; x++ {
			if color.GrayModel.Convert(img.At(r.Min.X+x, r.Min.Y+y)).(color.Gray).Y >= 128 {
				b.Pix[y*b.W+x] = 1
			}
		}
	}
	return b
}

// Scale resizes a mask to w×h by nearest neighbour.
func (b *Bitmap) Scale(w, h int) *Bitmap {
	out := NewBitmap(w, h)
	for y := 0; y < h; y++ {
		sy := y * b.H / h
		for x := 0; x < w; x++ {
			out.Pix[y*w+x] = b.Pix[sy*b.W+x*b.W/w]
		}
	}
	return out
}

// RLE is a COCO compressed RLE; it marshals to {"size": [h, w], "counts": "…"}.
type RLE struct {
	Size   [2]int `json:"size"` // [height, width]
	Counts string `json:"counts"`
}

// UnmarshalJSON accepts both forms pycocotools writes: compressed (counts a
// string) and uncompressed (counts a list of numbers), and keeps the
// compressed one.
func (r *RLE) UnmarshalJSON(data []byte) error {
	var raw struct {
		Size   [2]int          `json:"size"`
		Counts json.RawMessage `json:"counts"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	r.Size = raw.Size
	var s string
	if err := json.Unmarshal(raw.Counts, &s); err == nil {
		r.Counts = s
		return nil
	}
	var runs []uint32
	if err := json.Unmarshal(raw.Counts, &runs); err != nil {
		return errors.New("mask counts must be a string or a list of non-negative numbers")
	}
	*r = FromRuns(raw.Size[0], raw.Size[1], runs)
	return nil
}

// Encode compresses a bitmap.
func Encode(b *Bitmap) RLE {
	runs := make([]uint32, 0, 64)
	var prev uint8
	var n uint32
	for x := 0; x < b.W; x++ {
		for y := 0; y < b.H; y++ {
			v := b.Pix[y*b.W+x] & 1
			if v != prev {
				runs = append(runs, n)
				n, prev = 0, v
			}
			n++
		}
	}
	runs = append(runs, n)
	return FromRuns(b.H, b.W, runs)
}

// FromRuns compresses run lengths (starting with a run of 0s).
func FromRuns(h, w int, runs []uint32) RLE {
	s := make([]byte, 0, len(runs)*2)
	for i, r := range runs {
		x := int64(r)
		if i > 2 {
			x -= int64(runs[i-2])
		}
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
	return RLE{Size: [2]int{h, w}, Counts: string(s)}
}

// Runs decodes and checks the run lengths: the size must be sane, the string
// well formed, every run non-negative and all of them together exactly h×w.
func (r RLE) Runs() ([]uint32, error) {
	h, w := r.Size[0], r.Size[1]
	if h <= 0 || w <= 0 || h > MaxSide || w > MaxSide {
		return nil, fmt.Errorf("mask size %d×%d is not allowed (each side 1 to %d)", h, w, MaxSide)
	}
	total := int64(h) * int64(w)
	// No run list of an h×w mask needs more than 7 characters per pixel.
	if int64(len(r.Counts)) > 7*(total+1) {
		return nil, fmt.Errorf("mask counts are too long for a %d×%d mask", h, w)
	}
	runs := make([]uint32, 0, len(r.Counts)/2+1)
	var sum int64
	s := r.Counts
	for p := 0; p < len(s); {
		var x int64
		k := 0
		for more := true; more; {
			if p >= len(s) {
				return nil, errors.New("mask counts end in the middle of a number")
			}
			c := s[p]
			if c < 48 || c > 111 {
				return nil, fmt.Errorf("mask counts contain %q, which COCO RLE never uses", c)
			}
			c -= 48
			if k > 6 {
				return nil, errors.New("mask counts hold a number too large for any mask")
			}
			x |= int64(c&0x1f) << (5 * k)
			more = c&0x20 != 0
			p++
			k++
			if !more && c&0x10 != 0 {
				x |= -1 << (5 * k)
			}
		}
		if m := len(runs); m > 2 {
			x += int64(runs[m-2])
		}
		if x < 0 || x > total {
			return nil, fmt.Errorf("mask counts hold a run of %d pixels, impossible in a %d×%d mask", x, h, w)
		}
		sum += x
		if sum > total {
			return nil, fmt.Errorf("mask counts add up to more than the %d pixels of a %d×%d mask", total, h, w)
		}
		runs = append(runs, uint32(x))
	}
	if sum != total {
		return nil, fmt.Errorf("mask counts add up to %d pixels, want %d (%d×%d)", sum, total, h, w)
	}
	return runs, nil
}

// Validate reports whether r is a well-formed mask.
func (r RLE) Validate() error {
	_, err := r.Runs()
	return err
}

// Decode expands r into a bitmap.
func (r RLE) Decode() (*Bitmap, error) {
	runs, err := r.Runs()
	if err != nil {
		return nil, err
	}
	h, w := r.Size[0], r.Size[1]
	b := NewBitmap(w, h)
	idx := 0
	for i, n := range runs {
		if i%2 == 1 {
			for j := idx; j < idx+int(n); j++ {
				x, y := j/h, j%h
				b.Pix[y*w+x] = 1
			}
		}
		idx += int(n)
	}
	return b, nil
}

// Area is the number of set pixels, from the runs.
func (r RLE) Area() (int, error) {
	runs, err := r.Runs()
	if err != nil {
		return 0, err
	}
	return area(runs), nil
}

func area(runs []uint32) int {
	a := 0
	for i := 1; i < len(runs); i += 2 {
		a += int(runs[i])
	}
	return a
}

// BBox is the box [x, y, w, h] exactly as pycocotools' toBbox computes it
// from the runs, including its rounding of a run that wraps from one column
// to the next to the full height.
func (r RLE) BBox() ([4]int, error) {
	runs, err := r.Runs()
	if err != nil {
		return [4]int{}, err
	}
	h := r.Size[0]
	m := len(runs) / 2 * 2
	if m == 0 {
		return [4]int{}, nil
	}
	xs, ys, xe, ye := int64(r.Size[1]), int64(h), int64(0), int64(0)
	var cc, xp int64
	for j := 0; j < m; j++ {
		cc += int64(runs[j])
		t := cc - int64(j%2)
		y := t % int64(h)
		x := (t - y) / int64(h)
		if j%2 == 0 {
			xp = x
		} else if xp < x {
			ys, ye = 0, int64(h-1)
		}
		xs, xe = min(xs, x), max(xe, x)
		ys, ye = min(ys, y), max(ye, y)
	}
	return [4]int{int(xs), int(ys), int(xe - xs + 1), int(ye - ys + 1)}, nil
}

// IoU is the intersection over union of two masks of the same size, computed
// on the runs without expanding them. Two empty masks give 0, as in
// pycocotools.
func IoU(a, b RLE) (float64, error) {
	if a.Size != b.Size {
		return 0, fmt.Errorf("masks differ in size: %v and %v", a.Size, b.Size)
	}
	ra, err := a.Runs()
	if err != nil {
		return 0, err
	}
	rb, err := b.Runs()
	if err != nil {
		return 0, err
	}
	inter := intersection(ra, rb)
	union := area(ra) + area(rb) - inter
	if union == 0 {
		return 0, nil
	}
	return float64(inter) / float64(union), nil
}

// intersection walks both run lists at once and counts pixels set in both.
func intersection(a, b []uint32) int {
	var ia, ib int    // current run index
	var la, lb = 0, 0 // pixels left in the current runs
	if len(a) > 0 {
		la = int(a[0])
	}
	if len(b) > 0 {
		lb = int(b[0])
	}
	inter := 0
	for ia < len(a) && ib < len(b) {
		n := min(la, lb)
		if ia%2 == 1 && ib%2 == 1 {
			inter += n
		}
		la -= n
		lb -= n
		for la == 0 && ia < len(a) {
			ia++
			if ia < len(a) {
				la = int(a[ia])
			}
		}
		for lb == 0 && ib < len(b) {
			ib++
			if ib < len(b) {
				lb = int(b[ib])
			}
		}
	}
	return inter
}
