// Package imaging holds the image work of upload and ingest that is neither
// HTTP nor SQL: recognising a file from its first bytes and header without
// decoding it, canonicalising it (orientation applied, personal metadata
// removed), thumbnails, a perceptual hash for near-duplicates, and simple
// quality checks.
package imaging

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // registers the JPEG config and image decoders
	_ "image/png"  // registers the PNG decoders
	"io"

	_ "golang.org/x/image/webp" // registers the WebP decoders
)

// Refusal is why a file is not accepted, for the person who sent it. Code is
// stable and meant for programs; Message is a sentence for a person, starting
// in lower case so that callers can prefix it with the file's name.
type Refusal struct {
	Code    string
	Message string
}

func (r *Refusal) Error() string { return r.Code + ": " + r.Message }

// Refusal codes.
const (
	CodeEmpty           = "empty"
	CodeUnsupportedType = "unsupported_type"
	CodeTooManyPixels   = "too_many_pixels"
	CodeTooLarge        = "too_large"
	CodeTruncated       = "truncated"
	CodeUndecodable     = "undecodable"
	CodeTooSmall        = "too_small"
)

func refuse(code, format string, args ...any) *Refusal {
	return &Refusal{Code: code, Message: fmt.Sprintf(format, args...)}
}

// TooLarge is the refusal of a file over a byte cap of limit bytes. The cap
// is enforced by whoever streams the file (it stops reading there), or by an
// Inspector given Limits.MaxBytes.
func TooLarge(limit int64) *Refusal {
	return refuse(CodeTooLarge, "the file is larger than %s, the largest file we accept.", humanBytes(limit))
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%.4g MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.4g KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// Refusals made in several places; each call makes a new one, so that no
// caller can change another's.
func errTruncated() *Refusal {
	return refuse(CodeTruncated, "the file is incomplete; it was probably cut off during the transfer.")
}

func errNoPixels() *Refusal {
	return refuse(CodeUndecodable, "the image header says the image has no pixels.")
}

// Defaults of Limits.
const (
	DefaultMaxPixels = 40_000_000
	// DefaultMaxSide is generous for panoramas, yet keeps a 1-pixel-high
	// strip from passing the pixel cap with an absurd width.
	DefaultMaxSide = 30_000
)

// Limits bound what Inspect accepts.
type Limits struct {
	MaxPixels    int64 // width × height; 0 means DefaultMaxPixels
	MaxSide      int   // either side, in pixels; 0 means DefaultMaxSide
	MinShortSide int   // the shorter side, in pixels; 0 means DefaultThresholds.MinShortSide, negative means no minimum
	MaxBytes     int64 // file size; 0 means no cap here (the caller caps the stream)
}

func (l Limits) withDefaults() Limits {
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultMaxPixels
	}
	if l.MaxSide <= 0 {
		l.MaxSide = DefaultMaxSide
	}
	if l.MinShortSide == 0 {
		l.MinShortSide = DefaultThresholds.MinShortSide
	}
	return l
}

// check refuses dimensions, before anything is decoded.
func (l Limits) check(w, h int) error {
	if w <= 0 || h <= 0 {
		return errNoPixels()
	}
	if px := int64(w) * int64(h); px > l.MaxPixels {
		return refuse(CodeTooManyPixels, "the image is %d × %d pixels (%.1f megapixels); we accept at most %.0f megapixels.",
			w, h, float64(px)/1e6, float64(l.MaxPixels)/1e6)
	}
	if long := max(w, h); long > l.MaxSide {
		return refuse(CodeTooManyPixels, "the image is %d × %d pixels; we accept at most %d pixels on a side.", w, h, l.MaxSide)
	}
	if short := min(w, h); short < l.MinShortSide {
		return refuse(CodeTooSmall, "the image is only %d × %d pixels; we need at least %d pixels on its short side.",
			w, h, l.MinShortSide)
	}
	return nil
}

// Header is what Inspect learns without decoding pixels.
type Header struct {
	Format      string // jpeg, png or webp
	ContentType string
	Ext         string // without the dot
	Width       int    // as stored, before any EXIF orientation
	Height      int
	Size        int64 // bytes
}

// Format names and their content type and extension.
var formats = map[string][2]string{
	"jpeg": {"image/jpeg", "jpg"},
	"png":  {"image/png", "png"},
	"webp": {"image/webp", "webp"},
}

