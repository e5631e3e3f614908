package imaging

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/webp"
)

// Result is an image made ready to store and show.
type Result struct {
	Bytes []byte // the canonical file: upright, without personal metadata
	// Image is its decoded, upright pixels: at full size, or smaller when
	// Options.ReduceTo allowed a JPEG to be decoded reduced.
	Image image.Image
	// Width and Height are the canonical file's, upright, whatever the
	// size of Image; zero means Image's own size.
	Width       int
	Height      int
	Format      string // jpeg, png or webp; the canonical file's, which a rotation may change
	ContentType string
	Ext         string
	Orientation int  // the EXIF orientation the upload had (1 when none)
	Reencoded   bool // the pixels were encoded anew because they had to be turned (not when a JPEG could be turned losslessly)
}

// size is the canonical image's upright size.
func (r *Result) size() image.Point {
	if r.Width > 0 && r.Height > 0 {
		return image.Pt(r.Width, r.Height)
	}
	return r.Image.Bounds().Size()
}

// Options tune Process.
type Options struct {
	// Limits are checked on the header before anything is decoded.
	// MinShortSide is not: a small photo is decoded, then rejected by the
	// quality verdict with its own reason.
	Limits Limits
	// JPEGQuality is used when a JPEG must be encoded anew; 0 means 92.
	JPEGQuality int
	// ReduceTo, when positive, lets Decode return a JPEG's pixels reduced
	// by 2, 4 or 8 as long as their longer side keeps at least this many
	// pixels: where libjpeg-turbo decodes (see the turbojpeg package), the
	// reduction happens in the DCT domain, for a fraction of the cost of a
	// full decode and of its memory. Ingest sets ReviewSize, the largest
	// image it derives. Without TurboJPEG it is ignored.
	ReduceTo int
}

// Process canonicalises an upload with the default Options.
func Process(data []byte) (*Result, error) { return Options{}.Process(data) }

// Process decodes an upload, applies its EXIF orientation, and returns the
// canonical bytes with personal metadata removed: EXIF (with GPS and the
// camera's serial number), XMP, IPTC, comments, text chunks, thumbnails,
// and anything appended after the image. What says how to render the
// pixels stays: the JFIF header, the ICC profile, Adobe's colour transform,
// PNG's colour chunks.
//
// An upright image is cleaned losslessly, by dropping segments or chunks;
// its pixels are exactly the upload's. An image stored sideways (most
// portrait photos from phones) is turned and encoded anew, since turning
// compressed JPEG data exactly is out of reach of the standard library: a
// JPEG as JPEG at quality 92 (visually lossless at one generation), a PNG as
// PNG, a WebP as JPEG or, with transparency, as PNG, for want of a WebP
// encoder.
//
// Errors are *Refusal when the file itself is at fault.
func (o Options) Process(data []byte) (*Result, error) {
	p, err := o.Prepare(data)
	if err != nil {
		return nil, err
	}
	return p.Decode()
}

// Prepared is an upload inspected and cleaned of its metadata but not yet
// decoded: the cheap half of Process, after which Memory tells what the
// expensive half will take, so that a caller can wait for that much memory
// first.
type Prepared struct {
	o        Options
	data     []byte
	hdr      Header
	lay      layout
	c        cleaned
	cleanErr error // reported after decoding, so that a decoder's verdict comes first
	jp       jpegPlan
}

// Prepare checks data's header against o.Limits and removes its metadata,
// without decoding pixels. Errors are *Refusal when the file is at fault.
func (o Options) Prepare(data []byte) (*Prepared, error) {
	lim := o.Limits
	lim.MinShortSide = -1
	hdr, lay, err := inspectBytes(data, lim)
	if err != nil {
		return nil, err
	}
	p := &Prepared{o: o, data: data, hdr: hdr, lay: lay}
	switch hdr.Format {
	case "jpeg":
		p.c, p.cleanErr = cleanJPEG(data)
		p.jp = p.planJPEG()
	case "png":
		p.c, p.cleanErr = cleanPNG(data)
	case "webp":
		p.c, p.cleanErr = cleanWebP(data)
	}
	return p, nil
}

// Header is what the file's header says.
func (p *Prepared) Header() Header { return p.hdr }

