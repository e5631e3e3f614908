package imagingtest

import (
	"encoding/binary"
	"image"
	"image/color"
	"math/bits"
)

// WebP encodes an image as a lossless WebP (VP8L) file. It is the simplest
// valid encoding, not a compact one: no transforms, no back-references, and
// fixed 8-bit codes for every channel, so about 3 bytes a pixel. Tests need
// real WebP files and neither the standard library nor x/image can write
// them.
func WebP(img image.Image) []byte {
	return riff(chunk("VP8L", vp8l(img)))
}

// vp8l is the VP8L bitstream of img.
func vp8l(img image.Image) []byte {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	opaque := true
	if o, ok := img.(interface{ Opaque() bool }); ok {
		opaque = o.Opaque()
	}
	var bw bitWriter
	bw.write(0x2f, 8) // signature
	bw.write(uint32(w-1), 14)
	bw.write(uint32(h-1), 14)
	bw.write(boolBit(!opaque), 1) // alpha is used
	bw.write(0, 3)                // version
	bw.write(0, 1)                // no transform
	bw.write(0, 1)                // no colour cache
	bw.write(0, 1)                // one prefix code group for the whole image
	// The five prefix codes: green (with the 24 length codes, unused), red,
	// blue, alpha, distance (unused).
	bw.flatCode(256, 24)
	bw.flatCode(256, 0)
	bw.flatCode(256, 0)
	if opaque {
		bw.oneSymbol(255)
	} else {
		bw.flatCode(256, 0)
	}
	bw.oneSymbol(0)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			bw.symbol(c.G)
			bw.symbol(c.R)
			bw.symbol(c.B)
			if !opaque {
				bw.symbol(c.A)
			}
		}
	}
	return bw.bytes()
}

// bitWriter packs bits from the least significant end of each byte, as VP8L
// reads them.
type bitWriter struct {
	buf []byte
	acc uint64
	n   uint
}

func (w *bitWriter) write(v uint32, n uint) {
	w.acc |= uint64(v) << w.n
	w.n += n
	for w.n >= 8 {
		w.buf = append(w.buf, byte(w.acc))
		w.acc >>= 8
		w.n -= 8
	}
}

func (w *bitWriter) bytes() []byte {
	if w.n > 0 {
		w.buf = append(w.buf, byte(w.acc))
		w.acc, w.n = 0, 0
	}
	return w.buf
}

// symbol writes a value with the flat 8-bit code of flatCode: its own 8
// bits, most significant first, as prefix codes are read.
func (w *bitWriter) symbol(v uint8) { w.write(uint32(bits.Reverse8(v)), 8) }

// flatCode writes a prefix code giving the first n symbols of the alphabet
// 8 bits each (so the code of a symbol is its value) and the next zeros
// symbols none. The code lengths are themselves coded with a one-bit code:
// 0 for "length 0", 1 for "length 8".
func (w *bitWriter) flatCode(n, zeros int) {
	w.write(0, 1) // a normal code, not a simple one
	// Code-length code lengths, in the format's order 17, 18, 0, 1, 2, 3,
	// 4, 5, 16, 6, 7, 8: twelve of them reach length 8.
	order := []int{17, 18, 0, 1, 2, 3, 4, 5, 16, 6, 7, 8}
	w.write(uint32(len(order)-4), 4)
	for _, sym := range order {
		w.write(boolBit(sym == 0 || sym == 8), 3)
	}
	w.write(0, 1) // code lengths for the whole alphabet
	for range n {
		w.write(1, 1)
	}
	for range zeros {
		w.write(0, 1)
	}
}

// oneSymbol writes a simple prefix code with a single symbol, which then
// takes no bits at all.
func (w *bitWriter) oneSymbol(v uint8) {
	w.write(1, 1) // simple
	w.write(0, 1) // one symbol
	if v < 2 {
		w.write(0, 1) // stored in 1 bit
		w.write(uint32(v), 1)
		return
	}
	w.write(1, 1) // stored in 8 bits
	w.write(uint32(v), 8)
}

func boolBit(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// chunk frames a RIFF chunk, padded to an even length.
func chunk(fourcc string, payload []byte) []byte {
	out := make([]byte, 8, 8+len(payload)+1)
	copy(out, fourcc)
	binary.LittleEndian.PutUint32(out[4:], uint32(len(payload)))
	out = append(out, payload...)
	if len(payload)%2 == 1 {
		out = append(out, 0)
	}
	return out
}

// riff wraps chunks in a WebP RIFF container.
func riff(chunks ...[]byte) []byte {
	out := []byte("RIFF\x00\x00\x00\x00WEBP")
	for _, c := range chunks {
		out = append(out, c...)
	}
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out
}

// vp8x is the extended-format header chunk of a w×h canvas.
func vp8x(flags byte, w, h int) []byte {
	p := make([]byte, 10)
	p[0] = flags
	put24 := func(b []byte, v int) { b[0], b[1], b[2] = byte(v), byte(v>>8), byte(v>>16) }
	put24(p[4:], w-1)
	put24(p[7:], h-1)
	return chunk("VP8X", p)
}

// VP8X flags.
const (
	webpICC       = 0x20
	webpAlpha     = 0x10
	webpEXIF      = 0x08
	webpXMP       = 0x04
	webpAnimation = 0x02
)

// WebPWithEXIF encodes img as a lossless WebP in the extended format, with
// an EXIF chunk (orientation and a GPS directory carrying GPSMarker), an XMP
// chunk and an unknown chunk that carry GPSMarker too.
func WebPWithEXIF(img image.Image, orientation int) []byte {
	b := img.Bounds()
	var flags byte = webpEXIF | webpXMP
	if o, ok := img.(interface{ Opaque() bool }); ok && !o.Opaque() {
		flags |= webpAlpha
	}
	return riff(
		vp8x(flags, b.Dx(), b.Dy()),
		chunk("VP8L", vp8l(img)),
		chunk("EXIF", EXIF(orientation)),
		chunk("XMP ", xmp()),
		chunk("ZZZZ", []byte("private data: "+GPSMarker)),
	)
}
