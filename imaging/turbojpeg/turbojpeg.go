//go:build cgo && !nojpegturbo

package turbojpeg

/*
#cgo LDFLAGS: -lturbojpeg
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

// The plane arrays live here, on the C stack, so that Go passes only plain
// pointers to pixel memory (cgo forbids Go memory holding Go pointers).
static int decode_planes(tjhandle h, const unsigned char *buf, unsigned long size,
		unsigned char *y, unsigned char *cb, unsigned char *cr,
		int w, int ystride, int cstride, int hgt, int flags) {
	unsigned char *planes[3] = { y, cb, cr };
	int strides[3] = { ystride, cstride, cstride };
	return tjDecompressToYUVPlanes(h, buf, size, planes, w, strides, hgt, flags);
}

static int encode_planes(tjhandle h, const unsigned char *y, const unsigned char *cb, const unsigned char *cr,
		int w, int ystride, int cstride, int hgt, int subsamp,
		unsigned char **out, unsigned long *out_size, int quality, int flags) {
	const unsigned char *planes[3] = { y, cb, cr };
	int strides[3] = { ystride, cstride, cstride };
	*out = NULL;
	*out_size = 0;
	return tjCompressFromYUVPlanes(h, planes, w, strides, hgt, subsamp, out, out_size, quality, flags);
}

static int encode_pixels(tjhandle h, const unsigned char *pix, int w, int stride, int hgt, int format, int subsamp,
		unsigned char **out, unsigned long *out_size, int quality, int flags) {
	*out = NULL;
	*out_size = 0;
	return tjCompress2(h, pix, w, stride, hgt, format, out, out_size, subsamp, quality, flags);
}

static int transform(tjhandle h, const unsigned char *buf, unsigned long size, int op,
		unsigned char **out, unsigned long *out_size, int flags) {
	tjtransform t;
	memset(&t, 0, sizeof t);
	t.op = op;
	t.options = TJXOPT_PERFECT;
	*out = NULL;
	*out_size = 0;
	return tjTransform(h, buf, size, 1, out, out_size, &t, flags);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"image"
	"unsafe"
)

// Available is true: this build decodes JPEGs with TurboJPEG.
const Available = true

// readFlags are passed to every call that reads a JPEG: a progressive file
// with an absurd number of scans (a known way to make a small file cost
// minutes of CPU) is an error rather than work.
const readFlags = C.TJFLAG_LIMITSCANS

// Subsampling is a JPEG's chroma subsampling, as TurboJPEG classifies it.
type Subsampling int

// The subsamplings TurboJPEG knows.
const (
	S444 Subsampling = C.TJSAMP_444
	S422 Subsampling = C.TJSAMP_422
	S420 Subsampling = C.TJSAMP_420
	Gray Subsampling = C.TJSAMP_GRAY
	S440 Subsampling = C.TJSAMP_440
	S411 Subsampling = C.TJSAMP_411
)

// mcu is the size of a minimum coded unit, in pixels, for each
// subsampling (tjMCUWidth, tjMCUHeight).
var mcu = [...][2]int{S444: {8, 8}, S422: {16, 8}, S420: {16, 16}, Gray: {8, 8}, S440: {8, 16}, S411: {32, 8}}

// MCU is the width and height of the blocks the image is coded in.
func (s Subsampling) MCU() (w, h int) { return mcu[s][0], mcu[s][1] }

// Ratio is the image package's name for s; ok is false for Gray.
func (s Subsampling) Ratio() (r image.YCbCrSubsampleRatio, ok bool) {
	switch s {
	case S444:
		return image.YCbCrSubsampleRatio444, true
	case S422:
		return image.YCbCrSubsampleRatio422, true
	case S420:
		return image.YCbCrSubsampleRatio420, true
	case S440:
		return image.YCbCrSubsampleRatio440, true
	case S411:
		return image.YCbCrSubsampleRatio411, true
	}
	return 0, false
}

func subsamplingOf(r image.YCbCrSubsampleRatio) (Subsampling, bool) {
	for s := range Subsampling(len(mcu)) {
		if q, ok := s.Ratio(); ok && q == r {
			return s, true
		}
	}
	return 0, false
}

// Colorspace is the colour space of a JPEG's components.
type Colorspace int

// The colour spaces TurboJPEG knows.
const (
	RGB   Colorspace = C.TJCS_RGB
	YCbCr Colorspace = C.TJCS_YCbCr
	Grey  Colorspace = C.TJCS_GRAY
	CMYK  Colorspace = C.TJCS_CMYK
	YCCK  Colorspace = C.TJCS_YCCK
)

// Header is what a JPEG's header says.
type Header struct {
	Width, Height int
	Subsampling   Subsampling
	Colorspace    Colorspace
}

// Error is an error TurboJPEG reported. A Warning is libjpeg's word for
// damaged data it carried on past (a bad Huffman code, data ending early):
// the output is complete, but parts of it may be garbage.
type Error struct {
	Op      string
	Msg     string
	Warning bool
}

func (e *Error) Error() string {
	if e.Warning {
		return "turbojpeg: " + e.Op + ": warning: " + e.Msg
	}
	return "turbojpeg: " + e.Op + ": " + e.Msg
}

// errorOf returns the last error of handle h.
func errorOf(h C.tjhandle, op string) *Error {
	return &Error{Op: op, Msg: C.GoString(C.tjGetErrorStr2(h)), Warning: C.tjGetErrorCode(h) == C.TJERR_WARNING}
}

var errNoHandle = errors.New("turbojpeg: no handle (out of memory)")

// cbuf is a pointer to the first byte of b, which must not be empty.
func cbuf(b []byte) *C.uchar { return (*C.uchar)(unsafe.Pointer(&b[0])) }

// ReadHeader reads the header of the JPEG in data.
func ReadHeader(data []byte) (Header, error) {
	if len(data) == 0 {
		return Header{}, &Error{Op: "header", Msg: "no data"}
	}
	h := C.tjInitDecompress()
	if h == nil {
		return Header{}, errNoHandle
	}
	defer C.tjDestroy(h)
	return readHeader(h, data)
}

func readHeader(h C.tjhandle, data []byte) (Header, error) {
	var w, ht, ss, cs C.int
	if C.tjDecompressHeader3(h, cbuf(data), C.ulong(len(data)), &w, &ht, &ss, &cs) != 0 {
		return Header{}, errorOf(h, "header")
	}
	if ss < 0 || int(ss) >= len(mcu) {
		return Header{}, &Error{Op: "header", Msg: fmt.Sprintf("unknown subsampling %d", ss)}
	}
	return Header{Width: int(w), Height: int(ht), Subsampling: Subsampling(ss), Colorspace: Colorspace(cs)}, nil
}

// Scaled is the size n pixels take decoded at 1/denom, as libjpeg rounds
// it: up.
func Scaled(n, denom int) int { return (n + denom - 1) / denom }

// Decode decodes the JPEG in data at 1/denom of its size (denom 1, 2, 4
// or 8; libjpeg's scaled inverse DCT does the reduction) to its planes, as
// they are coded: an *image.YCbCr with the file's subsampling, or an
// *image.Gray for a greyscale JPEG. Other colour spaces (RGB, CMYK, YCCK)
// are an error. On a warning it returns the image and the *Error both.
func Decode(data []byte, denom int) (image.Image, error) {
	switch denom {
	case 1, 2, 4, 8:
	default:
		return nil, fmt.Errorf("turbojpeg: cannot decode at 1/%d", denom)
	}
	if len(data) == 0 {
		return nil, &Error{Op: "decode", Msg: "no data"}
	}
	h := C.tjInitDecompress()
	if h == nil {
		return nil, errNoHandle
	}
	defer C.tjDestroy(h)
	hdr, err := readHeader(h, data)
	if err != nil {
		return nil, err
	}
	w, ht := Scaled(hdr.Width, denom), Scaled(hdr.Height, denom)
	r := image.Rect(0, 0, w, ht)
	var img image.Image
	var rc C.int
	switch {
	case hdr.Colorspace == Grey && hdr.Subsampling == Gray:
		g := image.NewGray(r)
		rc = C.decode_planes(h, cbuf(data), C.ulong(len(data)), cbuf(g.Pix), nil, nil,
			C.int(w), C.int(g.Stride), 0, C.int(ht), readFlags)
		img = g
	case hdr.Colorspace == YCbCr:
		ratio, ok := hdr.Subsampling.Ratio()
		if !ok {
			return nil, &Error{Op: "decode", Msg: "a YCbCr image without chroma"}
		}
		y := newPlanes(r, ratio, hdr.Subsampling)
		rc = C.decode_planes(h, cbuf(data), C.ulong(len(data)), cbuf(y.Y), cbuf(y.Cb), cbuf(y.Cr),
			C.int(w), C.int(y.YStride), C.int(y.CStride), C.int(ht), readFlags)
		img = y
	default:
		return nil, &Error{Op: "decode", Msg: fmt.Sprintf("colour space %d is not YCbCr or grey", hdr.Colorspace)}
	}
	if rc != 0 {
		e := errorOf(h, "decode")
		if !e.Warning {
			return nil, e
		}
		return img, e
	}
	return img, nil
}

// Op is a lossless transform.
type Op int

// The transforms (TJXOP_*).
const (
	None       Op = C.TJXOP_NONE
	HFlip      Op = C.TJXOP_HFLIP
	VFlip      Op = C.TJXOP_VFLIP
	Transpose  Op = C.TJXOP_TRANSPOSE
	Transverse Op = C.TJXOP_TRANSVERSE
	Rot90      Op = C.TJXOP_ROT90 // clockwise
	Rot180     Op = C.TJXOP_ROT180
	Rot270     Op = C.TJXOP_ROT270
)

// Perfect says whether op can turn an image with header h without losing
// its edge: a transform moves whole MCUs, so the partial ones at the right
// or bottom edge must stay where they are (libjpeg's
// jtransform_perfect_transform).
func Perfect(h Header, op Op) bool {
	mw, mh := h.Subsampling.MCU()
	wOK, hOK := h.Width%mw == 0, h.Height%mh == 0
	switch op {
	case HFlip, Rot270:
		return wOK
	case VFlip, Rot90:
		return hOK
	case Transverse, Rot180:
		return wOK && hOK
	}
	return true
}

// Transform turns or mirrors the JPEG in data without decoding its pixels:
// the DCT coefficients are moved, so the result decodes to exactly the
// turned pixels. It fails where op is not Perfect. Markers (the ICC
// profile, and whatever else data has) are copied. On a warning it returns
// the new file and the *Error both.
func Transform(data []byte, op Op) ([]byte, error) {
	if len(data) == 0 {
		return nil, &Error{Op: "transform", Msg: "no data"}
	}
	h := C.tjInitTransform()
	if h == nil {
		return nil, errNoHandle
	}
	defer C.tjDestroy(h)
	var out *C.uchar
	var n C.ulong
	rc := C.transform(h, cbuf(data), C.ulong(len(data)), C.int(op), &out, &n, readFlags)
	return result(h, "transform", rc, out, n)
}

// result copies a TurboJPEG output buffer into Go memory and frees it.
func result(h C.tjhandle, op string, rc C.int, out *C.uchar, n C.ulong) ([]byte, error) {
	if out != nil {
		defer C.tjFree(out)
	}
	var e *Error
	if rc != 0 {
		if e = errorOf(h, op); !e.Warning {
			return nil, e
		}
	}
	if out == nil || n == 0 {
		return nil, &Error{Op: op, Msg: "no output"}
	}
	b := C.GoBytes(unsafe.Pointer(out), C.int(n))
	if e != nil {
		return b, e
	}
	return b, nil
}

// newPlanes allocates YCbCr planes for r with the sizes TurboJPEG reads and
// writes: each plane's width and height padded to whole MCUs of its
// component (tjPlaneWidth, tjPlaneHeight). image.NewYCbCr's luma plane is
// exactly r wide, so for a 4:2:0 or 4:2:2 image of odd width TurboJPEG
// would write (and read) a byte past each row: across the next row, and
// past the end of the last.
func newPlanes(r image.Rectangle, ratio image.YCbCrSubsampleRatio, ss Subsampling) *image.YCbCr {
	w, h := C.int(r.Dx()), C.int(r.Dy())
	yw, yh := int(C.tjPlaneWidth(0, w, C.int(ss))), int(C.tjPlaneHeight(0, h, C.int(ss)))
	cw, ch := int(C.tjPlaneWidth(1, w, C.int(ss))), int(C.tjPlaneHeight(1, h, C.int(ss)))
	buf := make([]byte, yw*yh+2*cw*ch)
	return &image.YCbCr{
		Y: buf[: yw*yh : yw*yh], Cb: buf[yw*yh : yw*yh+cw*ch : yw*yh+cw*ch], Cr: buf[yw*yh+cw*ch:],
		YStride: yw, CStride: cw, SubsampleRatio: ratio, Rect: r,
	}
}

// padded returns img itself when its planes are as large as TurboJPEG
// reads them, else a copy into planes that are, the padding repeating the
// last column and row (what the encoder would pad an MCU with).
func padded(img *image.YCbCr, ss Subsampling) *image.YCbCr {
	p := newPlanes(img.Rect, img.SubsampleRatio, ss)
	if img.YStride >= p.YStride && img.CStride >= p.CStride &&
		len(img.Y) >= (len(p.Y)/p.YStride-1)*img.YStride+p.YStride &&
		len(img.Cb) >= (len(p.Cb)/p.CStride-1)*img.CStride+p.CStride &&
		len(img.Cr) >= (len(p.Cr)/p.CStride-1)*img.CStride+p.CStride {
		return img
	}
	copyPlane(p.Y, p.YStride, img.Y, img.YStride, img.Rect.Dx(), img.Rect.Dy())
	cw, ch := chromaSize(img)
	copyPlane(p.Cb, p.CStride, img.Cb, img.CStride, cw, ch)
	copyPlane(p.Cr, p.CStride, img.Cr, img.CStride, cw, ch)
	return p
}

// chromaSize is how many chroma samples img holds across and down.
func chromaSize(img *image.YCbCr) (int, int) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	switch img.SubsampleRatio {
	case image.YCbCrSubsampleRatio422:
		return (w + 1) / 2, h
	case image.YCbCrSubsampleRatio420:
		return (w + 1) / 2, (h + 1) / 2
	case image.YCbCrSubsampleRatio440:
		return w, (h + 1) / 2
	case image.YCbCrSubsampleRatio411:
		return (w + 3) / 4, h
	}
	return w, h
}

// copyPlane copies w×h samples from src into dst, whose rows are dstStride
// long and whose height is len(dst)/dstStride, repeating the last sample of
// each row and the last row into the padding.
func copyPlane(dst []byte, dstStride int, src []byte, srcStride, w, h int) {
	rows := len(dst) / dstStride
	for y := range rows {
		sy := min(y, h-1)
		row := dst[y*dstStride : (y+1)*dstStride]
		n := copy(row[:w], src[sy*srcStride:sy*srcStride+w])
		for x := n; x < dstStride; x++ {
			row[x] = row[n-1]
		}
	}
}

// EncodeYCbCr encodes the planes of img, with its own subsampling, at
// quality q (1–100). img must start at (0, 0) and have a subsampling
// TurboJPEG knows (not 4:1:0).
func EncodeYCbCr(img *image.YCbCr, q int) ([]byte, error) {
	ss, ok := subsamplingOf(img.SubsampleRatio)
	if !ok || img.Rect.Min != (image.Point{}) || img.Rect.Empty() {
		return nil, &Error{Op: "encode", Msg: fmt.Sprintf("cannot encode %v planes at %v", img.SubsampleRatio, img.Rect)}
	}
	img = padded(img, ss)
	h := C.tjInitCompress()
	if h == nil {
		return nil, errNoHandle
	}
	defer C.tjDestroy(h)
	var out *C.uchar
	var n C.ulong
	rc := C.encode_planes(h, cbuf(img.Y), cbuf(img.Cb), cbuf(img.Cr), C.int(img.Rect.Dx()), C.int(img.YStride), C.int(img.CStride),
		C.int(img.Rect.Dy()), C.int(ss), &out, &n, C.int(q), 0)
	return result(h, "encode", rc, out, n)
}

// EncodeRGBA encodes img as a 4:2:0 JPEG at quality q, ignoring alpha (as
// image/jpeg does).
func EncodeRGBA(img *image.RGBA, q int) ([]byte, error) {
	return encodePixels(img.Pix[img.PixOffset(img.Rect.Min.X, img.Rect.Min.Y):], img.Rect, img.Stride, C.TJPF_RGBX, S420, q)
}

// EncodeGray encodes img as a greyscale JPEG at quality q.
func EncodeGray(img *image.Gray, q int) ([]byte, error) {
	return encodePixels(img.Pix[img.PixOffset(img.Rect.Min.X, img.Rect.Min.Y):], img.Rect, img.Stride, C.TJPF_GRAY, Gray, q)
}

func encodePixels(pix []byte, r image.Rectangle, stride int, format C.int, ss Subsampling, q int) ([]byte, error) {
	if r.Empty() {
		return nil, &Error{Op: "encode", Msg: "an empty image"}
	}
	h := C.tjInitCompress()
	if h == nil {
		return nil, errNoHandle
	}
	defer C.tjDestroy(h)
	var out *C.uchar
	var n C.ulong
	rc := C.encode_pixels(h, cbuf(pix), C.int(r.Dx()), C.int(stride), C.int(r.Dy()), format, C.int(ss), &out, &n, C.int(q), 0)
	return result(h, "encode", rc, out, n)
}