// DecodedBytes is what the decoded pixels take in memory, as the standard
// decoders lay them out (a 16-bit RGBA PNG 8 bytes a pixel, an 8-bit one 4,
// a 4:2:0 JPEG 1.5), with the decoder's own working copies (a progressive
// JPEG's coefficients, an interlaced PNG's passes).
//
// For a JPEG that TurboJPEG decodes it is the planes as they are coded, at
// the size Decode decodes them (see Options.ReduceTo); its working copies
// are in Memory.
func (p *Prepared) DecodedBytes() int64 {
	if n, ok := p.jpegDecodedBytes(); ok {
		return n
	}
	return int64(float64(p.hdr.Width) * float64(p.hdr.Height) * p.lay.decoded)
}

// Memory estimates, from the header alone, the most memory that Decode and
// then Derive hold at once for the file: the file and its cleaned copy, the
// decoded pixels, a turned copy and its new encoding when the file must be
// turned, and the copies the thumbnails are made from. It errs on the high
// side.
func (p *Prepared) Memory() int64 {
	if m, ok := p.jpegMemory(); ok {
		return m
	}
	decoded := p.DecodedBytes()
	m := 2*p.hdr.Size + decoded + memorySlack
	if p.cleanErr == nil && p.c.orientation != 1 {
		// The turned copy, and its new encoding, whose buffer grows by
		// doubling up to the size of the raw pixels, and the encoder's own
		// buffers: a 16-bit PNG measured up to 3.6 times the pixels
		// (TestMemoryCoversDecoding, with the race detector's leaner pools).
		m += 4 * decoded
	}
	return m + p.lay.thumbBytes(p.hdr.Width, p.hdr.Height)
}

// Decode decodes the pixels and finishes what Process does.
func (p *Prepared) Decode() (*Result, error) {
	if p.hdr.Format == "jpeg" {
		return p.decodeJPEG()
	}
	return p.decodeStd()
}

// decodeStd is Decode with the standard library's decoders (and
// golang.org/x/image's for WebP), at full size.
func (p *Prepared) decodeStd() (*Result, error) {
	var img image.Image
	var err error
	switch p.hdr.Format {
	case "jpeg":
		img, err = jpeg.Decode(bytes.NewReader(p.data))
	case "png":
		img, err = png.Decode(bytes.NewReader(p.data))
	case "webp":
		img, err = webp.Decode(bytes.NewReader(p.data))
	}
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, errDataEndsEarly()
		}
		return nil, refuse(CodeUndecodable, "the image data is damaged and cannot be decoded (%s).", plainError(err))
	}
	if p.cleanErr != nil {
		return nil, p.structureRefusal()
	}
	c := p.c
	res := p.newResult()
	res.Image = img
	if c.orientation != 1 {
		res.Image = Orient(img, c.orientation)
		if err := p.o.reencode(res, c); err != nil {
			return nil, err
		}
	}
	b := res.Image.Bounds()
	res.Width, res.Height = b.Dx(), b.Dy()
	return res, nil
}

// newResult is the Result of the cleaned file, before any decoding.
func (p *Prepared) newResult() *Result {
	f := formats[p.hdr.Format]
	return &Result{Bytes: p.c.bytes, Format: p.hdr.Format, ContentType: f[0], Ext: f[1], Orientation: p.c.orientation}
}

func (p *Prepared) structureRefusal() *Refusal {
	return refuse(CodeUndecodable, "the file's structure is damaged: %v.", p.cleanErr)
}

func errDataEndsEarly() *Refusal {
	return refuse(CodeTruncated, "the image data ends early; the file was probably cut off.")
}

// inspectBytes is Inspect for a file in memory, without copying it; it
// also returns the decoded layout.
func inspectBytes(data []byte, lim Limits) (Header, layout, error) {
	n := min(len(data), prefixCap)
	in := &Inspector{lim: lim.withDefaults(), n: int64(len(data)), prefix: data[:n:n]}
	if len(data) == 0 {
		return Header{}, layout{}, refuseKind("empty")
	}
	if !in.sniff(true) {
		return Header{}, layout{}, in.err
	}
	in.err = in.walk.feed(data)
	h, err := in.Finish()
	if err != nil {
		return Header{}, layout{}, err
	}
	return h, in.walk.layout(), nil
}

// cleaned is a file without its metadata, and what was learnt on the way.
type cleaned struct {
	bytes       []byte
	orientation int
	colour      [][]byte // JPEG APP2 ICC segments or PNG colour chunks, whole, to carry into a new encoding
}

