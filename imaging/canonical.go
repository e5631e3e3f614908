package imaging

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
)

// Result is an image made ready to store and show.
type Result struct {
	Bytes       []byte      // the canonical file: oriented, without personal metadata
	Image       image.Image // decoded, oriented pixels
	Width       int
	Height      int
	Format      string
	ContentType string
	Ext         string
	Reencoded   bool // true when orientation forced a new encoding
}

// Process decodes an upload, applies its EXIF orientation and returns the
// canonical bytes with every piece of personal metadata removed (EXIF with
// GPS, XMP, IPTC, comments, text chunks). Where no rotation is needed this is
// done losslessly, by dropping segments and chunks; a JPEG or WebP that must
// be rotated is re-encoded as JPEG at quality 92, as a pixel-exact rotation
// of compressed data is out of reach of the standard library.
func Process(data []byte) (*Result, error) {
	kind := Sniff(data[:min(len(data), 512)])
	f, ok := formats[kind]
	if !ok {
		return nil, refuse("unsupported_type", "this is not an image we accept; upload JPEG, PNG or WebP.")
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, refuse("truncated", "the image data ends early; the file was probably cut off.")
		}
		return nil, refuse("undecodable", "the image data is damaged and cannot be decoded.")
	}
	orientation := 1
	var clean []byte
	switch kind {
	case "jpeg":
		orientation = jpegOrientation(data)
		clean, err = stripJPEG(data)
	case "png":
		clean, err = stripPNG(data)
	case "webp":
		orientation = webpOrientation(data)
		clean, err = stripWebP(data)
	}
	if err != nil {
		return nil, refuse("undecodable", "the file's structure is damaged: %v.", err)
	}
	res := &Result{Bytes: clean, Image: img, Format: kind, ContentType: f[0], Ext: f[1]}
	if orientation != 1 {
		res.Image = Orient(img, orientation)
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, res.Image, &jpeg.Options{Quality: 92}); err != nil {
			return nil, fmt.Errorf("error re-encoding rotated image: %w", err)
		}
		res.Bytes, res.Reencoded = buf.Bytes(), true
		res.Format, res.ContentType, res.Ext = "jpeg", "image/jpeg", "jpg"
	}
	b := res.Image.Bounds()
	res.Width, res.Height = b.Dx(), b.Dy()
	return res, nil
}

// stripJPEG keeps the segments that describe how to render the image (JFIF,
// ICC profile, Adobe colour transform, tables, frame, scans) and drops the
// rest (EXIF with GPS and thumbnails, XMP, IPTC, comments), then ends the
// file at its end-of-image marker, dropping anything appended after it.
func stripJPEG(data []byte) ([]byte, error) {
	if len(data) < 4 || data[0] != 0xFF || data[1] != 0xD8 {
		return nil, errors.New("no JPEG start marker")
	}
	out := make([]byte, 0, len(data))
	out = append(out, 0xFF, 0xD8)
	i := 2
	for {
		for i < len(data) && data[i] == 0xFF && i+1 < len(data) && data[i+1] == 0xFF {
			i++ // fill bytes
		}
		if i+4 > len(data) || data[i] != 0xFF {
			return nil, errors.New("JPEG segment structure is broken")
		}
		marker := data[i+1]
		if marker == 0xDA { // start of scan: the rest is image data
			rest := data[i:]
			if end := bytes.Index(rest, []byte{0xFF, 0xD9}); end >= 0 {
				rest = rest[:end+2]
			}
			return append(out, rest...), nil
		}
		length := int(binary.BigEndian.Uint16(data[i+2:]))
		if length < 2 || i+2+length > len(data) {
			return nil, errors.New("JPEG segment runs past the end of the file")
		}
		seg := data[i : i+2+length]
		i += 2 + length
		keep := !(marker >= 0xE1 && marker <= 0xEF) || marker == 0xE2 || marker == 0xEE
		if marker == 0xFE { // comment
			keep = false
		}
		if keep {
			out = append(out, seg...)
		}
	}
}

