package imaging

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/draw"
)

// Orient returns img turned upright for an EXIF orientation value (1–8);
// other values return img as it is. The common pixel layouts keep their type
// (a 16-bit or paletted PNG stays exact, a JPEG's YCbCr planes are moved
// without conversion to RGB); other images come back as *image.RGBA.
func Orient(img image.Image, orientation int) image.Image {
	if orientation < 2 || orientation > 8 {
		return img
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	dr := image.Rect(0, 0, w, h)
	if orientation >= 5 {
		dr = image.Rect(0, 0, h, w)
	}
	switch src := img.(type) {
	case *image.RGBA:
		dst := image.NewRGBA(dr)
		orientPix(dst.Pix, dst.Stride, src.Pix[src.PixOffset(b.Min.X, b.Min.Y):], src.Stride, w, h, 4, orientation)
		return dst
	case *image.NRGBA:
		dst := image.NewNRGBA(dr)
		orientPix(dst.Pix, dst.Stride, src.Pix[src.PixOffset(b.Min.X, b.Min.Y):], src.Stride, w, h, 4, orientation)
		return dst
	case *image.RGBA64:
		dst := image.NewRGBA64(dr)
		orientPix(dst.Pix, dst.Stride, src.Pix[src.PixOffset(b.Min.X, b.Min.Y):], src.Stride, w, h, 8, orientation)
		return dst
	case *image.NRGBA64:
		dst := image.NewNRGBA64(dr)
		orientPix(dst.Pix, dst.Stride, src.Pix[src.PixOffset(b.Min.X, b.Min.Y):], src.Stride, w, h, 8, orientation)
		return dst
	case *image.Gray:
		dst := image.NewGray(dr)
		orientPix(dst.Pix, dst.Stride, src.Pix[src.PixOffset(b.Min.X, b.Min.Y):], src.Stride, w, h, 1, orientation)
		return dst
	case *image.Gray16:
		dst := image.NewGray16(dr)
		orientPix(dst.Pix, dst.Stride, src.Pix[src.PixOffset(b.Min.X, b.Min.Y):], src.Stride, w, h, 2, orientation)
		return dst
	case *image.CMYK:
		dst := image.NewCMYK(dr)
		orientPix(dst.Pix, dst.Stride, src.Pix[src.PixOffset(b.Min.X, b.Min.Y):], src.Stride, w, h, 4, orientation)
		return dst
	case *image.Paletted:
		dst := image.NewPaletted(dr, src.Palette)
		orientPix(dst.Pix, dst.Stride, src.Pix[src.PixOffset(b.Min.X, b.Min.Y):], src.Stride, w, h, 1, orientation)
		return dst
	case *image.YCbCr:
		if dst := orientYCbCr(src, orientation); dst != nil {
			return dst
		}
	}
	rgba := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(rgba, rgba.Bounds(), img, b.Min, draw.Src)
	dst := image.NewRGBA(dr)
	orientPix(dst.Pix, dst.Stride, rgba.Pix, rgba.Stride, w, h, 4, orientation)
	return dst
}

// orientYCbCr moves the three planes of a YCbCr image, which spares the
// conversion to RGB and back when a rotated JPEG is re-encoded. Turning a
// 4:2:2 image by a quarter makes it 4:4:0 and the reverse. With an odd width
// or height a mirrored chroma plane lands half a chroma sample off, which
// nobody can see. Nil for the rare 4:1:1 and 4:1:0 layouts.
func orientYCbCr(src *image.YCbCr, o int) *image.YCbCr {
	ratio := src.SubsampleRatio
	switch ratio {
	case image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio420:
	case image.YCbCrSubsampleRatio422:
		if o >= 5 {
			ratio = image.YCbCrSubsampleRatio440
		}
	case image.YCbCrSubsampleRatio440:
		if o >= 5 {
			ratio = image.YCbCrSubsampleRatio422
		}
	default:
		return nil
	}
	b := src.Rect
	w, h := b.Dx(), b.Dy()
	dr := image.Rect(0, 0, w, h)
	if o >= 5 {
		dr = image.Rect(0, 0, h, w)
	}
	dst := image.NewYCbCr(dr, ratio)
	orientPix(dst.Y, dst.YStride, src.Y[src.YOffset(b.Min.X, b.Min.Y):], src.YStride, w, h, 1, o)
	// The chroma planes of src, from its top-left sample.
	c0 := src.COffset(b.Min.X, b.Min.Y)
	cw, ch := src.COffset(b.Max.X-1, b.Min.Y)-c0+1, (src.COffset(b.Min.X, b.Max.Y-1)-c0)/src.CStride+1
	orientPix(dst.Cb, dst.CStride, src.Cb[c0:], src.CStride, cw, ch, 1, o)
	orientPix(dst.Cr, dst.CStride, src.Cr[c0:], src.CStride, cw, ch, 1, o)
	return dst
}

// orientPix copies a w×h block of bpp-byte pixels from src to dst turned by
// orientation o. It works in tiles so that the transposing orientations,
// which write down columns, stay within the cache.
func orientPix(dst []byte, dstStride int, src []byte, srcStride, w, h, bpp, o int) {
	// dst offset of source pixel (x, y) = base + x*dx + y*dy.
	var base, dx, dy int
	switch o {
	case 2: // mirrored left to right
		base, dx, dy = (w-1)*bpp, -bpp, dstStride
	case 3: // turned 180°
		base, dx, dy = (h-1)*dstStride+(w-1)*bpp, -bpp, -dstStride
	case 4: // mirrored top to bottom
		base, dx, dy = (h-1)*dstStride, bpp, -dstStride
	case 5: // transposed
		base, dx, dy = 0, dstStride, bpp
	case 6: // stored turned 90° anticlockwise: turn clockwise
		base, dx, dy = (h-1)*bpp, dstStride, -bpp
	case 7: // transversed
		base, dx, dy = (w-1)*dstStride+(h-1)*bpp, -dstStride, -bpp
	case 8: // stored turned 90° clockwise: turn anticlockwise
		base, dx, dy = (w-1)*dstStride, -dstStride, bpp
	default:
		for y := 0; y < h; y++ {
			copy(dst[y*dstStride:y*dstStride+w*bpp], src[y*srcStride:])
		}
		return
	}
	const tile = 64
	for ty := 0; ty < h; ty += tile {
		for tx := 0; tx < w; tx += tile {
			for y := ty; y < min(ty+tile, h); y++ {
				s := y*srcStride + tx*bpp
				d := base + y*dy + tx*dx
				switch n := min(tx+tile, w) - tx; bpp {
				case 1:
					for range n {
						dst[d] = src[s]
						s++
						d += dx
					}
				case 4:
					for range n {
						copy(dst[d:d+4:d+4], src[s:s+4:s+4])
						s += 4
						d += dx
					}
				default:
					for range n {
						copy(dst[d:d+bpp], src[s:s+bpp])
						s += bpp
						d += dx
					}
				}
			}
		}
	}
}

// exifOrientation returns the orientation (1–8) that an EXIF block gives,
// or 1 when it gives none or a broken one. exif is the TIFF structure that
// EXIF is, with or without the "Exif\0\0" that JPEG puts in front.
func exifOrientation(exif []byte) int {
	t := bytes.TrimPrefix(exif, []byte("Exif\x00\x00"))
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:4]) {
	case "II*\x00":
		bo = binary.LittleEndian
	case "MM\x00*":
		bo = binary.BigEndian
	default:
		return 1
	}
	off := uint64(bo.Uint32(t[4:])) // IFD0
	if off < 8 || off+2 > uint64(len(t)) {
		return 1
	}
	n := int(bo.Uint16(t[off:]))
	for k := range n {
		e := int(off) + 2 + 12*k
		if e+12 > len(t) {
			break
		}
		if bo.Uint16(t[e:]) != 0x0112 {
			continue
		}
		var v uint32
		switch bo.Uint16(t[e+2:]) {
		case 3: // SHORT, as the standard says
			v = uint32(bo.Uint16(t[e+8:]))
		case 4: // LONG, as some writers do
			v = bo.Uint32(t[e+8:])
		}
		if v >= 1 && v <= 8 {
			return int(v)
		}
		return 1
	}
	return 1
}
