package mask

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"strings"
	"sync"
)

// MaxSide is the largest height or width a mask may have.
const MaxSide = 1 << 15

// MaxPixels is the most pixels a mask may have (16384×16384, or 32768×8192).
// It keeps every run, and every difference the string stores, below 2^29:
// larger numbers take seven characters, and pycocotools' C decoder reads
// seven-character negative numbers wrongly.
const MaxPixels = 1 << 28

// maxDigits is the most characters one number may take. Seven hold 35 bits,
// more than any run of a mask within MaxPixels needs.
const maxDigits = 7

// ErrInvalid is matched (with errors.Is) by every error about a malformed
// mask, whose text is written for the person who sent it.
var ErrInvalid = errors.New("invalid mask")

type invalidError string

func (e invalidError) Error() string        { return string(e) }
func (e invalidError) Is(target error) bool { return target == ErrInvalid }

func invalidf(format string, args ...any) error {
	return invalidError(fmt.Sprintf(format, args...))
}

// checkSize refuses mask sizes that are empty or over the limits, before
// anything is allocated for them.
func checkSize(h, w int) error {
	switch {
	case h <= 0 || w <= 0:
		return invalidf("mask size [%d, %d] is not positive (size is [height, width])", h, w)
	case h > MaxSide || w > MaxSide:
		return invalidf("mask size %dx%d is over the limit of %d pixels a side", w, h, MaxSide)
	case h*w > MaxPixels:
		return invalidf("mask size %dx%d is %d pixels, over the limit of %d", w, h, h*w, MaxPixels)
	}
	return nil
}

// RLE is a COCO compressed RLE. It marshals to {"size": [h, w], "counts":
// "…"} (encoding/json escapes '<' and '>' in counts as \u003c and \u003e,
// which every JSON reader reads back unchanged).
type RLE struct {
	Size   [2]int `json:"size"` // [height, width]
	Counts string `json:"counts"`
}