// jpegOrientation reads the EXIF orientation (1–8) of a JPEG; 1 when absent.
func jpegOrientation(data []byte) int {
	i := 2
	for i+4 <= len(data) && data[i] == 0xFF {
		marker := data[i+1]
		if marker == 0xDA {
			break
		}
		length := int(binary.BigEndian.Uint16(data[i+2:]))
		if length < 2 || i+2+length > len(data) {
			break
		}
		seg := data[i+4 : i+2+length]
		if marker == 0xE1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
			return tiffOrientation(seg[6:])
		}
		i += 2 + length
	}
	return 1
}

// tiffOrientation finds tag 0x0112 in IFD0 of an EXIF TIFF block.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 1
	}
	off := int(bo.Uint32(t[4:]))
	if off < 8 || off+2 > len(t) {
		return 1
	}
	n := int(bo.Uint16(t[off:]))
	for k := 0; k < n; k++ {
		e := off + 2 + 12*k
		if e+12 > len(t) {
			return 1
		}
		if bo.Uint16(t[e:]) == 0x0112 {
			if v := int(bo.Uint16(t[e+8:])); v >= 1 && v <= 8 {
				return v
			}
			return 1
		}
	}
	return 1
}

// stripPNG drops text, EXIF and time chunks.
func stripPNG(data []byte) ([]byte, error) {
	const sig = 8
	if len(data) < sig {
		return nil, errors.New("no PNG signature")
	}
	out := make([]byte, 0, len(data))
	out = append(out, data[:sig]...)
	i := sig
	for i+12 <= len(data) {
		n := int(binary.BigEndian.Uint32(data[i:]))
		if n < 0 || i+12+n > len(data) {
			return nil, errors.New("PNG chunk runs past the end of the file")
		}
		typ := string(data[i+4 : i+8])
		chunk := data[i : i+12+n]
		i += 12 + n
		switch typ {
		case "tEXt", "zTXt", "iTXt", "eXIf", "tIME":
			continue
		}
		out = append(out, chunk...)
		if typ == "IEND" {
			return out, nil
		}
	}
	return nil, errors.New("PNG has no IEND chunk")
}

// webpChunks calls fn for each chunk of a WebP RIFF container.
func webpChunks(data []byte, fn func(fourcc string, chunk, payload []byte)) error {
	if len(data) < 12 {
		return errors.New("WebP too short")
	}
	i := 12
	for i+8 <= len(data) {
		n := int(binary.LittleEndian.Uint32(data[i+4:]))
		padded := n + n&1
		if n < 0 || i+8+n > len(data) {
			return errors.New("WebP chunk runs past the end of the file")
		}
		end := min(i+8+padded, len(data))
		fn(string(data[i:i+4]), data[i:end], data[i+8:i+8+n])
		i = end
	}
	return nil
}

func webpOrientation(data []byte) int {
	o := 1
	_ = webpChunks(data, func(fourcc string, _, payload []byte) {
		if fourcc == "EXIF" {
			payload = bytes.TrimPrefix(payload, []byte("Exif\x00\x00"))
			o = tiffOrientation(payload)
		}
	})
	return o
}

// stripWebP drops EXIF and XMP chunks and clears their flags in VP8X.
func stripWebP(data []byte) ([]byte, error) {
	out := make([]byte, 12, len(data))
	copy(out, data[:12])
	err := webpChunks(data, func(fourcc string, chunk, _ []byte) {
		switch fourcc {
		case "EXIF", "XMP ":
			return
		case "VP8X":
			c := append([]byte(nil), chunk...)
			if len(c) > 8 {
				c[8] &^= 0x08 | 0x04 // EXIF and XMP flags
			}
			out = append(out, c...)
			return
		}
		out = append(out, chunk...)
	})
	if err != nil {
		return nil, err
	}
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out, nil
}