func (o Options) reencode(res *Result, c cleaned) error {
	q := o.JPEGQuality
	if q == 0 {
		q = 92
	}
	var buf bytes.Buffer
	opaque, ok := res.Image.(interface{ Opaque() bool })
	asPNG := res.Format == "png" || res.Format == "webp" && ok && !opaque.Opaque()
	if asPNG {
		if err := png.Encode(&buf, res.Image); err != nil {
			return fmt.Errorf("error encoding turned image: %w", err)
		}
		res.Bytes = buf.Bytes()
		if res.Format == "png" && len(c.colour) > 0 {
			// Right after the IHDR chunk, before PLTE and IDAT.
			const at = 8 + 12 + 13
			res.Bytes = insert(res.Bytes, at, c.colour)
		}
		res.Format = "png"
	} else {
		b, err := encodeJPEG(res.Image, q)
		if err != nil {
			return fmt.Errorf("error encoding turned image: %w", err)
		}
		res.Bytes = b
		// The ICC profile still describes the pixels, unless they were
		// CMYK and are now converted.
		if _, cmyk := res.Image.(*image.CMYK); res.Format == "jpeg" && !cmyk && len(c.colour) > 0 {
			res.Bytes = insert(res.Bytes, 2, c.colour)
		}
		res.Format = "jpeg"
	}
	f := formats[res.Format]
	res.ContentType, res.Ext, res.Reencoded = f[0], f[1], true
	return nil
}

// insert puts parts into b at offset at.
func insert(b []byte, at int, parts [][]byte) []byte {
	n := len(b)
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	out = append(out, b[:at]...)
	for _, p := range parts {
		out = append(out, p...)
	}
	return append(out, b[at:]...)
}

// cleanJPEG keeps the segments that say how to render the image (JFIF
// without its thumbnail, ICC profile, Adobe colour transform, tables,
// frame, scans) and drops the rest (EXIF with GPS and thumbnails, XMP,
// IPTC, MPF, maker notes, comments), and ends the file at its end-of-image
// marker, dropping what phones append there (depth maps, motion-photo
// videos). Entropy-coded data is copied as it is.
func cleanJPEG(data []byte) (cleaned, error) {
	c := cleaned{orientation: 1}
	out := make([]byte, 0, len(data))
	out = append(out, 0xFF, 0xD8)
	exifSeen := false
	i := 2
	for {
		// Find the next marker, skipping stray bytes and fill bytes as
		// decoders do.
		for i < len(data) && data[i] != 0xFF {
			i++
		}
		for i+1 < len(data) && data[i+1] == 0xFF {
			i++
		}
		if i+1 >= len(data) {
			return c, errors.New("no end-of-image marker")
		}
		m := data[i+1]
		switch {
		case m == 0x00 || 0xD0 <= m && m <= 0xD7:
			i += 2
			continue
		case m == 0xD9:
			c.bytes = append(out, 0xFF, 0xD9)
			return c, nil
		}
		if i+4 > len(data) {
			return c, errors.New("a segment header is cut off")
		}
		end := i + 2 + int(binary.BigEndian.Uint16(data[i+2:]))
		if end < i+4 || end > len(data) {
			return c, errors.New("a segment runs past the end of the file")
		}
		seg, payload := data[i:end], data[i+4:end]
		i = end
		switch {
		case m == 0xE0 && bytes.HasPrefix(payload, []byte("JFIF\x00")):
			// The JFIF header (version, density) says how to read the
			// colours; its thumbnail goes.
			if len(payload) > 14 {
				out = append(out, 0xFF, 0xE0, 0, 16)
				out = append(out, payload[:12]...)
				out = append(out, 0, 0)
			} else {
				out = append(out, seg...)
			}
		case m == 0xE1:
			if !exifSeen && bytes.HasPrefix(payload, []byte("Exif\x00\x00")) {
				exifSeen = true
				c.orientation = exifOrientation(payload)
			}
		case m == 0xE2 && bytes.HasPrefix(payload, []byte("ICC_PROFILE\x00")):
			out = append(out, seg...)
			c.colour = append(c.colour, seg)
		case m == 0xEE && bytes.HasPrefix(payload, []byte("Adobe")):
			out = append(out, seg...)
		case 0xE0 <= m && m <= 0xEF, m == 0xFE:
			// Any other APPn, and comments.
		default:
			out = append(out, seg...)
		}
		if m != 0xDA {
			continue
		}
		// Entropy-coded data runs to the next marker that is neither a
		// stuffed 0xFF nor a restart marker.
		j := i
		for {
			k := bytes.IndexByte(data[j:], 0xFF)
			if k < 0 || j+k+1 >= len(data) {
				return c, errors.New("no end-of-image marker")
			}
			j += k
			if n := data[j+1]; n == 0x00 || 0xD0 <= n && n <= 0xD7 {
				j += 2
				continue
			}
			break
		}
		out = append(out, data[i:j]...)
		i = j
	}
}

