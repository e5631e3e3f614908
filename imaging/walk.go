package imaging

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
)

// The walkers follow a file's structure as it streams by and keep only a
// few bytes of it. They accept what the standard decoders accept (the JPEG
// walker mirrors image/jpeg's tolerance of stray bytes between segments) so
// that a file passing Inspect is refused later only for damaged pixel data.

func errNoImageData() *Refusal {
	return refuse(CodeUndecodable, "the file has a header but no image data.")
}

// jpegWalker follows JPEG segments: markers and their lengths, the frame
// header (SOF) for the size, and the entropy-coded data of each scan up to
// the next marker, until the end-of-image marker.
type jpegWalker struct {
	check  func(w, h int) error // called as soon as the size is known
	state  int
	next   int // state after a skip
	marker byte
	buf    [18]byte // a segment length, or the start of the frame header
	nbuf   int
	need   int // bytes of the current segment still to come
	sawSOF bool
	sawSOS bool
	sized  bool
	w, h   int
	// What the frame header says about the decoded form (see layout).
	progressive bool
	comps       int
	planes      float64 // samples per pixel, over all components
}

const (
	jpegSOI        = iota // the start-of-image marker
	jpegMarker            // looking for the 0xFF of the next marker
	jpegMarkerByte        // the byte after 0xFF
	jpegLength            // a segment's 2-byte length
	jpegSOF               // a frame header
	jpegSkip              // a segment's payload
	jpegScan              // entropy-coded data
	jpegScanFF            // the byte after 0xFF in entropy-coded data
	jpegDone              // after the end-of-image marker: anything goes
)

func (j *jpegWalker) feed(p []byte) error {
	for len(p) > 0 {
		switch j.state {
		case jpegSOI:
			if p[0] != "\xff\xd8"[j.nbuf] {
				return refuse(CodeUndecodable, "the JPEG start marker is missing.")
			}
			p = p[1:]
			if j.nbuf++; j.nbuf == 2 {
				j.state = jpegMarker
			}
		case jpegMarker:
			// Bytes between segments are extraneous and ignored, as the
			// standard decoder (and libjpeg) do.
			i := bytes.IndexByte(p, 0xFF)
			if i < 0 {
				return nil
			}
			p = p[i+1:]
			j.state = jpegMarkerByte
		case jpegMarkerByte:
			c := p[0]
			p = p[1:]
			switch {
			case c == 0xFF: // a fill byte
			case c == 0x00: // extraneous "\xff\x00"
				j.state = jpegMarker
			case c == 0xD9: // end of image
				if !j.sawSOS {
					return errNoImageData()
				}
				j.state = jpegDone
			case 0xD0 <= c && c <= 0xD7: // a stray restart marker
				j.state = jpegMarker
			default:
				j.marker, j.nbuf, j.state = c, 0, jpegLength
			}
		case jpegLength:
			j.buf[j.nbuf] = p[0]
			p = p[1:]
			if j.nbuf++; j.nbuf < 2 {
				continue
			}
			n := int(binary.BigEndian.Uint16(j.buf[:])) - 2
			if n < 0 {
				return refuse(CodeUndecodable, "a JPEG segment has an impossible length.")
			}
			if err := j.segment(n); err != nil {
				return err
			}
		case jpegSOF:
			take := min(len(p), j.need)
			if j.nbuf < len(j.buf) {
				j.nbuf += copy(j.buf[j.nbuf:], p[:take])
			}
			p, j.need = p[take:], j.need-take
			if j.need == 0 {
				if err := j.parseSOF(); err != nil {
					return err
				}
				j.state = jpegMarker
			}
		case jpegSkip:
			take := min(len(p), j.need)
			p, j.need = p[take:], j.need-take
			if j.need == 0 {
				j.state = j.next
			}
		case jpegScan:
			i := bytes.IndexByte(p, 0xFF)
			if i < 0 {
				return nil
			}
			p = p[i+1:]
			j.state = jpegScanFF
		case jpegScanFF:
			switch c := p[0]; {
			case c == 0x00 || 0xD0 <= c && c <= 0xD7: // a stuffed 0xFF, a restart marker
				p = p[1:]
				j.state = jpegScan
			case c == 0xFF: // a fill byte
				p = p[1:]
			default: // the marker that ends the scan
				j.state = jpegMarkerByte
			}
		case jpegDone:
			return nil
		}
	}
	return nil
}

