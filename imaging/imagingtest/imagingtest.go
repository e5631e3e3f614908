// Package imagingtest makes test images: realistic-looking photos, photos
// with EXIF orientation and GPS data, and a corpus of bad files that upload
// must refuse. Everything is generated, so tests carry no binary fixtures.
package imagingtest

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
)

// Photo draws a w×h picture that passes the quality checks: a lit gradient,
// a few solid shapes with hard edges, and sensor-like noise. seed varies it.
func Photo(w, h int, seed uint64) *image.RGBA {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	base := [3]float64{60 + rng.Float64()*80, 60 + rng.Float64()*80, 60 + rng.Float64()*80}
	type shape struct {
		x, y, r int
		c       [3]uint8
		round   bool
	}
	var shapes []shape
	for i := 0; i < 4; i++ {
		shapes = append(shapes, shape{
			x: rng.IntN(w), y: rng.IntN(h), r: max(8, min(w, h)/(4+rng.IntN(4))),
			c:     [3]uint8{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256))},
			round: rng.IntN(2) == 0,
		})
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			c := [3]float64{base[0] + 90*fx, base[1] + 70*fy, base[2] + 50*(1-fx)}
			for _, s := range shapes {
				dx, dy := x-s.x, y-s.y
				inside := dx*dx+dy*dy < s.r*s.r
				if !s.round {
					inside = abs(dx) < s.r && abs(dy) < s.r*2/3
				}
				if inside {
					c = [3]float64{float64(s.c[0]), float64(s.c[1]), float64(s.c[2])}
				}
			}
			n := rng.NormFloat64() * 6
			i := img.PixOffset(x, y)
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = clamp(c[0]+n), clamp(c[1]+n), clamp(c[2]+n), 255
		}
	}
	return img
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func clamp(v float64) uint8 {
	switch {
	case v < 0:
		return 0
	case v > 255:
		return 255
	}
	return uint8(v)
}

// JPEG encodes an image at quality 90.
func JPEG(img image.Image) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// PNG encodes an image.
func PNG(img image.Image) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// GPSMarker is a string carried in the GPS data of WithEXIF, so tests can
// check it is gone from what is stored.
const GPSMarker = "SECRET-GPS-48.8584N"