// pngKeep are the chunks a clean PNG keeps: the critical ones and those that
// say how to render the pixels. Text, EXIF, time, animation frames (the
// decoded image is the default one) and private chunks go.
var pngKeep = map[string]bool{
	"IHDR": true, "PLTE": true, "IDAT": true, "IEND": true,
	"tRNS": true, "gAMA": true, "cHRM": true, "sRGB": true, "iCCP": true, "cICP": true,
	"mDCV": true, "cLLI": true, "mDCv": true, "cLLi": true, "sBIT": true, "bKGD": true, "pHYs": true,
}

// pngColour are the chunks that still hold once the pixels are turned and
// encoded anew (sBIT does not: it depends on the colour type, which the
// encoder may change).
var pngColour = map[string]bool{"gAMA": true, "cHRM": true, "sRGB": true, "iCCP": true, "cICP": true}

// cleanPNG keeps the chunks in pngKeep, up to IEND.
func cleanPNG(data []byte) (cleaned, error) {
	c := cleaned{orientation: 1}
	out := make([]byte, 0, len(data))
	out = append(out, data[:8]...)
	for i := 8; i+12 <= len(data); {
		n := int(binary.BigEndian.Uint32(data[i:]))
		end := i + 12 + n
		if n < 0 || end > len(data) || end < i {
			return c, errors.New("a chunk runs past the end of the file")
		}
		typ := string(data[i+4 : i+8])
		chunk := data[i:end]
		i = end
		if typ == "eXIf" && c.orientation == 1 {
			c.orientation = exifOrientation(chunk[8 : 8+n])
		}
		if pngColour[typ] {
			c.colour = append(c.colour, chunk)
		}
		if !pngKeep[typ] && !isCritical(typ) {
			continue
		}
		out = append(out, chunk...)
		if typ == "IEND" {
			c.bytes = out
			return c, nil
		}
	}
	return c, errors.New("no IEND chunk")
}

// isCritical says whether a chunk is one a decoder must understand (its
// first letter is upper case); those cannot be dropped, and the decoder has
// already accepted them.
func isCritical(typ string) bool { return typ[0]&0x20 == 0 }

// cleanWebP keeps the image chunks (VP8X, VP8, VP8L, ALPH) and the ICC
// profile, drops EXIF, XMP and unknown chunks, clears the dropped ones'
// flags in VP8X, and rewrites the RIFF length.
func cleanWebP(data []byte) (cleaned, error) {
	c := cleaned{orientation: 1}
	end := 8 + int(binary.LittleEndian.Uint32(data[4:]))
	if end > len(data) {
		return c, errors.New("the container is longer than the file")
	}
	out := make([]byte, 12, len(data))
	copy(out, data[:12])
	vp8x, hasICC := -1, false
	for i := 12; i+8 <= end; {
		n := int(binary.LittleEndian.Uint32(data[i+4:]))
		stop := min(i+8+n+n&1, end)
		if n < 0 || i+8+n > end {
			return c, errors.New("a chunk runs past the end of the container")
		}
		fourcc, payload := string(data[i:i+4]), data[i+8:i+8+n]
		chunk := data[i:stop]
		i = stop
		switch fourcc {
		case "EXIF":
			if c.orientation == 1 {
				c.orientation = exifOrientation(payload)
			}
			continue
		case "VP8X":
			vp8x = len(out)
		case "ICCP":
			hasICC = true
		case "VP8 ", "VP8L", "ALPH":
		default: // XMP and anything unknown
			continue
		}
		out = append(out, chunk...)
	}
	if vp8x >= 0 && len(out) > vp8x+8 {
		const icc, exif, xmp = 0x20, 0x08, 0x04
		flags := out[vp8x+8] &^ (exif | xmp)
		if !hasICC {
			flags &^= icc
		}
		out[vp8x+8] = flags
	}
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	c.bytes = out
	return c, nil
}