// segment starts a segment of n bytes after its length.
func (j *jpegWalker) segment(n int) error {
	j.need, j.nbuf = n, 0
	j.state, j.next = jpegSkip, jpegMarker
	switch m := j.marker; {
	case m == 0xC0 || m == 0xC1 || m == 0xC2: // baseline, extended, progressive frames
		if j.sawSOF {
			return refuse(CodeUndecodable, "the JPEG file has two frame headers.")
		}
		j.sawSOF, j.state = true, jpegSOF
		j.progressive = m == 0xC2
	case m == 0xC3 || 0xC5 <= m && m <= 0xC7 || 0xC9 <= m && m <= 0xCB || 0xCD <= m && m <= 0xCF:
		return refuse(CodeUndecodable, "the file is a lossless, hierarchical or arithmetic-coded JPEG, which we cannot read.")
	case m == 0xDA: // start of scan
		if !j.sawSOF {
			return refuse(CodeUndecodable, "the JPEG file has image data before its frame header.")
		}
		j.sawSOS, j.next = true, jpegScan
	case m == 0xC4, m == 0xDB, m == 0xDD, 0xE0 <= m && m <= 0xEF, m == 0xFE:
		// Huffman and quantisation tables, restart interval, APPn, comment.
	default:
		return refuse(CodeUndecodable, "the JPEG file has an unknown marker 0x%02X.", m)
	}
	if n == 0 {
		if j.state == jpegSOF {
			return j.parseSOF() // too short
		}
		j.state = j.next
	}
	return nil
}

// parseSOF reads the frame header: precision, height, width, components.
func (j *jpegWalker) parseSOF() error {
	b := j.buf[:j.nbuf]
	if len(b) < 6 {
		return refuse(CodeUndecodable, "the JPEG frame header is too short.")
	}
	if b[0] != 8 {
		return refuse(CodeUndecodable, "the JPEG file has %d-bit samples; we can read only 8-bit JPEG.", b[0])
	}
	switch n := b[5]; {
	case n != 1 && n != 3 && n != 4, len(b) < 6+3*int(n):
		return refuse(CodeUndecodable, "the JPEG frame header describes %d colour components, which we cannot read.", n)
	}
	j.h, j.w = int(binary.BigEndian.Uint16(b[1:])), int(binary.BigEndian.Uint16(b[3:]))
	j.sized = true
	j.comps = int(b[5])
	// Each component is stored at its sampling factors over the largest
	// ones: 1 + 2×¼ samples a pixel for 4:2:0, 3 for 4:4:4.
	hmax, vmax := 1, 1
	for i := range j.comps {
		f := b[6+3*i+1]
		hmax, vmax = max(hmax, int(f>>4)), max(vmax, int(f&15))
	}
	for i := range j.comps {
		f := b[6+3*i+1]
		j.planes += float64(max(1, int(f>>4))*max(1, int(f&15))) / float64(hmax*vmax)
	}
	return j.check(j.w, j.h)
}

func (j *jpegWalker) layout() layout {
	l := layout{decoded: j.planes, reduced: j.planes, progressive: j.progressive} // YCbCr is reduced plane by plane
	if j.comps != 3 {
		l.toRGBA, l.reduced = true, 4 // Gray and CMYK become RGBA first
	}
	if j.comps == 4 {
		l.decoded += 4 // the planes are converted to a CMYK image
	}
	if j.progressive {
		// A progressive JPEG keeps every coefficient, an int32 each, until
		// its last scan.
		l.decoded += 4 * j.planes
	}
	return l
}

