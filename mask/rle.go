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
// column a byte at a time is what made this slow. So Encode first turns the
// bitmap into one bit per pixel, column-major, in strips of up to
// stripCols columns, eight rows by eight columns at a time (eight 8-byte loads make
// an 8×8 bit block with shifts, no per-pixel work), and then finds the runs
// a 64-bit word at a time, from the bits where a pixel differs from the one
// before it.
func Encode(b *Bitmap) RLE {
	var cw countWriter
	cw.sb.Grow(2*b.W + 16) // about what a blob's outline takes
	h, w := b.H, b.W
	if h <= 0 || w <= 0 {
		cw.put(0)
		return RLE{Size: [2]int{h, w}, Counts: cw.sb.String()}
	}
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
	cw.put(int64(h*w - last))
	return RLE{Size: [2]int{h, w}, Counts: cw.sb.String()}
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
//
// As Encode does, it works on one bit per pixel, column-major, in strips
// of up to stripCols columns: it sets the runs of 1s in the bits a word at a
// time, then turns each 8×8 block of bits into the bitmap's bytes with
// shifts, eight bytes at a time, leaving the blocks of 0s as they are.
func (r RLE) Decode() (*Bitmap, error) {
	// Check the whole string before allocating: a bad string could
	// otherwise make the server allocate a large bitmap for nothing.
	if err := r.Validate(); err != nil {
		return nil, err
	}
	h, w := r.Size[0], r.Size[1]
	b := NewBitmap(w, h)
	d := stripDecoder{b: b, bpc: (h + 63) / 64 * 8}
	d.strip = max(8, min(stripCols, stackBits/d.bpc&^7))
	var stack [stackBits]byte // as in Encode
	if d.strip*d.bpc <= len(stack) {
		d.cols = stack[:min(w, d.strip)*d.bpc]
	} else {
		d.cols = make([]byte, min(w, d.strip)*d.bpc)
	}
	d.start(0)
	rr := runReader{s: r.Counts, h: int64(h), w: int64(w), total: int64(h * w)}
	pos := 0
	for {
		n, err := rr.next()
		if err == io.EOF {
			d.flush()
			return b, nil
		}
		if err != nil {
			return nil, err
		}
		if rr.on() {
			d.fill(pos, pos+int(n))
		}
		pos += int(n)
	}
}

// stripDecoder sets the pixels of a bitmap from runs of 1s, given in
// order, one strip of columns at a time.
type stripDecoder struct {
	b     *Bitmap
	bpc   int    // bytes a column takes in cols
	cols  []byte // the strip's bits, column-major
	strip int    // columns a strip has, but for the last
	x0, n int    // the strip's first column, and how many it has
	dirty bool   // whether any bit of cols is set
}

// start begins the strip from column x0.
func (d *stripDecoder) start(x0 int) {
	d.x0, d.n = x0, min(d.strip, d.b.W-x0)
}

// fill sets the pixels from column-major index lo to hi, which come after
// the ones set before.
func (d *stripDecoder) fill(lo, hi int) {
	h := d.b.H
	for lo < hi {
		end := (d.x0 + d.n) * h // where the strip ends
		if lo >= end {
			d.flush()
			d.start(d.x0 + d.n)
			continue
		}
		p := lo - d.x0*h
		x, y := p/h, p%h
		k := min(hi-lo, h-y) // pixels in this column
		setBits(d.cols[x*d.bpc:(x+1)*d.bpc], y, y+k)
		d.dirty = true
		lo += k
	}
}

// flush writes the strip's bits into the bitmap and clears them.
func (d *stripDecoder) flush() {
	if !d.dirty {
		return
	}
	h, w, bpc, pix := d.b.H, d.b.W, d.bpc, d.b.Pix
	for m := 0; m < h; m += 64 { // 64 rows at a time
		for x := 0; x < d.n; x += 8 {
			cols := min(8, d.n-x)
			// Word k holds column x+k's 64 rows from m, and is 0 past
			// the strip's last column.
			var a [8]uint64
			var any uint64
			for k := range cols {
				a[k] = binary.LittleEndian.Uint64(d.cols[(x+k)*bpc+m/8:])
				any |= a[k]
			}
			if any == 0 {
				continue
			}
			transposeBytes(&a)
			// Now byte k of a[j] holds column x+k's rows m+8j to m+8j+7:
			// a[j] has pixel (column x+k, row m+8j+i) at bit 8k+i.
			for j, z := range a {
				y0 := m + 8*j
				if z == 0 || y0 >= h {
					continue
				}
				i := y0*w + d.x0 + x
				for r := range min(8, h-y0) {
					row := (z >> r) & lowBits // byte k: pixel (x+k, y0+r)
					if cols == 8 {
						binary.LittleEndian.PutUint64(pix[i+r*w:], row)
						continue
					}
					for k := range cols {
						pix[i+r*w+k] = byte(row >> (8 * k))
					}
				}
			}
		}
	}
	clear(d.cols)
	d.dirty = false
}

// transposeBytes transposes the 8×8 bytes of a: byte j of a[k] becomes
// byte k of a[j].
func transposeBytes(a *[8]uint64) {
	const m32, m16, m8 = 0x00000000ffffffff, 0x0000ffff0000ffff, 0x00ff00ff00ff00ff
	for k := range 4 {
		a[k], a[k+4] = a[k]&m32|a[k+4]<<32, a[k]>>32|a[k+4]&^m32
	}
	for _, k := range [4]int{0, 1, 4, 5} {
		a[k], a[k+2] = a[k]&m16|(a[k+2]&m16)<<16, (a[k]>>16)&m16|a[k+2]&^m16
	}
	for k := 0; k < 8; k += 2 {
		a[k], a[k+1] = a[k]&m8|(a[k+1]&m8)<<8, (a[k]>>8)&m8|a[k+1]&^m8
	}
}

// setBits sets bits lo to hi (not included) of a bitset stored as
// little-endian 64-bit words.
func setBits(bs []byte, lo, hi int) {
	for lo < hi {
		k := lo / 64
		s, e := lo-64*k, min(hi-64*k, 64)
		word := binary.LittleEndian.Uint64(bs[8*k:])
		binary.LittleEndian.PutUint64(bs[8*k:], word|lowMask(e-s)<<s)
		lo = 64*k + e
	}
}

// Runs returns the uncompressed counts, after checking r (see Validate).
func (r RLE) Runs() ([]uint32, error) {
	rr, err := newRunReader(r)
	if err != nil {
		return nil, err
	}
	if err := rr.drain(); err != nil {
		return nil, err
	}
	runs := make([]uint32, 0, rr.n)
	rr = runReader{s: r.Counts, h: rr.h, w: rr.w, total: rr.total}
	for {
		n, err := rr.next()
		if err == io.EOF {
			return runs, nil
		}
		if err != nil {
			return nil, err
		}
		runs = append(runs, uint32(n))
	}
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