// WithEXIF inserts an EXIF block (orientation and a GPS directory carrying
// GPSMarker) right after a JPEG's start marker.
func WithEXIF(jpg []byte, orientation int) []byte {
	le := binary.LittleEndian
	var t bytes.Buffer
	t.WriteString("II*\x00")
	_ = binary.Write(&t, le, uint32(8)) // IFD0 at 8
	// IFD0: 2 entries (orientation, GPS pointer), next IFD 0.
	_ = binary.Write(&t, le, uint16(2))
	gpsIFD := uint32(8 + 2 + 2*12 + 4)
	writeEntry(&t, 0x0112, 3, 1, uint32(orientation))
	writeEntry(&t, 0x8825, 4, 1, gpsIFD)
	_ = binary.Write(&t, le, uint32(0))
	// GPS IFD: latitude ref and a map datum string holding the marker.
	marker := GPSMarker + "\x00"
	_ = binary.Write(&t, le, uint16(2))
	dataOff := gpsIFD + 2 + 2*12 + 4
	writeEntry(&t, 0x0001, 2, 2, uint32('N'))
	writeEntry(&t, 0x0012, 2, uint32(len(marker)), dataOff)
	_ = binary.Write(&t, le, uint32(0))
	t.WriteString(marker)

	payload := append([]byte("Exif\x00\x00"), t.Bytes()...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	seg = append(seg, payload...)
	out := append([]byte{0xFF, 0xD8}, seg...)
	// A comment segment, which must go too.
	com := []byte("a comment with " + GPSMarker)
	out = append(out, 0xFF, 0xFE, byte((len(com)+2)>>8), byte(len(com)+2))
	out = append(out, com...)
	return append(out, jpg[2:]...)
}

func writeEntry(b *bytes.Buffer, tag, typ uint16, count, value uint32) {
	le := binary.LittleEndian
	_ = binary.Write(b, le, tag)
	_ = binary.Write(b, le, typ)
	_ = binary.Write(b, le, count)
	_ = binary.Write(b, le, value)
}

// PNGWithText adds a tEXt chunk carrying GPSMarker before a PNG's IEND.
func PNGWithText(p []byte) []byte {
	return insertBeforeIEND(p, pngChunk("tEXt", []byte("Comment\x00"+GPSMarker)))
}

func insertBeforeIEND(p, chunk []byte) []byte {
	i := bytes.LastIndex(p, []byte("IEND")) - 4
	out := append([]byte(nil), p[:i]...)
	out = append(out, chunk...)
	return append(out, p[i:]...)
}

func pngChunk(typ string, data []byte) []byte {
	out := make([]byte, 8, 12+len(data))
	binary.BigEndian.PutUint32(out, uint32(len(data)))
	copy(out[4:], typ)
	out = append(out, data...)
	crc := crc32.ChecksumIEEE(append([]byte(typ), data...))
	return binary.BigEndian.AppendUint32(out, crc)
}

// BadFile is a file upload must refuse, and the refusal code expected.
type BadFile struct {
	Name     string
	Data     []byte
	WantCode string
}

// BadFiles is the corpus of files upload refuses.
func BadFiles() []BadFile {
	rng := rand.New(rand.NewPCG(7, 7))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return b
	}
	photo := JPEG(Photo(640, 480, 1))
	pngPhoto := PNG(Photo(320, 240, 2))

	// A PNG whose header claims 100000 × 100000 pixels, with a valid CRC.
	bombPNG := append([]byte("\x89PNG\r\n\x1a\n"), pngChunk("IHDR", ihdr(100000, 100000))...)
	bombPNG = append(bombPNG, pngChunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})...)
	bombPNG = append(bombPNG, pngChunk("IEND", nil)...)

	// A real JPEG whose frame header is patched to claim 65000 × 65000.
	bombJPEG := append([]byte(nil), photo...)
	sof := bytes.Index(bombJPEG, []byte{0xFF, 0xC0})
	binary.BigEndian.PutUint16(bombJPEG[sof+5:], 65000)
	binary.BigEndian.PutUint16(bombJPEG[sof+7:], 65000)

	zeroWidth := append([]byte("\x89PNG\r\n\x1a\n"), pngChunk("IHDR", ihdr(0, 100))...)
	zeroWidth = append(zeroWidth, pngChunk("IEND", nil)...)
	badCRC := append([]byte(nil), pngPhoto...)
	badCRC[29] ^= 0xFF // inside the IHDR CRC

	var zipBuf bytes.Buffer
	zw := zip.NewWriter(&zipBuf)
	f, _ := zw.Create("photo.jpg")
	_, _ = f.Write(photo)
	_ = zw.Close()
	var gzBuf bytes.Buffer
	gz := gzip.NewWriter(&gzBuf)
	_, _ = gz.Write(photo)
	_ = gz.Close()

	brokenWebP := []byte("RIFF\xff\xff\x00\x00WEBPVP8 \x10\x00\x00\x00garbage-garbage!")

	return []BadFile{
		{"empty.jpg", nil, "empty"},
		{"one-byte.jpg", []byte{0xFF}, "unsupported_type"},
		{"random.jpg", random(4096), "unsupported_type"},
		{"text.png", []byte("just some words, not a picture\n"), "unsupported_type"},
		{"truncated-half.jpg", photo[:len(photo)/2], "truncated"},
		{"truncated-2k.jpg", photo[:2048], "truncated"},
		{"truncated-header.jpg", photo[:100], "truncated"},
		{"truncated-half.png", pngPhoto[:len(pngPhoto)/2], "truncated"},
		{"truncated-header.png", pngPhoto[:20], "truncated"},
		{"bomb-100000x100000.png", bombPNG, "too_many_pixels"},
		{"bomb-65000x65000.jpg", bombJPEG, "too_many_pixels"},
		{"animation.gif", []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"), "unsupported_type"},
		{"scan-le.tif", append([]byte("II*\x00\x08\x00\x00\x00"), random(64)...), "unsupported_type"},
		{"scan-be.tiff", append([]byte("MM\x00*\x00\x00\x00\x08"), random(64)...), "unsupported_type"},
		{"paint.bmp", append([]byte("BM"), random(64)...), "unsupported_type"},
		{"evil.svg", []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`), "unsupported_type"},
		{"page.jpg", []byte("<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"), "unsupported_type"},
		{"doc.pdf", []byte("%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n"), "unsupported_type"},
		{"photos.zip", zipBuf.Bytes(), "unsupported_type"},
		{"photo.jpg.gz", gzBuf.Bytes(), "unsupported_type"},
		{"program.jpg", append([]byte("\x7fELF\x02\x01\x01"), random(200)...), "unsupported_type"},
		{"phone.heic", append([]byte("\x00\x00\x00\x18ftypheic"), random(100)...), "unsupported_type"},
		{"jpeg-magic-garbage.jpg", append([]byte{0xFF, 0xD8, 0xFF}, random(3000)...), "undecodable"},
		{"broken.webp", brokenWebP, "undecodable"},
		{"zero-width.png", zeroWidth, "undecodable"},
		{"bad-ihdr-crc.png", badCRC, "undecodable"},
		{"tiny-10x10.png", PNG(Photo(10, 10, 3)), "too_small"},
		{"thin-1000x50.jpg", JPEG(Photo(1000, 50, 4)), "too_small"},
		{"data.xml", []byte(`<?xml version="1.0"?><root/>`), "unsupported_type"},
	}
}

func ihdr(w, h uint32) []byte {
	b := make([]byte, 13)
	binary.BigEndian.PutUint32(b, w)
	binary.BigEndian.PutUint32(b[4:], h)
	b[8], b[9] = 8, 2 // 8-bit RGB
	return b
}

// Solid is a w×h image of one colour (a flat, blurry-looking photo).
func Solid(w, h int, c color.RGBA) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, 255
	}
	return img
}