func (j *jpegWalker) size() (int, int, bool) { return j.w, j.h, j.sized }

func (j *jpegWalker) finish() error {
	if j.state != jpegDone {
		return errTruncated()
	}
	return nil
}

// pngWalker follows PNG chunks: the IHDR for the size, then lengths and
// types up to IEND.
type pngWalker struct {
	check   func(w, h int) error // called as soon as the size is known
	state   int
	buf     [8 + 13 + 4]byte // a chunk header, or the whole IHDR after its length
	nbuf    int
	need    int
	chunks  int
	sawIDAT bool
	w, h    int
	sized   bool
	// What the header says about the decoded form (see layout).
	depth, colour, interlace byte
	sawTRNS                  bool
}

const (
	pngSignature = iota
	pngChunkHeader
	pngIHDR
	pngSkip
	pngDone
)

var pngMagic = []byte("\x89PNG\r\n\x1a\n")

func (w *pngWalker) feed(p []byte) error {
	for len(p) > 0 {
		switch w.state {
		case pngSignature:
			take := min(len(p), len(pngMagic)-w.nbuf)
			if !bytes.Equal(p[:take], pngMagic[w.nbuf:w.nbuf+take]) {
				return refuse(CodeUndecodable, "the PNG signature is damaged.")
			}
			p, w.nbuf = p[take:], w.nbuf+take
			if w.nbuf == len(pngMagic) {
				w.state, w.nbuf = pngChunkHeader, 0
			}
		case pngChunkHeader:
			take := min(len(p), 8-w.nbuf)
			copy(w.buf[w.nbuf:], p[:take])
			p, w.nbuf = p[take:], w.nbuf+take
			if w.nbuf < 8 {
				continue
			}
			w.nbuf = 0
			if err := w.chunk(); err != nil {
				return err
			}
		case pngIHDR:
			take := min(len(p), len(w.buf)-8-w.nbuf)
			copy(w.buf[8+w.nbuf:], p[:take])
			p, w.nbuf = p[take:], w.nbuf+take
			if 8+w.nbuf < len(w.buf) {
				continue
			}
			ihdr := w.buf[4:]
			if crc32.ChecksumIEEE(ihdr[:4+13]) != binary.BigEndian.Uint32(ihdr[4+13:]) {
				return refuse(CodeUndecodable, "the PNG header is damaged (its checksum does not match).")
			}
			w.w, w.h, w.sized = int(binary.BigEndian.Uint32(ihdr[4:])), int(binary.BigEndian.Uint32(ihdr[8:])), true
			w.depth, w.colour, w.interlace = ihdr[12], ihdr[13], ihdr[16]
			w.state, w.nbuf = pngChunkHeader, 0
			if err := w.check(w.w, w.h); err != nil {
				return err
			}
		case pngSkip:
			take := min(len(p), w.need)
			p, w.need = p[take:], w.need-take
			if w.need == 0 {
				w.state = pngChunkHeader
			}
		case pngDone:
			return nil
		}
	}
	return nil
}

// chunk starts the chunk whose header is in w.buf[:8].
func (w *pngWalker) chunk() error {
	n := binary.BigEndian.Uint32(w.buf[:4])
	typ := string(w.buf[4:8])
	if n > 1<<31-1 {
		return refuse(CodeUndecodable, "a PNG chunk has an impossible length.")
	}
	w.chunks++
	if (w.chunks == 1) != (typ == "IHDR") {
		return refuse(CodeUndecodable, "the PNG header chunk is missing or out of place.")
	}
	switch typ {
	case "IHDR":
		if n != 13 {
			return refuse(CodeUndecodable, "the PNG header has the wrong length.")
		}
		w.state = pngIHDR
		return nil
	case "IDAT":
		w.sawIDAT = true
	case "tRNS":
		w.sawTRNS = true
	case "IEND":
		if !w.sawIDAT {
			return errNoImageData()
		}
		w.state = pngDone // anything after IEND is ignored, as decoders do
		return nil
	}
	w.state, w.need = pngSkip, int(n)+4 // data and CRC
	return nil
}

