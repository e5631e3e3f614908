// Package imaging holds the image work of upload and ingest that is neither
// HTTP nor SQL: recognising a file from its first bytes and header without
// decoding it, canonicalising it (orientation applied, personal metadata
// removed), thumbnails, a perceptual hash for near-duplicates, and simple
// quality checks.
package imaging

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // registers the JPEG header and image decoders
	_ "image/png"  // registers the PNG decoders
	"io"

	_ "golang.org/x/image/webp" // registers the WebP decoders
)

// Refusal is why a file is not accepted, for the person who sent it.
type Refusal struct {
	Code    string // stable: empty, unsupported_type, too_many_pixels, too_large, truncated, undecodable, too_small
	Message string
}

func (r *Refusal) Error() string { return r.Code + ": " + r.Message }

func refuse(code, format string, args ...any) *Refusal {
	return &Refusal{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Limits bound what Inspect accepts.
type Limits struct {
	MaxPixels    int64 // width × height; 0 means 40 megapixels
	MinShortSide int   // shorter side in pixels; 0 means 200
}

// Header is what Inspect learns without decoding pixels.
type Header struct {
	Format      string // jpeg, png or webp
	ContentType string
	Ext         string
	Width       int // as stored, before any EXIF orientation
	Height      int
}

// Format names and their content types.
var formats = map[string][2]string{
	"jpeg": {"image/jpeg", "jpg"},
	"png":  {"image/png", "png"},
	"webp": {"image/webp", "webp"},
}

// Sniff names the kind of file from its first bytes: jpeg, png, webp, or what
// it is instead (gif, tiff, bmp, svg, html, pdf, zip, …), or "" when unknown.
func Sniff(head []byte) string {
	switch {
	case len(head) == 0:
		return "empty"
	case bytes.HasPrefix(head, []byte{0xFF, 0xD8, 0xFF}):
		return "jpeg"
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case len(head) >= 12 && bytes.Equal(head[:4], []byte("RIFF")) && bytes.Equal(head[8:12], []byte("WEBP")):
		return "webp"
	case bytes.HasPrefix(head, []byte("GIF87a")) || bytes.HasPrefix(head, []byte("GIF89a")):
		return "GIF"
	case bytes.HasPrefix(head, []byte("II*\x00")) || bytes.HasPrefix(head, []byte("MM\x00*")):
		return "TIFF"
	case bytes.HasPrefix(head, []byte("BM")):
		return "BMP"
	case bytes.HasPrefix(head, []byte("%PDF")):
		return "PDF"
	case bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return "ZIP"
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return "gzip"
	case bytes.HasPrefix(head, []byte("\x7fELF")):
		return "executable"
	case len(head) >= 12 && bytes.Equal(head[4:8], []byte("ftyp")):
		return "HEIC or video"
	case bytes.HasPrefix(head, []byte{0x00, 0x00, 0x01, 0x00}):
		return "icon"
	}
	text := bytes.ToLower(bytes.TrimLeft(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")), " \t\r\n"))
	switch {
	case bytes.Contains(text, []byte("<svg")):
		return "SVG"
	case bytes.HasPrefix(text, []byte("<!doctype html")) || bytes.HasPrefix(text, []byte("<html")) || bytes.Contains(text, []byte("<script")):
		return "HTML"
	case bytes.HasPrefix(text, []byte("<?xml")):
		return "XML"
	}
	return ""
}

// Inspect recognises an upload from its magic bytes and reads its dimensions
// from the header only, so a pixel bomb is refused before any pixel is
// decoded. It also checks the file is complete (a JPEG ends with its
// end-of-image marker, a PNG with IEND, a WebP is as long as its RIFF header
// says), since a truncated file would only fail later.
func Inspect(r io.ReadSeeker, lim Limits) (Header, error) {
	if lim.MaxPixels == 0 {
		lim.MaxPixels = 40_000_000
	}
	if lim.MinShortSide == 0 {
		lim.MinShortSide = DefaultThresholds.MinShortSide
	}
	head := make([]byte, 512)
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return Header{}, fmt.Errorf("error reading file: %w", err)
	}
	head = head[:n]
	kind := Sniff(head)
	switch kind {
	case "jpeg", "png", "webp":
	case "empty":
		return Header{}, refuse("empty", "the file is empty.")
	case "":
		return Header{}, refuse("unsupported_type", "this is not an image we accept; upload JPEG, PNG or WebP.")
	default:
		return Header{}, refuse("unsupported_type", "%s files are not accepted; upload JPEG, PNG or WebP.", kind)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return Header{}, fmt.Errorf("error rewinding file: %w", err)
	}
	cfg, format, err := image.DecodeConfig(bufio.NewReader(r))
	if err != nil || format != kind {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return Header{}, refuse("truncated", "the file ends before its image header does; it was probably cut off.")
		}
		return Header{}, refuse("undecodable", "the %s header is damaged, so the image cannot be read.", format)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return Header{}, refuse("undecodable", "the image says it has no pixels.")
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > lim.MaxPixels {
		return Header{}, refuse("too_many_pixels", "the image is %d × %d pixels (%.0f megapixels); the limit is %.0f megapixels.",
			cfg.Width, cfg.Height, float64(px)/1e6, float64(lim.MaxPixels)/1e6)
	}
	if short := min(cfg.Width, cfg.Height); short < lim.MinShortSide {
		return Header{}, refuse("too_small", "the image is only %d × %d pixels; we need at least %d pixels on the short side.",
			cfg.Width, cfg.Height, lim.MinShortSide)
	}
	if err := checkComplete(r, kind); err != nil {
		return Header{}, err
	}
	f := formats[kind]
	return Header{Format: kind, ContentType: f[0], Ext: f[1], Width: cfg.Width, Height: cfg.Height}, nil
}

// checkComplete looks at the end of the file for the marker its format ends with.
func checkComplete(r io.ReadSeeker, kind string) error {
	size, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("error measuring file: %w", err)
	}
	tailLen := min(size, 64<<10)
	if _, err := r.Seek(size-tailLen, io.SeekStart); err != nil {
		return fmt.Errorf("error seeking file: %w", err)
	}
	tail := make([]byte, tailLen)
	if _, err := io.ReadFull(r, tail); err != nil {
		return fmt.Errorf("error reading file: %w", err)
	}
	truncated := refuse("truncated", "the file is incomplete (it was probably cut off during transfer).")
	switch kind {
	case "jpeg":
		// Some cameras append data after the end-of-image marker; it only
		// has to be there.
		if !bytes.Contains(tail, []byte{0xFF, 0xD9}) {
			return truncated
		}
	case "png":
		if !bytes.Contains(tail, []byte("IEND\xaeB`\x82")) {
			return truncated
		}
	case "webp":
		if _, err := r.Seek(4, io.SeekStart); err != nil {
			return fmt.Errorf("error seeking file: %w", err)
		}
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return truncated
		}
		riff := int64(b[0]) | int64(b[1])<<8 | int64(b[2])<<16 | int64(b[3])<<24
		if riff+8 > size {
			return truncated
		}
	}
	return nil
}