// UnmarshalJSON reads both forms pycocotools accepts: compressed, with
// counts a string, and uncompressed, with counts a list of run lengths,
// which it compresses. It checks the shape of the JSON only; Validate checks
// the mask.
func (r *RLE) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	var raw struct {
		Size   []int           `json:"size"`
		Counts json.RawMessage `json:"counts"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return invalidf(`mask is not {"size": [height, width], "counts": ...}: %v`, err)
	}
	if len(raw.Size) != 2 {
		return invalidf("mask size must be [height, width], not %d numbers", len(raw.Size))
	}
	h, w := raw.Size[0], raw.Size[1]
	counts := bytes.TrimSpace(raw.Counts)
	switch {
	case len(counts) > 0 && counts[0] == '"':
		var s string
		if err := json.Unmarshal(counts, &s); err != nil {
			return invalidf("error reading mask counts: %v", err)
		}
		*r = RLE{Size: [2]int{h, w}, Counts: s}
	case len(counts) > 0 && counts[0] == '[':
		var nums []int64
		if err := json.Unmarshal(counts, &nums); err != nil {
			return invalidf("mask counts must be whole numbers: %v", err)
		}
		runs := make([]uint32, len(nums))
		for i, n := range nums {
			if n < 0 || n > math.MaxUint32 {
				return invalidf("mask counts hold %d at run %d, not a run length", n, i)
			}
			runs[i] = uint32(n)
		}
		*r = FromRuns(h, w, runs)
	default:
		return invalidf("mask counts must be a string or a list of run lengths")
	}
	return nil
}

// Encode compresses a bitmap, exactly as pycocotools' encode does.
//
// The runs go down the columns of a row-major bitmap, and stepping down a
// column a byte at a time is what made this slow. A run ends where a pixel
// differs from the one above it (or, at the top of a column, from the
// bottom of the column before), so Encode compares each row with the one
// above eight pixels at a time, which costs little more than reading the
// bitmap once, collects the few places where they differ, and sorts them
// into column order by counting. A mask with many changes (noise) goes the
// way that does not depend on their number: see encodeBlocks.
func Encode(b *Bitmap) RLE {
	var cw countWriter
	cw.sb.Grow(2*b.W + 16) // about what a blob's outline takes
	h, w := b.H, b.W
	if h <= 0 || w <= 0 {
		cw.put(0)
		return RLE{Size: [2]int{h, w}, Counts: cw.sb.String()}
	}
	s := scratchPool.Get().(*scratch)
	last, ok := encodeChanges(&cw, b, s)
	putScratch(s)
	if !ok {
		last = encodeBlocks(&cw, b)
	}
	cw.put(int64(h*w - last))
	return RLE{Size: [2]int{h, w}, Counts: cw.sb.String()}
}

// scratch holds the buffers encodeChanges sorts the changes in, and those
// decoding reads the runs into, kept between calls so that encoding a mask
// allocates only its string, and decoding one only its bitmap.
type scratch struct {
	changes, sorted, runs []uint32
	perCol                []int32
}

func (s *scratch) size() int {
	return 4 * (cap(s.changes) + cap(s.sorted) + cap(s.runs) + cap(s.perCol))
}

// maxPooled is the most bytes of scratch buffers kept for the next mask.
const maxPooled = 1 << 20

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// putScratch keeps s for the next mask unless its buffers grew too large.
func putScratch(s *scratch) {
	if s.size() <= maxPooled {
		scratchPool.Put(s)
	}
}

// encodeChanges writes the runs of b but the last from where its pixels
// change, and returns where the last run begins. It writes nothing and
// returns false when b changes in more than one pixel in 16, where
// encodeBlocks is faster and needs no memory for the changes.
func encodeChanges(cw *countWriter, b *Bitmap, s *scratch) (int, bool) {
	h, w, pix := b.H, b.W, b.Pix
	limit := max(1024, h*w/16)
	// A change is stored as x<<16 | y (both below MaxSide = 1<<15), so
	// that sorting by column keeps the rows in order.
	ch := s.changes[:0]
	// The top of column x follows the bottom of column x-1 (and column 0
	// follows a 0).
	bottom := pix[(h-1)*w:]
	for x := range w {
		above := x > 0 && bottom[x-1] != 0
		if (pix[x] != 0) != above {
			ch = append(ch, uint32(x)<<16)
		}
	}
	for y := 1; y < h; y++ {
		row, up := pix[y*w:(y+1)*w], pix[(y-1)*w:y*w]
		x := 0
		for ; x+32 <= w; x += 32 {
			// Four words at a time: most of them are equal.
			r, v := row[x:x+32], up[x:x+32]
			if (binary.LittleEndian.Uint64(r)^binary.LittleEndian.Uint64(v))|
				(binary.LittleEndian.Uint64(r[8:])^binary.LittleEndian.Uint64(v[8:]))|
				(binary.LittleEndian.Uint64(r[16:])^binary.LittleEndian.Uint64(v[16:]))|
				(binary.LittleEndian.Uint64(r[24:])^binary.LittleEndian.Uint64(v[24:])) == 0 {
				continue
			}
			for k := 0; k < 32; k += 8 {
				ch = appendChanges(ch, binary.LittleEndian.Uint64(r[k:]), binary.LittleEndian.Uint64(v[k:]), x+k, y)
			}
		}
		for ; x+8 <= w; x += 8 {
			ch = appendChanges(ch, binary.LittleEndian.Uint64(row[x:]), binary.LittleEndian.Uint64(up[x:]), x, y)
		}
		for ; x < w; x++ {
			if (row[x] != 0) != (up[x] != 0) {
				ch = append(ch, uint32(x)<<16|uint32(y))
			}
		}
		if len(ch) > limit {
			s.changes = ch
			return 0, false
		}
	}
	s.changes = ch

	// Sort by column, counting.
	if cap(s.perCol) < w+1 {
		s.perCol = make([]int32, w+1)
	}
	perCol := s.perCol[:w+1]
	clear(perCol)
	for _, c := range ch {
		perCol[c>>16+1]++
	}
	for x := 1; x <= w; x++ {
		perCol[x] += perCol[x-1]
	}
	if cap(s.sorted) < len(ch) {
		s.sorted = make([]uint32, len(ch), cap(ch))
	}
	sorted := s.sorted[:len(ch)]
	for _, c := range ch {
		x := c >> 16
		sorted[perCol[x]] = c
		perCol[x]++
	}
	last := 0
	for _, c := range sorted {
		pos := int(c>>16)*h + int(c&0xffff)
		cw.put(int64(pos - last))
		last = pos
	}
	return last, true
}

// appendChanges appends the changes between the eight pixels a of row y
// from column x and the eight above them, u.
func appendChanges(ch []uint32, a, u uint64, x, y int) []uint32 {
	if a == u {
		return ch
	}
	if (a|u)&^lowBits != 0 {
		a, u = norm(a)>>7, norm(u)>>7
	}
	for d := a ^ u; d != 0; d &= d - 1 { // one bit per changed byte
		ch = append(ch, uint32(x+bits.TrailingZeros64(d)/8)<<16|uint32(y))
	}
	return ch
}

// encodeBlocks writes the runs of b but the last, as encodeChanges does, in
// a time that does not depend on how often the pixels change. It turns the
// bitmap into one bit per pixel, column-major, in strips of up to
// stripCols columns, eight rows by eight columns at a time (eight 8-byte
// loads make an 8×8 bit block with shifts, no per-pixel work), and then
// finds the runs a 64-bit word at a time, from the bits where a pixel
// differs from the one before it.
func encodeBlocks(cw *countWriter, b *Bitmap) int {
	h, w := b.H, b.W
	wpc := (h + 63) / 64 // 64-bit words a column takes
	bpc := wpc * 8       // bytes a column takes
	// The strip's bits live on the stack when they fit: a heap
	// allocation per mask made the garbage collector stop the encoding
	// often.
	strip := max(8, min(stripCols, stackBits/bpc&^7))
	var stack [stackBits]byte
	var cols []byte
	if strip*bpc <= len(stack) {
		cols = stack[:min(w, strip)*bpc]
	} else {
		cols = make([]byte, min(w, strip)*bpc)
	}
	var prev uint64 // the last pixel before the word being scanned
	var last int    // where the current run began
	for x0 := 0; x0 < w; x0 += strip {
		n := min(strip, w-x0)
		clear(cols)
		for y0 := 0; y0 < h; y0 += 8 {
			rows := min(8, h-y0)
			x := 0
			if rows == 8 {
				x = fullBlocks(cols[y0/8:], bpc, b.Pix[y0*w+x0:], w, n)
			}
			for ; x < n; x += 8 {
				if z := partialBlock(b.Pix, y0*w+x0+x, w, rows, min(8, n-x)); z != 0 {
					storeBlock(cols, x*bpc+y0/8, bpc, z, min(8, n-x))
				}
			}
		}
		for x := range n {
			base := (x0 + x) * h
			col := cols[x*bpc : (x+1)*bpc]
			for k := range wpc {
				word := binary.LittleEndian.Uint64(col[8*k:])
				valid := min(64, h-64*k)
				// Bit j of d is set where pixel j differs from the one
				// before it: where a run ends and the next begins.
				d := (word ^ (word<<1 | prev)) & lowMask(valid)
				prev = word >> (valid - 1) & 1
				for d != 0 {
					pos := base + 64*k + bits.TrailingZeros64(d)
					cw.put(int64(pos - last))
					last = pos
					d &= d - 1
				}
			}
		}
	}
	return last
}

const (
	lowBits7 = 0x7f7f7f7f7f7f7f7f
	highBits = 0x8080808080808080
	lowBits  = 0x0101010101010101
)

// stripCols is how many columns Encode turns into bits at a time, so that
// the bits stay in the fastest cache: 256 columns of 768 rows take 24 KiB.
const stripCols = 256

// stackBits is the most bytes of bits Encode keeps on the stack.
const stackBits = 16 << 10

// lowMask returns a word with its low n bits set, for n from 1 to 64.
func lowMask(n int) uint64 { return ^uint64(0) >> (64 - n) }

// fullBlocks turns the 8×8 blocks of pixels in the first n columns of the 8
// rows from pix (rows w apart) into column-major bits, block x's byte k at
// cols[(x+k)*bpc], and returns how many columns it did: those of the blocks
// 8 columns wide.
func fullBlocks(cols []byte, bpc int, pix []byte, w, n int) int {
	pix = pix[:7*w+n]
	x := 0
	for ; x+8 <= n; x += 8 {
		v0 := binary.LittleEndian.Uint64(pix[x:])
		v1 := binary.LittleEndian.Uint64(pix[x+w:])
		v2 := binary.LittleEndian.Uint64(pix[x+2*w:])
		v3 := binary.LittleEndian.Uint64(pix[x+3*w:])
		v4 := binary.LittleEndian.Uint64(pix[x+4*w:])
		v5 := binary.LittleEndian.Uint64(pix[x+5*w:])
		v6 := binary.LittleEndian.Uint64(pix[x+6*w:])
		v7 := binary.LittleEndian.Uint64(pix[x+7*w:])
		all := v0 | v1 | v2 | v3 | v4 | v5 | v6 | v7
		if all == 0 {
			continue
		}
		// z holds pixel (column x+k, row j) at bit 8k+j.
		var z uint64
		if all&^lowBits == 0 {
			// Every byte is 0 or 1, as in every bitmap this package makes.
			z = v0 | v1<<1 | v2<<2 | v3<<3 | v4<<4 | v5<<5 | v6<<6 | v7<<7
		} else {
			z = norm(v0)>>7 | norm(v1)>>6 | norm(v2)>>5 | norm(v3)>>4 |
				norm(v4)>>3 | norm(v5)>>2 | norm(v6)>>1 | norm(v7)
		}
		storeBlock(cols, x*bpc, bpc, z, 8)
	}
	return x
}

// storeBlock stores the bytes of z, as block makes them, in the first cols
// columns of a column-major bitset from cols[o] (columns bpc bytes apart).
func storeBlock(bits []byte, o, bpc int, z uint64, cols int) {
	for k := range cols {
		bits[o+k*bpc] = byte(z >> (8 * k))
	}
}

// partialBlock is block for the blocks at the right and bottom edges, of
// rows rows and cols columns (each at most 8).
func partialBlock(pix []byte, i, w, rows, cols int) uint64 {
	var z uint64
	for j := range rows {
		z |= norm(loadRow(pix, i+j*w, min(8, cols))) >> (7 - j)
	}
	return z
}

// norm sets 0x80 in each non-zero byte of v and clears the rest.
func norm(v uint64) uint64 { return ((v & lowBits7) + lowBits7 | v) & highBits }

// loadRow reads n bytes (at most 8) of pix from i as a little-endian word.
func loadRow(pix []byte, i, n int) uint64 {
	if n == 8 {
		return binary.LittleEndian.Uint64(pix[i : i+8])
	}
	var v uint64
	for k, p := range pix[i : i+n] {
		v |= uint64(p) << (8 * k)
	}
	return v
}

// FromRuns compresses uncompressed counts (run lengths starting with a run of
// 0s) as they are; Validate tells whether they make an h×w mask.
func FromRuns(h, w int, runs []uint32) RLE {
	var cw countWriter
	cw.sb.Grow(2 * len(runs))
	for _, n := range runs {
		cw.put(int64(n))
	}
	return RLE{Size: [2]int{h, w}, Counts: cw.sb.String()}
}

// Decode expands r into a bitmap, after checking it (see Validate).
func (r RLE) Decode() (*Bitmap, error) {
	var b *Bitmap
	err := r.withRuns(func(runs []uint32) {
		b = NewBitmap(r.Size[1], r.Size[0])
		decodeRuns(b, runs)
	})
	return b, err
}

// DecodeInto expands r into b, which must have r's size, after checking r
// (see Validate); b is left as it was when r is not a valid mask. It saves
// allocating a bitmap per mask when decoding many of one size.
func (r RLE) DecodeInto(b *Bitmap) error {
	if err := checkSize(r.Size[0], r.Size[1]); err != nil {
		return err
	}
	if b.H != r.Size[0] || b.W != r.Size[1] || len(b.Pix) != b.W*b.H {
		return fmt.Errorf("error decoding a %dx%d mask into a %dx%d bitmap", r.Size[1], r.Size[0], b.W, b.H)
	}
	return r.withRuns(func(runs []uint32) {
		clear(b.Pix)
		decodeRuns(b, runs)
	})
}

// withRuns reads and checks r's runs into a pooled buffer and, when r is a
// valid mask, calls fn with them. Reading them all before fn touches a
// bitmap means a bad string costs no bitmap, and the string is parsed
// once rather than once to check it and again to decode it.
func (r RLE) withRuns(fn func(runs []uint32)) error {
	s := scratchPool.Get().(*scratch)
	defer putScratch(s)
	var err error
	s.runs, err = r.appendRuns(s.runs[:0])
	if err != nil {
		return err
	}
	fn(s.runs)
	return nil
}

// appendRuns appends r's uncompressed counts to dst, checking them (see
// Validate).
func (r RLE) appendRuns(dst []uint32) ([]uint32, error) {
	rr, err := newRunReader(r)
	if err != nil {
		return dst, err
	}
	for {
		n, err := rr.next()
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
		dst = append(dst, uint32(n))
	}
}

// decodeRuns sets the pixels of b, all 0 and of the runs' size, from runs
// that have been checked.
//
// Stepping down the columns of a row-major bitmap a byte at a time, as the
// runs go, is what made decoding slow. So decodeRuns first writes only
// where the runs change: pixel (x, y) of row y > 0 is 1 where it differs
// from the pixel above it, and the top row holds the pixels themselves.
// Then one pass down the rows, eight pixels at a time, sets each row to
// itself XOR the row above, which turns the changes into the pixels.
//
// That pass reads the whole bitmap, the largest cost after allocating it,
// so it keeps to the box around the mask's pixels: outside it there are
// neither pixels nor changes, and a row XOR a row of 0s is itself. Where
// each run begins is kept as a column and row, rather than divided out of
// its offset, since most runs stay in their column.
func decodeRuns(b *Bitmap, runs []uint32) {
	h, w, pix := b.H, b.W, b.Pix
	x0, x1, y0, y1 := w, -1, h, -1 // the box, inclusive; empty so far
	x, y := 0, 0                   // where the next run begins
	for k, n := range runs {
		if n == 0 {
			continue
		}
		ex, ey := x, y+int(n) // where the run ends (the pixel after it)
		if ey >= h {
			ex, ey = ex+ey/h, ey%h
		}
		if k%2 == 1 { // a run of 1s: runs begin with 0s
			lastX, lastY := ex, ey-1 // its last pixel
			if ey == 0 {
				lastX, lastY = ex-1, h-1
			}
			// The columns that begin inside the run begin with a 1.
			firstStart := x
			if y != 0 {
				firstStart++
				pix[y*w+x] ^= 1
			}
			for c := firstStart; c <= lastX; c++ {
				pix[c] = 1
			}
			if ey != 0 {
				pix[ey*w+ex] ^= 1
			}
			x0, x1 = min(x0, x), max(x1, lastX)
			if lastX == x {
				y0, y1 = min(y0, y), max(y1, lastY)
			} else { // the run goes from one column's bottom to the next one's top
				y0, y1 = 0, h-1
			}
		}
		x, y = ex, ey
	}
	if x1 < 0 {
		return // no pixel set
	}
	// Rows above y0 are 0 and hold no change; the row below y1 holds the
	// changes that end the runs reaching y1, and the rows below it are 0.
	for y := max(y0+1, 1); y <= min(y1+1, h-1); y++ {
		row, up := pix[y*w+x0:y*w+x1+1], pix[(y-1)*w+x0:(y-1)*w+x1+1]
		x := 0
		for ; x+32 <= len(row); x += 32 {
			r, v := row[x:x+32], up[x:x+32]
			v0, v1 := binary.LittleEndian.Uint64(v), binary.LittleEndian.Uint64(v[8:])
			v2, v3 := binary.LittleEndian.Uint64(v[16:]), binary.LittleEndian.Uint64(v[24:])
			if v0|v1|v2|v3 == 0 {
				continue // outside the mask, x XOR 0 is x
			}
			binary.LittleEndian.PutUint64(r, binary.LittleEndian.Uint64(r)^v0)
			binary.LittleEndian.PutUint64(r[8:], binary.LittleEndian.Uint64(r[8:])^v1)
			binary.LittleEndian.PutUint64(r[16:], binary.LittleEndian.Uint64(r[16:])^v2)
			binary.LittleEndian.PutUint64(r[24:], binary.LittleEndian.Uint64(r[24:])^v3)
		}
		for ; x+8 <= len(row); x += 8 {
			d := binary.LittleEndian.Uint64(row[x:]) ^ binary.LittleEndian.Uint64(up[x:])
			binary.LittleEndian.PutUint64(row[x:], d)
		}
		for ; x < len(row); x++ {
			row[x] ^= up[x]
		}
	}
}

// ColumnRuns calls fn with every run of set pixels, split where a column
// ends: column x, rows y0 to y1 (exclusive). It checks r as Runs does.
func (r RLE) ColumnRuns(fn func(x, y0, y1 int)) error {
	runs, err := r.Runs()
	if err != nil {
		return err
	}
	pos := 0
	for k, n := range runs {
		if k%2 == 1 {
			columnSpans(pos, pos+int(n), r.Size[0], fn)
		}
		pos += int(n)
	}
	return nil
}

// Runs returns the uncompressed counts, after checking r (see Validate).
func (r RLE) Runs() ([]uint32, error) {
	// Every run takes at least one character, so this is the most needed.
	runs, err := r.appendRuns(make([]uint32, 0, len(r.Counts)))
	if err != nil {
		return nil, err
	}
	return runs, nil
}

// Validate checks that r is an h×w mask: each side from 1 to MaxSide and at
// most MaxPixels in all, counts made of the characters '0' to 'o' with no
// number cut short or longer than seven characters, no negative run, at most
// h·w+1 runs (one more than a mask of alternating pixels has), and runs
// adding up to h·w exactly. Empty runs inside the counts are allowed, as
// pycocotools allows them, though no encoder writes them. Its errors match
// ErrInvalid, and give sizes as width x height ("1024x768").
func (r RLE) Validate() error {
	rr, err := newRunReader(r)
	if err != nil {
		return err
	}
	return rr.drain()
}

// runReader reads the runs of a compressed counts string one at a time,
// checking them as it goes, so callers need not allocate them.
type runReader struct {
	s           string
	p           int   // next byte of s
	h, w        int64 // mask size
	total       int64 // h·w, what the runs must add up to
	sum         int64 // pixels covered by the runs read so far
	n           int64 // runs read so far
	prev, prev2 int64 // the last two runs read
}

func newRunReader(r RLE) (runReader, error) {
	h, w := r.Size[0], r.Size[1]
	if err := checkSize(h, w); err != nil {
		return runReader{}, err
	}
	return runReader{s: r.Counts, h: int64(h), w: int64(w), total: int64(h * w)}, nil
}

// on reports whether the last run read is a run of 1s.
func (rr *runReader) on() bool { return rr.n%2 == 0 }

// next returns the next run, or io.EOF after the last one once the runs are
// known to add up to the mask's size.
func (rr *runReader) next() (int64, error) {
	if rr.p == len(rr.s) {
		if rr.sum != rr.total {
			return 0, invalidf("mask counts sum to %d pixels, want %d (%dx%d)", rr.sum, rr.total, rr.w, rr.h)
		}
		return 0, io.EOF
	}
	start := rr.p
	var x int64
	for k := 0; ; k++ {
		if rr.p == len(rr.s) {
			return 0, invalidf("mask counts end in the middle of a number (the last character, %q, says more follow)", rr.s[rr.p-1])
		}
		if k == maxDigits {
			return 0, invalidf("mask counts hold a number longer than %d characters at character %d", maxDigits, start)
		}
		c := rr.s[rr.p]
		if c < '0' || c > 'o' {
			what := fmt.Sprintf("%q", c)
			if c >= 0x80 {
				what = fmt.Sprintf("byte %#x", c)
			}
			return 0, invalidf("mask counts hold %s at character %d, outside the characters '0' to 'o' that COCO RLE uses", what, rr.p)
		}
		c -= '0'
		x |= int64(c&0x1f) << (5 * k)
		rr.p++
		if c&0x20 == 0 {
			if c&0x10 != 0 {
				x |= -1 << (5 * (k + 1)) // negative: extend the sign
			}
			break
		}
	}
	if rr.n > 2 {
		x += rr.prev2
	}
	if x < 0 {
		return 0, invalidf("mask counts hold a negative run (%d) at run %d", x, rr.n)
	}
	rr.prev2, rr.prev = rr.prev, x
	rr.n++
	if rr.n > rr.total+1 {
		return 0, invalidf("mask counts hold more than %d runs, more than a %dx%d mask can have", rr.total+1, rr.w, rr.h)
	}
	rr.sum += x
	if rr.sum > rr.total {
		return 0, invalidf("mask counts sum to more than %d pixels, want %d (%dx%d): run %d ends at pixel %d", rr.total, rr.total, rr.w, rr.h, rr.n-1, rr.sum)
	}
	return x, nil
}

// drain reads the remaining runs, returning nil if they end the mask well.
func (rr *runReader) drain() error {
	for {
		if _, err := rr.next(); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

// countWriter writes run lengths in the compressed string form.
type countWriter struct {
	sb          strings.Builder
	n           int   // runs written
	prev, prev2 int64 // the last two runs written
}

func (cw *countWriter) put(run int64) {
	x := run
	if cw.n > 2 {
		x -= cw.prev2
	}
	cw.prev2, cw.prev = cw.prev, run
	cw.n++
	for {
		c := byte(x & 0x1f)
		x >>= 5
		more := x != 0
		if c&0x10 != 0 {
			more = x != -1 // the sign bit is set: stop once only the sign is left
		}
		if more {
			c |= 0x20
		}
		cw.sb.WriteByte(c + '0')
		if !more {
			return
		}
	}
}