func (w *pngWalker) size() (int, int, bool) { return w.w, w.h, w.sized }

// layout follows image/png: grey → Gray or Gray16, palette → Paletted,
// truecolour → RGBA or RGBA64, with alpha (or a tRNS chunk for grey and
// truecolour) → NRGBA or NRGBA64.
func (w *pngWalker) layout() layout {
	wide := w.depth == 16
	var l layout
	switch {
	case w.colour == 3:
		l.decoded = 1
	case w.colour == 0 && !w.sawTRNS:
		l.decoded = 1
		if wide {
			l.decoded = 2
		}
	default:
		l.decoded = 4
		if wide {
			l.decoded = 8
		}
	}
	// Reduced as RGBA, which only 8-bit truecolour already is.
	l.toRGBA, l.reduced = !(w.colour == 2 && !wide && !w.sawTRNS), 4
	if w.interlace != 0 {
		// Each of the seven passes is decoded into an image of its own
		// before they are merged.
		l.decoded *= 2
	}
	return l
}

func (w *pngWalker) finish() error {
	if w.state != pngDone {
		return errTruncated()
	}
	return nil
}

// webpWalker follows the RIFF container of a WebP file: its declared length,
// the chunks in it, and the first chunk's header for the size.
type webpWalker struct {
	check    func(w, h int) error // called as soon as the size is known
	state    int
	buf      [12]byte
	nbuf     int
	pos      int64 // bytes consumed
	end      int64 // where the RIFF container ends
	need     int64 // bytes of the current chunk still to come
	want     int   // bytes of the first chunk to read its header from
	fourcc   string
	chunks   int
	sawImage bool
	w, h     int
	sized    bool
	first    string // the first chunk's FourCC: VP8, VP8L or VP8X
}

const (
	webpRIFF = iota
	webpChunkHeader
	webpFirstChunk
	webpSkip
	webpDone
)

func (w *webpWalker) feed(p []byte) error {
	for len(p) > 0 {
		switch w.state {
		case webpRIFF, webpChunkHeader:
			want := 12
			if w.state == webpChunkHeader {
				want = 8
			}
			take := min(len(p), want-w.nbuf)
			copy(w.buf[w.nbuf:], p[:take])
			p, w.nbuf, w.pos = p[take:], w.nbuf+take, w.pos+int64(take)
			if w.nbuf < want {
				continue
			}
			w.nbuf = 0
			var err error
			if w.state == webpRIFF {
				err = w.riff()
			} else {
				err = w.chunk()
			}
			if err != nil {
				return err
			}
		case webpFirstChunk:
			// The first chunk's first 10 bytes hold the size.
			want := w.want
			take := min(len(p), want-w.nbuf)
			copy(w.buf[w.nbuf:], p[:take])
			p, w.nbuf, w.pos, w.need = p[take:], w.nbuf+take, w.pos+int64(take), w.need-int64(take)
			if w.nbuf < want {
				continue
			}
			if err := w.parseFirst(w.buf[:w.nbuf]); err != nil {
				return err
			}
			w.state, w.nbuf = webpSkip, 0
			w.skipped()
		case webpSkip:
			take := int(min(int64(len(p)), w.need))
			p, w.pos, w.need = p[take:], w.pos+int64(take), w.need-int64(take)
			w.skipped()
		case webpDone:
			return nil
		}
	}
	return nil
}

// skipped moves on once the current chunk is consumed.
func (w *webpWalker) skipped() {
	switch {
	case w.need > 0:
	case w.pos >= w.end:
		w.state = webpDone // anything after the container is ignored
	default:
		w.state = webpChunkHeader
	}
}

