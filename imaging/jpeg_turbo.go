//go:build cgo && !nojpegturbo

package imaging

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"strings"

	"github.com/deepimageshub/imagehub/imaging/turbojpeg"
)

// With cgo, JPEGs are decoded by libjpeg-turbo (the turbojpeg package):
// to their YCbCr planes, with no colour conversion or upsampling, reduced
// in the DCT domain when Options.ReduceTo allows, and a sideways photo is
// turned losslessly, by moving its DCT coefficients, when its size is a
// whole number of coding blocks in the direction that moves (a 4032×3024
// phone photo is). What TurboJPEG does not decode to planes (RGB, CMYK and
// YCCK JPEGs, unusual subsamplings) goes to the standard decoder.
//
// Why libjpeg-turbo rather than libvips or a pure-Go scaled decoder: it is
// what libvips itself decodes JPEGs with, so the decode is as fast as
// vipsthumbnail's, without libvips's threads, caches and 40 dependencies
// in the process; its scaled IDCT and lossless transforms are what the
// phone photos need; and it has been fuzzed for years (OSS-Fuzz), while a
// new Go decoder would not have been. Its errors come back as values
// (TurboJPEG keeps libjpeg's longjmp inside C).

// jpegPlan is how Decode will go about a JPEG, decided from its header.
type jpegPlan struct {
	turbo    bool // TurboJPEG decodes it; else the standard decoder does
	hdr      turbojpeg.Header
	op       turbojpeg.Op // what turns it upright
	lossless bool         // op is turbojpeg.Perfect: the canonical file is transformed, not encoded anew
	denom    int          // the pixels are decoded at 1/denom
}

// orientOps are the transforms that undo each EXIF orientation.
var orientOps = [9]turbojpeg.Op{
	2: turbojpeg.HFlip, 3: turbojpeg.Rot180, 4: turbojpeg.VFlip,
	5: turbojpeg.Transpose, 6: turbojpeg.Rot90, 7: turbojpeg.Transverse, 8: turbojpeg.Rot270,
}

// source is the file to decode: the cleaned one, or the upload itself
// when cleaning failed (it is decoded only for the decoder's verdict).
func (p *Prepared) source() []byte {
	if p.cleanErr != nil {
		return p.data
	}
	return p.c.bytes
}

func (p *Prepared) planJPEG() jpegPlan {
	h, err := turbojpeg.ReadHeader(p.source())
	if err != nil || h.Width != p.hdr.Width || h.Height != p.hdr.Height {
		return jpegPlan{}
	}
	switch h.Colorspace {
	case turbojpeg.YCbCr:
		if _, ok := h.Subsampling.Ratio(); !ok {
			return jpegPlan{}
		}
	case turbojpeg.Grey:
		if h.Subsampling != turbojpeg.Gray {
			return jpegPlan{}
		}
	default:
		return jpegPlan{}
	}
	pl := jpegPlan{turbo: true, hdr: h, denom: 1}
	if p.cleanErr == nil {
		pl.op = orientOps[p.c.orientation]
	}
	if pl.op != turbojpeg.None {
		pl.lossless = turbojpeg.Perfect(h, pl.op)
	}
	if pl.op == turbojpeg.None || pl.lossless {
		pl.denom = reduction(max(h.Width, h.Height), p.o.ReduceTo)
	}
	return pl
}

// reduction is the largest of 8, 4 and 2 that keeps a long side of n
// pixels at least min pixels long decoded, else 1.
func reduction(n, min int) int {
	if min <= 0 {
		return 1
	}
	for _, d := range []int{8, 4, 2} {
		if turbojpeg.Scaled(n, d) >= min {
			return d
		}
	}
	return 1
}

func (p *Prepared) decodeJPEG() (*Result, error) {
	pl := p.jp
	if !pl.turbo {
		return p.decodeStd()
	}
	if p.cleanErr != nil {
		if _, err := decodeTurbo(p.data, pl.denom); err != nil {
			return nil, err
		}
		return nil, p.structureRefusal()
	}
	res := p.newResult()
	w, h := pl.hdr.Width, pl.hdr.Height
	if p.c.orientation >= 5 {
		w, h = h, w
	}
	switch {
	case pl.op == turbojpeg.None:
	case pl.lossless:
		// TurboJPEG copies the markers of the cleaned file: JFIF, ICC
		// profile, Adobe.
		b, err := turbojpeg.Transform(res.Bytes, pl.op)
		if err := turboVerdict(err); err != nil {
			return nil, err
		}
		res.Bytes = b
	default:
		img, err := decodeTurbo(res.Bytes, 1)
		if err != nil {
			return nil, err
		}
		res.Image = Orient(img, p.c.orientation)
		if err := p.o.reencode(res, p.c); err != nil {
			return nil, err
		}
	}
	if res.Image == nil {
		// The canonical file itself is decoded, so that the pixels every
		// derivative comes from are exactly the stored ones.
		img, err := decodeTurbo(res.Bytes, pl.denom)
		if err != nil {
			return nil, err
		}
		res.Image = img
	}
	res.Width, res.Height = w, h
	return res, nil
}

