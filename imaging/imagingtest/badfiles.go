package imagingtest

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
)

// BadFile is a file that must be refused, and the refusal code expected.
type BadFile struct {
	Name     string
	Data     []byte
	WantCode string
}

// BadFiles is the corpus of files upload refuses from their first bytes,
// header and structure, without decoding pixels (imaging.Inspect). Names
// with an image extension on something else are on purpose: the type comes
// from the bytes, never from the name.
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
	webpPhoto := WebP(Photo(256, 256, 3))
	exifPhoto := WithEXIF(photo, 6)
	sof := bytes.Index(photo, []byte{0xFF, 0xC0}) // the frame header
	sos := bytes.Index(photo, []byte{0xFF, 0xDA}) // the first scan
	patched := func(at int, b ...byte) []byte {
		out := append([]byte(nil), photo...)
		copy(out[at:], b)
		return out
	}
	be16 := func(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

	// A PNG whose header claims 100000 × 100000 pixels, with a valid CRC.
	bombPNG := pngFile(ihdr(100000, 100000, 2), pngChunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01}))
	// A real JPEG whose frame header is patched to claim 65000 × 65000.
	bombJPEG := patched(sof+5, append(be16(65000), be16(65000)...)...)
	// WebP canvases of 16384 × 16384, the format's largest.
	vp8lBomb := riff(chunk("VP8L", []byte{0x2f, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0, 0}))
	vp8xBomb := riff(vp8x(0, 16384, 16384), chunk("VP8L", vp8l(Photo(16, 16, 1))))

	zeroWidth := pngFile(ihdr(0, 100, 2))
	badCRC := append([]byte(nil), pngPhoto...)
	badCRC[29] ^= 0xFF // inside the IHDR CRC
	textFirst := append([]byte("\x89PNG\r\n\x1a\n"), pngChunk("tEXt", []byte("Comment\x00hi"))...)
	textFirst = append(textFirst, pngPhoto[8:]...)

	var zipBuf bytes.Buffer
	zw := zip.NewWriter(&zipBuf)
	f, _ := zw.Create("photo.jpg")
	_, _ = f.Write(photo)
	_ = zw.Close()
	var gzBuf bytes.Buffer
	gz := gzip.NewWriter(&gzBuf)
	_, _ = gz.Write(photo)
	_ = gz.Close()

	// The header and first scan header of a real JPEG, then garbage with
	// bytes that read as an unknown marker.
	garbageScan := append([]byte(nil), photo[:sos+14]...)
	garbageScan = append(garbageScan, random(500)...)
	garbageScan = append(garbageScan, 0xFF, 0x4B)
	garbageScan = append(garbageScan, random(500)...)
	garbageScan = append(garbageScan, 0xFF, 0xD9)

	chunkPastEnd := riff(chunk("VP8L", vp8l(Photo(16, 16, 1))))
	binary.LittleEndian.PutUint32(chunkPastEnd[16:], 1<<20)

	noScan := append([]byte(nil), photo[:sos]...)
	noScan = append(noScan, 0xFF, 0xD9)

	return []BadFile{
		// Nothing, or not an image at all.
		{"empty.jpg", nil, "empty"},
		{"one-byte.jpg", []byte{0xFF}, "unsupported_type"},
		{"random.jpg", random(4096), "unsupported_type"},
		{"text.png", []byte("just some words, not a picture\n"), "unsupported_type"},
		{"script.jpg", []byte("#!/bin/sh\nrm -rf ~\n"), "unsupported_type"},
		{"program.jpg", append([]byte("\x7fELF\x02\x01\x01"), random(200)...), "unsupported_type"},
		{"setup.jpg", append([]byte("MZ\x90\x00"), random(200)...), "unsupported_type"},
		{"doc.pdf", []byte("%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n"), "unsupported_type"},
		{"photos.zip", zipBuf.Bytes(), "unsupported_type"},
		{"photo.jpg.gz", gzBuf.Bytes(), "unsupported_type"},
		{"data.xml", []byte(`<?xml version="1.0"?><root/>`), "unsupported_type"},
		{"page.jpg", []byte("<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"), "unsupported_type"},
		{"evil.svg", []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`), "unsupported_type"},
		{"clip.webp", append([]byte("RIFF\x24\x00\x00\x00AVI LIST"), random(32)...), "unsupported_type"},

		// Images in formats we do not take.
		{"animation.gif", []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"), "unsupported_type"},
		{"scan-le.tif", append([]byte("II*\x00\x08\x00\x00\x00"), random(64)...), "unsupported_type"},
		{"scan-be.tiff", append([]byte("MM\x00*\x00\x00\x00\x08"), random(64)...), "unsupported_type"},
		{"paint.bmp", append([]byte("BM"), random(64)...), "unsupported_type"},
		{"phone.heic", append([]byte("\x00\x00\x00\x18ftypheic"), random(100)...), "unsupported_type"},
		{"animated.webp", riff(vp8x(webpAnimation, 64, 64), chunk("ANIM", make([]byte, 6))), "unsupported_type"},

		// Cut off.
		{"truncated-header.jpg", photo[:100], "truncated"},
		{"truncated-in-exif.jpg", exifPhoto[:60], "truncated"},
		{"truncated-2k.jpg", photo[:2048], "truncated"},
		{"truncated-half.jpg", photo[:len(photo)/2], "truncated"},
		{"truncated-90pct.jpg", photo[:len(photo)*9/10], "truncated"},
		{"truncated-no-eoi.jpg", photo[:len(photo)-2], "truncated"},
		{"truncated-header.png", pngPhoto[:20], "truncated"},
		{"truncated-half.png", pngPhoto[:len(pngPhoto)/2], "truncated"},
		{"truncated-no-iend.png", pngPhoto[:len(pngPhoto)-12], "truncated"},
		{"truncated-header.webp", webpPhoto[:20], "truncated"},
		{"truncated-half.webp", webpPhoto[:len(webpPhoto)/2], "truncated"},

		// Pixel bombs: small files whose header promises a huge image.
		{"bomb-100000x100000.png", bombPNG, "too_many_pixels"},
		{"bomb-65000x65000.jpg", bombJPEG, "too_many_pixels"},
		{"bomb-16384x16384.webp", vp8lBomb, "too_many_pixels"},
		{"bomb-vp8x-16384x16384.webp", vp8xBomb, "too_many_pixels"},
		{"strip-32000x900.jpg", patched(sof+5, append(be16(900), be16(32000)...)...), "too_many_pixels"},
		{"strip-40000x1.png", pngFile(ihdr(40000, 1, 2), pngChunk("IDAT", nil)), "too_many_pixels"},

		// Damaged structure or header.
		{"jpeg-magic-garbage.jpg", append([]byte{0xFF, 0xD8, 0xFF}, random(3000)...), "undecodable"},
		{"jpeg-garbage-scan.jpg", garbageScan, "undecodable"},
		{"jpeg-no-scan.jpg", noScan, "undecodable"},
		{"arithmetic.jpg", patched(sof+1, 0xC9), "undecodable"},
		{"12-bit.jpg", patched(sof+4, 12), "undecodable"},
		{"broken.webp", []byte("RIFF\xff\xff\x00\x00WEBPVP8 \x10\x00\x00\x00garbage-garbage!"), "undecodable"},
		{"chunk-past-end.webp", chunkPastEnd, "undecodable"},
		{"zero-width.png", zeroWidth, "undecodable"},
		{"bad-ihdr-crc.png", badCRC, "undecodable"},
		{"text-before-ihdr.png", textFirst, "undecodable"},
		{"no-idat.png", pngFile(ihdr(300, 300, 2)), "undecodable"},

		// Sound, but too small to learn from.
		{"tiny-10x10.png", PNG(Photo(10, 10, 3)), "too_small"},
		{"thin-1000x50.jpg", JPEG(Photo(1000, 50, 4)), "too_small"},
		{"tiny-64x64.webp", WebP(Photo(64, 64, 5)), "too_small"},
	}
}

// DamagedFiles are files whose header and structure are sound, so that
// upload takes them, but whose image data is not: decoding them
// (imaging.Process, at ingest) must refuse them with WantCode.
func DamagedFiles() []BadFile {
	photo := JPEG(Photo(640, 480, 11))
	sos := bytes.Index(photo, []byte{0xFF, 0xDA})
	// Scan data replaced by one bits (stuffed, as 0xFF 0x00), which no
	// Huffman code is made of, ending properly.
	badHuffman := append([]byte(nil), photo[:sos+14]...)
	badHuffman = append(badHuffman, bytes.Repeat([]byte{0xFF, 0x00}, 2000)...)
	badHuffman = append(badHuffman, 0xFF, 0xD9)

	pngPhoto := PNG(Photo(320, 240, 12))
	idat := bytes.Index(pngPhoto, []byte("IDAT"))
	badZlib := append([]byte(nil), pngPhoto...)
	n := int(binary.BigEndian.Uint32(badZlib[idat-4:]))
	for i := idat + 4 + 10; i < idat+4+n; i++ {
		badZlib[i] ^= 0x5A
	}
	// Fix the CRC, so only the compressed data is wrong.
	binary.BigEndian.PutUint32(badZlib[idat+4+n:], crc32.ChecksumIEEE(badZlib[idat:idat+4+n]))

	return []BadFile{
		{"bad-huffman.jpg", badHuffman, "undecodable"},
		{"bad-zlib.png", badZlib, "undecodable"},
	}
}

// ihdr is the IHDR chunk of a w×h PNG of colour type ct, 8 bits deep.
func ihdr(w, h uint32, ct byte) []byte {
	b := make([]byte, 13)
	binary.BigEndian.PutUint32(b, w)
	binary.BigEndian.PutUint32(b[4:], h)
	b[8], b[9] = 8, ct
	return pngChunk("IHDR", b)
}

// pngFile is a PNG file of the given chunks, ended with IEND.
func pngFile(chunks ...[]byte) []byte {
	out := []byte("\x89PNG\r\n\x1a\n")
	for _, c := range chunks {
		out = append(out, c...)
	}
	return append(out, pngChunk("IEND", nil)...)
}