func (w *webpWalker) riff() error {
	if string(w.buf[:4]) != "RIFF" || string(w.buf[8:12]) != "WEBP" {
		return refuse(CodeUndecodable, "the WebP container is damaged.")
	}
	size := int64(binary.LittleEndian.Uint32(w.buf[4:]))
	if size < 4+8 {
		return refuse(CodeUndecodable, "the WebP container is too short to hold an image.")
	}
	w.end = 8 + size
	w.state = webpChunkHeader
	return nil
}

func (w *webpWalker) chunk() error {
	w.fourcc = string(w.buf[:4])
	n := int64(binary.LittleEndian.Uint32(w.buf[4:]))
	w.need = n + n&1 // chunks are padded to an even length
	if w.pos+n > w.end {
		return refuse(CodeUndecodable, "a WebP chunk runs past the end of its container.")
	}
	w.need = min(w.need, w.end-w.pos)
	w.chunks++
	switch w.fourcc {
	case "VP8 ", "VP8L":
		w.sawImage = true
	case "ANIM", "ANMF":
		return refuse(CodeUnsupportedType, "animated WebP images are not accepted; upload a still JPEG, PNG or WebP.")
	}
	if w.chunks == 1 {
		if w.fourcc != "VP8 " && w.fourcc != "VP8L" && w.fourcc != "VP8X" {
			return refuse(CodeUndecodable, "the WebP file does not start with an image chunk.")
		}
		w.state, w.want = webpFirstChunk, int(min(10, n))
		if w.want == 0 {
			return refuse(CodeUndecodable, "the WebP image header is damaged.")
		}
		return nil
	}
	w.state = webpSkip
	w.skipped()
	return nil
}

// parseFirst reads the size from the first chunk of a WebP file.
func (w *webpWalker) parseFirst(b []byte) error {
	damaged := refuse(CodeUndecodable, "the WebP image header is damaged.")
	w.first = w.fourcc
	switch w.fourcc {
	case "VP8 ":
		// A key frame's tag, the start code, then 14-bit width and height.
		if len(b) < 10 || b[0]&1 != 0 || b[3] != 0x9d || b[4] != 0x01 || b[5] != 0x2a {
			return damaged
		}
		w.w, w.h = int(binary.LittleEndian.Uint16(b[6:])&0x3fff), int(binary.LittleEndian.Uint16(b[8:])&0x3fff)
	case "VP8L":
		// The signature, then 14 bits of width-1, 14 of height-1, 1 of
		// alpha, 3 of version.
		if len(b) < 5 || b[0] != 0x2f {
			return damaged
		}
		bits := binary.LittleEndian.Uint32(b[1:])
		if bits>>29 != 0 {
			return damaged
		}
		w.w, w.h = int(bits&0x3fff)+1, int(bits>>14&0x3fff)+1
	case "VP8X":
		// Flags, 3 reserved bytes, then 24-bit canvas width-1 and height-1.
		if len(b) < 10 {
			return damaged
		}
		if b[0]&0x02 != 0 {
			return refuse(CodeUnsupportedType, "animated WebP images are not accepted; upload a still JPEG, PNG or WebP.")
		}
		le24 := func(b []byte) int { return int(b[0]) | int(b[1])<<8 | int(b[2])<<16 }
		w.w, w.h = le24(b[4:])+1, le24(b[7:])+1
	}
	w.sized = true
	return w.check(w.w, w.h)
}

func (w *webpWalker) size() (int, int, bool) { return w.w, w.h, w.sized }

// layout: a lossy WebP decodes to YCbCr 4:2:0 (with an alpha plane when a
// VP8X file has one), a lossless one to NRGBA by way of a buffer of 32-bit
// pixels; a VP8X file may hold either.
func (w *webpWalker) layout() layout {
	if w.first == "VP8 " {
		return layout{decoded: 1.5, reduced: 1.5}
	}
	return layout{decoded: 8, toRGBA: true, reduced: 4}
}

func (w *webpWalker) finish() error {
	if w.state != webpDone {
		return errTruncated()
	}
	if !w.sawImage {
		return errNoImageData()
	}
	return nil
}