// decodeTurbo decodes data at 1/denom, with damaged data refused.
func decodeTurbo(data []byte, denom int) (image.Image, error) {
	img, err := turbojpeg.Decode(data, denom)
	if err := turboVerdict(err); err != nil {
		return nil, err
	}
	return img, nil
}

// turboVerdict turns TurboJPEG's errors into refusals. libjpeg carries on
// past damaged data with a warning, where the standard decoder stops; both
// are refusals here, as they were with the standard decoder, but for the
// stray bytes some cameras leave between segments, which the standard
// decoder skips too.
func turboVerdict(err error) error {
	if err == nil {
		return nil
	}
	var e *turbojpeg.Error
	if !errors.As(err, &e) {
		return fmt.Errorf("error decoding JPEG: %w", err) // no handle: out of memory, worth a retry
	}
	msg := e.Msg
	if i := strings.Index(msg, "(): "); i >= 0 {
		msg = msg[i+4:] // TurboJPEG's own errors name the function
	}
	switch {
	case e.Warning && strings.Contains(msg, "extraneous bytes before marker"):
		return nil
	case strings.Contains(strings.ToLower(msg), "premature end"):
		return errDataEndsEarly()
	}
	return refuse(CodeUndecodable, "the image data is damaged and cannot be decoded (%s).", msg)
}

// planeBytes is what the planes of a w×h image with subsampling s take.
func planeBytes(s turbojpeg.Subsampling, w, h int) int64 {
	n := int64(w) * int64(h)
	r, ok := s.Ratio()
	if !ok {
		return n
	}
	hs, vs := 1, 1
	switch r {
	case image.YCbCrSubsampleRatio422:
		hs = 2
	case image.YCbCrSubsampleRatio420:
		hs, vs = 2, 2
	case image.YCbCrSubsampleRatio440:
		vs = 2
	case image.YCbCrSubsampleRatio411:
		hs = 4
	}
	return n + 2*int64((w+hs-1)/hs)*int64((h+vs-1)/vs)
}

// decodedSize is the size of the image Decode decodes.
func (pl jpegPlan) decodedSize() (int, int) {
	return turbojpeg.Scaled(pl.hdr.Width, pl.denom), turbojpeg.Scaled(pl.hdr.Height, pl.denom)
}

func (p *Prepared) jpegDecodedBytes() (int64, bool) {
	if !p.jp.turbo {
		return 0, false
	}
	w, h := p.jp.decodedSize()
	return planeBytes(p.jp.hdr.Subsampling, w, h), true
}

// jpegMemory is Memory for a JPEG that TurboJPEG decodes: libjpeg's own
// allocations are counted too (C memory, which the Go runtime does not
// see), from what libjpeg-turbo 2.1 allocates: the DCT coefficients of the
// whole image (2 bytes a sample) where it must hold them (a progressive
// file, the source of a transform and the transform's workspace), the
// transformed file, and a full-size decode, turned copy and new encoding
// where the photo cannot be turned losslessly.
func (p *Prepared) jpegMemory() (int64, bool) {
	pl := p.jp
	if !pl.turbo {
		return 0, false
	}
	mw, mh := pl.hdr.Subsampling.MCU()
	coeffs := 2 * planeBytes(pl.hdr.Subsampling, (pl.hdr.Width+mw-1)/mw*mw, (pl.hdr.Height+mh-1)/mh*mh)
	decoded := p.DecodedBytes()
	m := 2*p.hdr.Size + decoded + memorySlack
	if p.lay.progressive {
		m += coeffs
	}
	switch {
	case pl.op == turbojpeg.None:
	case pl.lossless:
		// Source and workspace coefficients, and the new file twice (C's
		// buffer, Go's copy): about the upload's size, a little more with
		// libjpeg's standard Huffman tables.
		m += 2*coeffs + 3*p.hdr.Size
	default:
		// The turned copy, and the new encoding in C and in Go: at
		// quality 92 far smaller than the planes, counted as large.
		m += 3 * decoded
	}
	w, h := pl.decodedSize()
	return m + p.lay.thumbBytes(w, h), true
}

// encodeJPEG encodes with TurboJPEG what it takes (planes, RGBA, grey),
// with the standard encoder the rest.
func encodeJPEG(img image.Image, q int) ([]byte, error) {
	switch m := img.(type) {
	case *image.YCbCr:
		if m.Rect.Min == (image.Point{}) && m.SubsampleRatio != image.YCbCrSubsampleRatio410 && !m.Rect.Empty() {
			return turbojpeg.EncodeYCbCr(m, q)
		}
	case *image.RGBA:
		if !m.Rect.Empty() {
			return turbojpeg.EncodeRGBA(m, q)
		}
	case *image.Gray:
		if !m.Rect.Empty() {
			return turbojpeg.EncodeGray(m, q)
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