// sniffLen is how much of a file Sniff looks at.
const sniffLen = 512

// Sniff names the kind of file from its first bytes (512 are enough): jpeg,
// png or webp for what we accept; otherwise what it is instead (GIF, TIFF,
// BMP, SVG, HTML, PDF, ZIP, …), "empty", or "" when unknown.
func Sniff(head []byte) string {
	switch {
	case len(head) == 0:
		return "empty"
	case bytes.HasPrefix(head, []byte{0xFF, 0xD8, 0xFF}):
		return "jpeg"
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case len(head) >= 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "WEBP":
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
	case bytes.HasPrefix(head, []byte("\x7fELF")) || bytes.HasPrefix(head, []byte("MZ")):
		return "executable"
	case len(head) >= 12 && string(head[4:8]) == "ftyp":
		return "HEIC or video"
	case bytes.HasPrefix(head, []byte{0x00, 0x00, 0x01, 0x00}):
		return "icon"
	case bytes.HasPrefix(head, []byte{0xFF, 0x0A}) || bytes.HasPrefix(head, []byte("\x00\x00\x00\x0cJXL \r\n\x87\n")):
		return "JPEG XL"
	case bytes.HasPrefix(head, []byte("8BPS")):
		return "Photoshop"
	}
	text := bytes.ToLower(bytes.TrimLeft(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")), " \t\r\n"))
	switch {
	case bytes.Contains(text, []byte("<svg")):
		return "SVG"
	case bytes.HasPrefix(text, []byte("<!doctype html")) || bytes.HasPrefix(text, []byte("<html")) ||
		bytes.Contains(text, []byte("<script")) || bytes.Contains(text, []byte("<body")):
		return "HTML"
	case bytes.HasPrefix(text, []byte("<?xml")):
		return "XML"
	}
	return ""
}

// refuseKind is the refusal for a file Sniff did not recognise as ours.
func refuseKind(kind string) *Refusal {
	switch kind {
	case "empty":
		return refuse(CodeEmpty, "the file is empty.")
	case "":
		return refuse(CodeUnsupportedType, "this is not an image we accept; upload JPEG, PNG or WebP.")
	}
	return refuse(CodeUnsupportedType, "%s files are not accepted; upload JPEG, PNG or WebP.", kind)
}

// Inspect recognises a file from its magic bytes and reads its dimensions
// from its header only, so that a pixel bomb is refused before any pixel is
// decoded, and it walks the file's structure (segments or chunks, not
// pixels) to check that it is complete. It reads r to the end unless it
// refuses the file on the way; r may be the file itself or, through an
// Inspector, the upload as it streams by.
func Inspect(r io.Reader, lim Limits) (Header, error) {
	in := NewInspector(lim)
	buf := make([]byte, 32<<10)
	if _, err := io.CopyBuffer(in, r, buf); err != nil {
		var ref *Refusal
		if errors.As(err, &ref) {
			return Header{}, ref
		}
		return Header{}, fmt.Errorf("error reading file: %w", err)
	}
	return in.Finish()
}

// prefixCap is how much of the start of a file an Inspector keeps, to sniff
// it and to let the standard decoders confirm its header.
const prefixCap = 256 << 10

// Inspector inspects a file as it is written to it, so that an upload can be
// streamed through it alongside its hash and its temporary file:
//
//	in := imaging.NewInspector(limits)
//	_, err := io.Copy(io.MultiWriter(tmp, sha, in), part)
//	// errors.As(err, &refusal): refused early (type, pixels), stop here
//	hdr, err := in.Finish()
//
// Write refuses as soon as it can (the type after the first bytes, the
// dimensions once the header has gone by), returning the *Refusal as its
// error so that the copy stops; Finish gives the final word once the whole
// file has been written. An Inspector keeps at most the file's first 256 KiB.
type Inspector struct {
	lim    Limits
	n      int64
	prefix []byte
	kind   string // "" until sniffed
	walk   walker
	err    error
}

// NewInspector returns an Inspector applying lim.
func NewInspector(lim Limits) *Inspector {
	return &Inspector{lim: lim.withDefaults()}
}

// walker follows one format's structure, segment by segment or chunk by
// chunk, never holding more than a few bytes of it.
type walker interface {
	// feed consumes the next bytes of the file; it fails with a *Refusal
	// when the structure is broken, or as soon as the size is known and
	// refused by the walker's check.
	feed(p []byte) error
	// size returns the image dimensions once its header went by.
	size() (w, h int, ok bool)
	// finish reports a file that ends before its structure does.
	finish() error
	// layout says, once the header went by, what the decoded image takes.
	layout() layout
}

// Write implements io.Writer. Once it refuses the file, it returns the
// *Refusal and consumes nothing more.
func (in *Inspector) Write(p []byte) (int, error) {
	if in.err != nil {
		return 0, in.err
	}
	old := in.n
	in.n += int64(len(p))
	if in.lim.MaxBytes > 0 && in.n > in.lim.MaxBytes {
		in.err = TooLarge(in.lim.MaxBytes)
		return 0, in.err
	}
	if room := prefixCap - len(in.prefix); room > 0 {
		in.prefix = append(in.prefix, p[:min(room, len(p))]...)
	}
	if in.walk == nil {
		// Before the type is known, everything written is in the prefix.
		if !in.sniff(false) {
			if in.err != nil {
				return 0, in.err
			}
			return len(p), nil
		}
		in.err = in.walk.feed(in.prefix[:old])
		if in.err == nil {
			in.err = in.walk.feed(p)
		}
	} else {
		in.err = in.walk.feed(p)
	}
	if in.err != nil {
		return 0, in.err
	}
	return len(p), nil
}

// sniff decides the file's type once enough of it is known (or at the end),
// setting in.walk for ours or in.err for others. It reports whether the type
// is now known and ours.
func (in *Inspector) sniff(atEnd bool) bool {
	kind := Sniff(in.prefix[:min(len(in.prefix), sniffLen)])
	_, ours := formats[kind]
	// Our formats are certain from their first 12 bytes; the text formats
	// need up to sniffLen bytes to be told apart.
	if !atEnd && len(in.prefix) < sniffLen && !(ours && len(in.prefix) >= 12) {
		return false
	}
	in.kind = kind
	if !ours {
		in.err = refuseKind(kind)
		return false
	}
	switch kind {
	case "jpeg":
		in.walk = &jpegWalker{check: in.lim.check}
	case "png":
		in.walk = &pngWalker{check: in.lim.check}
	case "webp":
		in.walk = &webpWalker{check: in.lim.check}
	}
	return true
}

// Finish says whether the file written so far, taken as complete, is
// accepted, and if so what it is.
func (in *Inspector) Finish() (Header, error) {
	if in.err != nil {
		return Header{}, in.err
	}
	if in.n == 0 {
		return Header{}, refuseKind("empty")
	}
	if in.walk == nil {
		if !in.sniff(true) {
			return Header{}, in.err
		}
		if err := in.walk.feed(in.prefix); err != nil {
			in.err = err
			return Header{}, err
		}
	}
	in.err = in.finish()
	if in.err != nil {
		return Header{}, in.err
	}
	w, h, _ := in.walk.size()
	f := formats[in.kind]
	return Header{Format: in.kind, ContentType: f[0], Ext: f[1], Width: w, Height: h, Size: in.n}, nil
}

func (in *Inspector) finish() error {
	// The standard decoder has the last word on the header: where the
	// prefix holds it, it must read it too, and find the same size.
	whole := int64(len(in.prefix)) == in.n
	cfg, format, err := image.DecodeConfig(bytes.NewReader(in.prefix))
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		if whole {
			return errTruncated()
		}
	case err != nil:
		return refuse(CodeUndecodable, "the %s header is damaged, so the image cannot be read (%v).", in.kind, plainError(err))
	case format != in.kind:
		return refuse(CodeUndecodable, "the file starts like %s but its header is not.", in.kind)
	}
	if err := in.walk.finish(); err != nil {
		return err
	}
	w, h, ok := in.walk.size()
	if !ok {
		return errTruncated()
	}
	if err == nil && (cfg.Width != w || cfg.Height != h) {
		return refuse(CodeUndecodable, "the %s file contradicts itself about its size.", in.kind)
	}
	return nil
}

// plainError drops the package prefix the decoders put on their errors.
func plainError(err error) string {
	s := err.Error()
	for _, p := range []string{"jpeg: ", "png: ", "webp: ", "vp8: ", "vp8l: ", "riff: "} {
		if len(s) > len(p) && s[:len(p)] == p {
			s = s[len(p):]
		}
	}
	return s
}
