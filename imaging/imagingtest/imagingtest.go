// Package imagingtest makes test images: realistic-looking photos, photos
// carrying EXIF orientation, GPS data and other metadata in JPEG, PNG and
// WebP, and a corpus of bad files that upload must refuse. Everything is
// generated, so tests carry no binary fixtures.
package imagingtest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
)

// Photo draws a w×h picture that passes the quality checks: light falling
// across it from a direction that depends on seed, a handful of solid
// shapes with hard edges, fine texture, and sensor-like noise. Different
// seeds give pictures whose perceptual hashes are far apart.
func Photo(w, h int, seed uint64) *image.RGBA {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	base := [3]float64{50 + rng.Float64()*90, 50 + rng.Float64()*90, 50 + rng.Float64()*90}
	angle := rng.Float64() * 2 * math.Pi
	lx, ly := math.Cos(angle), math.Sin(angle)
	type shape struct {
		x, y, rx, ry int
		c            [3]float64
		round        bool
	}
	shapes := make([]shape, 4+rng.IntN(4))
	for i := range shapes {
		r := max(8, min(w, h)/(3+rng.IntN(5)))
		shapes[i] = shape{
			x: rng.IntN(w), y: rng.IntN(h), rx: r, ry: r * (2 + rng.IntN(4)) / 4,
			c:     [3]float64{float64(rng.IntN(256)), float64(rng.IntN(256)), float64(rng.IntN(256))},
			round: rng.IntN(2) == 0,
		}
	}
	// Texture: a few stripes of a frequency that depends on the size, so a
	// downscaled photo keeps edges.
	tf := 2 * math.Pi / float64(max(4, min(w, h)/40))
	for y := range h {
		for x := range w {
			fx, fy := float64(x)/float64(w)-0.5, float64(y)/float64(h)-0.5
			light := 1 + 0.9*(fx*lx+fy*ly)
			c := [3]float64{base[0] * light, base[1] * light, base[2] * light}
			for _, s := range shapes {
				dx, dy := x-s.x, y-s.y
				var inside bool
				if s.round {
					inside = float64(dx*dx)/float64(s.rx*s.rx)+float64(dy*dy)/float64(s.ry*s.ry) < 1
				} else {
					inside = abs(dx) < s.rx && abs(dy) < s.ry
				}
				if inside {
					t := 1 + 0.15*math.Sin(float64(x+2*y)*tf)
					c = [3]float64{s.c[0] * t, s.c[1] * t, s.c[2] * t}
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
	return uint8(v + 0.5)
}

// Solid is a w×h image of one colour (a flat, blurry-looking photo).
func Solid(w, h int, c color.RGBA) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, 255
	}
	return img
}

// File is a named test file.
type File struct {
	Name string
	Data []byte
}

// GoodPhotos returns n distinct 1024×768 JPEG photos (quality 90, about
// 200 KB each) that pass every check.
func GoodPhotos(n int) []File {
	out := make([]File, n)
	for i := range out {
		out[i] = File{fmt.Sprintf("photo-%03d.jpg", i), JPEG(Photo(1024, 768, uint64(1000+i)))}
	}
	return out
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
	// zlib's fastest level: the default level costs seconds per photo
	// under -race, and no test depends on how well a PNG compresses.
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// GPSMarker is a string carried in the GPS data, XMP, comments and text
// chunks that the With… helpers add, so tests can check it is gone from
// what is stored.
const GPSMarker = "SECRET-GPS-48.8584N"

// EXIF builds an EXIF block as it appears in a file: "Exif\0\0", then a
// little-endian TIFF structure whose first directory holds the orientation,
// a camera make and a pointer to a GPS directory with latitude, longitude
// and a map datum carrying GPSMarker.
func EXIF(orientation int) []byte {
	le := binary.LittleEndian
	type entry struct {
		tag, typ uint16
		count    uint32
		value    []byte // inline when 4 bytes or less, else stored after the directory
	}
	rational := func(vs ...uint32) []byte {
		var b []byte
		for _, v := range vs {
			b = le.AppendUint32(b, v)
			b = le.AppendUint32(b, 1)
		}
		return b
	}
	short := func(v uint16) []byte { return le.AppendUint16(nil, v) }
	long := func(v uint32) []byte { return le.AppendUint32(nil, v) }
	ascii := func(s string) []byte { return append([]byte(s), 0) }

	// Directories are laid out one after the other from offset 8, each
	// followed by its out-of-line values.
	var t []byte
	t = append(t, "II*\x00"...)
	t = le.AppendUint32(t, 8)
	dir := func(entries []entry) {
		start := uint32(len(t))
		size := uint32(2 + 12*len(entries) + 4)
		extra := start + size
		var data []byte
		t = le.AppendUint16(t, uint16(len(entries)))
		for _, e := range entries {
			t = le.AppendUint16(t, e.tag)
			t = le.AppendUint16(t, e.typ)
			t = le.AppendUint32(t, e.count)
			if len(e.value) <= 4 {
				v := make([]byte, 4)
				copy(v, e.value)
				t = append(t, v...)
				continue
			}
			t = le.AppendUint32(t, extra+uint32(len(data)))
			data = append(data, e.value...)
			if len(data)%2 == 1 {
				data = append(data, 0)
			}
		}
		t = le.AppendUint32(t, 0) // no next directory
		t = append(t, data...)
	}
	gps := []entry{
		{0x0001, 2, 2, ascii("N")},
		{0x0002, 5, 3, rational(48, 51, 30)},
		{0x0003, 2, 2, ascii("E")},
		{0x0004, 5, 3, rational(2, 17, 40)},
		{0x0012, 2, uint32(len(GPSMarker) + 1), ascii(GPSMarker)},
	}
	camMake := ascii("TestCam")
	// IFD0's size is known in advance, so the GPS directory's offset is too.
	ifd0Len := uint32(2 + 12*3 + 4 + len(camMake) + len(camMake)%2)
	dir([]entry{
		{0x010F, 2, uint32(len(camMake)), camMake},
		{0x0112, 3, 1, short(uint16(orientation))},
		{0x8825, 4, 1, long(8 + ifd0Len)},
	})
	dir(gps)
	return append([]byte("Exif\x00\x00"), t...)
}

func xmp() []byte {
	return []byte("<?xpacket begin=\"\ufeff\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>" + `<x:xmpmeta xmlns:x="adobe:ns:meta/">` +
		`<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" ` +
		`exif:GPSLatitude="` + GPSMarker + `"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>`)
}

// jpegSegment frames a JPEG marker segment.
func jpegSegment(marker byte, payload []byte) []byte {
	seg := []byte{0xFF, marker, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	return append(seg, payload...)
}

// WithEXIF puts metadata into a JPEG right after its start marker: an EXIF
// block (EXIF), an XMP packet and a comment, all carrying GPSMarker, and
// appends bytes after the end-of-image marker as phones do for motion
// photos, carrying it too.
func WithEXIF(jpg []byte, orientation int) []byte {
	out := []byte{0xFF, 0xD8}
	out = append(out, jpegSegment(0xE1, EXIF(orientation))...)
	out = append(out, jpegSegment(0xE1, append([]byte("http://ns.adobe.com/xap/1.0/\x00"), xmp()...))...)
	out = append(out, jpegSegment(0xFE, []byte("a comment with "+GPSMarker))...)
	out = append(out, jpg[2:]...)
	return append(out, "trailer: "+GPSMarker...)
}

// WithICC adds an ICC profile segment (a fake profile, which decoders do not
// read) right after a JPEG's start marker, for tests that check it is kept.
func WithICC(jpg []byte) []byte {
	out := []byte{0xFF, 0xD8}
	out = append(out, jpegSegment(0xE2, append([]byte("ICC_PROFILE\x00\x01\x01"), ICCProfile...))...)
	return append(out, jpg[2:]...)
}

// ICCProfile is the profile body WithICC embeds.
var ICCProfile = []byte("fake-icc-profile-bytes-0123456789")

// PNGWithText adds a tEXt chunk carrying GPSMarker before a PNG's IEND.
func PNGWithText(p []byte) []byte {
	return insertBeforeIEND(p, pngChunk("tEXt", []byte("Comment\x00"+GPSMarker)))
}

// PNGWithEXIF adds an eXIf chunk (orientation and GPS, as EXIF), a tEXt, an
// iTXt and a tIME chunk to a PNG, before its image data as the format
// requires, and a private chunk after it.
func PNGWithEXIF(p []byte, orientation int) []byte {
	i := bytes.Index(p, []byte("IDAT")) - 4
	out := append([]byte(nil), p[:i]...)
	out = append(out, pngChunk("eXIf", bytes.TrimPrefix(EXIF(orientation), []byte("Exif\x00\x00")))...)
	out = append(out, pngChunk("tEXt", []byte("Comment\x00"+GPSMarker))...)
	out = append(out, pngChunk("iTXt", []byte("XML:com.adobe.xmp\x00\x00\x00\x00\x00"+string(xmp())))...)
	out = append(out, pngChunk("tIME", []byte{0x07, 0xE9, 6, 1, 12, 0, 0})...)
	out = append(out, p[i:]...)
	return insertBeforeIEND(out, pngChunk("prVt", []byte(GPSMarker)))
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
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(out[4:]))
}

// Scene draws a w×h photo of a scene with objects in it: the background
// (light, a horizon, large patches and texture) depends only on scene, and
// the three objects standing in front of it (their places, sizes and
// colours) only on placement. Two placements of one scene are different
// photos taken in the same spot, which a near-duplicate check must tell
// apart: most of their pixels are the same.
func Scene(w, h int, scene, placement uint64) *image.RGBA {
	bg := rand.New(rand.NewPCG(scene, 0x5ce7e))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	sky := [3]float64{120 + bg.Float64()*100, 130 + bg.Float64()*100, 150 + bg.Float64()*90}
	ground := [3]float64{40 + bg.Float64()*80, 50 + bg.Float64()*80, 30 + bg.Float64()*60}
	horizon := 0.3 + 0.4*bg.Float64()
	tilt := (bg.Float64() - 0.5) * 0.3
	type patch struct {
		x0, y0, x1, y1 float64
		c              [3]float64
	}
	patches := make([]patch, 3+bg.IntN(3))
	for i := range patches {
		x, y := bg.Float64(), horizon-0.25*bg.Float64()
		patches[i] = patch{x, y, x + 0.1 + 0.25*bg.Float64(), horizon + 0.02,
			[3]float64{float64(bg.IntN(200)), float64(bg.IntN(200)), float64(bg.IntN(200))}}
	}
	fg := rand.New(rand.NewPCG(placement, scene^0x0b1ec7))
	type object struct {
		x, y, rx, ry float64
		c            [3]float64
		round        bool
	}
	objects := make([]object, 3)
	for i := range objects {
		r := 0.08 + 0.08*fg.Float64()
		objects[i] = object{fg.Float64(), horizon + (1-horizon)*fg.Float64(), r, r * (0.6 + 0.8*fg.Float64()),
			[3]float64{float64(fg.IntN(256)), float64(fg.IntN(256)), float64(fg.IntN(256))}, fg.IntN(2) == 0}
	}
	noise := rand.New(rand.NewPCG(scene^placement, 7))
	tf := 2 * math.Pi / float64(max(4, min(w, h)/40))
	aspect := float64(w) / float64(h)
	for y := range h {
		for x := range w {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			var c [3]float64
			if fy < horizon+tilt*(fx-0.5) {
				for i := range c {
					c[i] = sky[i] * (0.8 + 0.4*fy)
				}
			} else {
				t := 1 + 0.1*math.Sin(float64(x+3*y)*tf)
				for i := range c {
					c[i] = ground[i] * t * (0.7 + 0.5*fy)
				}
			}
			for _, p := range patches {
				if fx >= p.x0 && fx < p.x1 && fy >= p.y0 && fy < p.y1 {
					c = p.c
				}
			}
			for _, o := range objects {
				dx, dy := (fx-o.x)*aspect, fy-o.y
				var inside bool
				if o.round {
					inside = dx*dx/(o.rx*o.rx)+dy*dy/(o.ry*o.ry) < 1
				} else {
					inside = math.Abs(dx) < o.rx && math.Abs(dy) < o.ry
				}
				if inside {
					t := 1 + 0.15*math.Sin(float64(2*x+y)*tf)
					c = [3]float64{o.c[0] * t, o.c[1] * t, o.c[2] * t}
				}
			}
			n := noise.NormFloat64() * 5
			i := img.PixOffset(x, y)
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = clamp(c[0]+n), clamp(c[1]+n), clamp(c[2]+n), 255
		}
	}
	return img
}
