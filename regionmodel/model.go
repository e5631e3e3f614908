// Package regionmodel is the model of the project's own CPU trainer: the
// worker's graph-based regions (package segment), a fixed feature vector per
// region (colour in CIELAB, texture as gradient statistics, position, shape,
// contrast, saliency; see NumFeatures) and a multinomial logistic regression
// over the classes, background first. Segment classifies every region,
// drops those it takes for background, and joins the touching regions of a
// class into one instance, scored by the class's probability.
//
// The model file (extension .ihrm) is little-endian binary:
//
//	magic       8 bytes  "IHRM\r\n\x1a\n" (detects text-mode mangling, like PNG's)
//	format      uint16   FormatVersion (1)
//	features    uint16   FeatureSpec the weights were fitted to (1)
//	body length uint32   bytes of the body that follows
//	body:
//	  labels    uint16 count, then per label uint16 length + UTF-8 bytes
//	  dims      uint16   NumFeatures
//	  mean      float64 × dims    standardisation: x' = (x - mean) / scale
//	  scale     float64 × dims
//	  classes   uint16   labels + 1 (class 0 is background)
//	  weights   float64 × classes × (dims + 1), bias last
//	  segment   float64 K, float64 Sigma, uint16 WorkSize (segment.Options)
//	  minProb   float64  lowest class probability of a kept region
//	  minArea   float64  smallest instance, fraction of the image
//	crc         uint32   CRC-32 (IEEE) of every byte before it
//
// Save writes the same bytes for the same model, so a seeded training is
// reproducible byte for byte.
package regionmodel

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"unicode/utf8"

	"github.com/deepimageshub/imagehub/worker/segment"
)

// Extension is the model file's customary extension.
const Extension = ".ihrm"

// FormatVersion is the version of the file layout above.
const FormatVersion = 1

// Format is the name the trainer protocol gives this file (X-Artifact-Format).
const Format = "imagehub-region"

// MaxFileBytes bounds a model file; real ones are a few kilobytes.
const MaxFileBytes = 16 << 20

// MaxLabels bounds the classes of a model.
const MaxLabels = 1000

var magic = [8]byte{'I', 'H', 'R', 'M', '\r', '\n', 0x1a, '\n'}

// Background is the name of class 0 in Probabilities.
const Background = "_background"

// Model is a trained region classifier.
type Model struct {
	Labels []string
	// Mean and Scale standardise a feature vector before the classifier.
	Mean, Scale [NumFeatures]float64
	// Weights has one row per class, background first, of NumFeatures
	// weights and a bias.
	Weights [][NumFeatures + 1]float64
	// Segment are the segmenter's options for the regions (K, Sigma,
	// WorkSize are saved; the rest are unused).
	SegmentOptions segment.Options
	MinProb        float64
	MinArea        float64
}

// ErrCorrupt is wrapped by every refusal of Load.
var ErrCorrupt = errors.New("not a valid imagehub region model")

func corrupt(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, a...))
}

// Validate checks what Save and Segment rely on.
func (m *Model) Validate() error {
	if len(m.Labels) == 0 || len(m.Labels) > MaxLabels {
		return corrupt("%d labels; a model has 1 to %d", len(m.Labels), MaxLabels)
	}
	seen := map[string]bool{}
	for i, l := range m.Labels {
		if l == "" || len(l) > 256 || !utf8.ValidString(l) {
			return corrupt("label %d must be 1 to 256 bytes of UTF-8", i)
		}
		if seen[l] {
			return corrupt("label %q appears twice", l)
		}
		seen[l] = true
	}
	if len(m.Weights) != len(m.Labels)+1 {
		return corrupt("%d weight rows for %d labels and the background", len(m.Weights), len(m.Labels))
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	for i := range NumFeatures {
		if !finite(m.Mean[i]) || !finite(m.Scale[i]) || m.Scale[i] <= 0 {
			return corrupt("feature %d has mean %v and scale %v", i, m.Mean[i], m.Scale[i])
		}
	}
	for _, row := range m.Weights {
		for _, v := range row {
			if !finite(v) {
				return corrupt("a weight is %v", v)
			}
		}
	}
	s := m.SegmentOptions
	if !(s.K > 0 && s.K < 1e6) || !(s.Sigma > 0 && s.Sigma < 20) || s.WorkSize < 16 || s.WorkSize > 4096 {
		return corrupt("segmenter options K %v, Sigma %v, WorkSize %d are out of range", s.K, s.Sigma, s.WorkSize)
	}
	if !(m.MinProb >= 0 && m.MinProb < 1) || !(m.MinArea >= 0 && m.MinArea < 1) {
		return corrupt("minProb %v or minArea %v is not in [0, 1)", m.MinProb, m.MinArea)
	}
	return nil
}

// Save writes the model file.
func (m *Model) Save(w io.Writer) error {
	if err := m.Validate(); err != nil {
		return err
	}
	var body bytes.Buffer
	le := binary.LittleEndian
	put16 := func(v int) { body.Write(le.AppendUint16(nil, uint16(v))) }
	putF := func(v float64) { body.Write(le.AppendUint64(nil, math.Float64bits(v))) }
	put16(len(m.Labels))
	for _, l := range m.Labels {
		put16(len(l))
		body.WriteString(l)
	}
	put16(NumFeatures)
	for _, v := range m.Mean {
		putF(v)
	}
	for _, v := range m.Scale {
		putF(v)
	}
	put16(len(m.Weights))
	for _, row := range m.Weights {
		for _, v := range row {
			putF(v)
		}
	}
	putF(m.SegmentOptions.K)
	putF(m.SegmentOptions.Sigma)
	put16(m.SegmentOptions.WorkSize)
	putF(m.MinProb)
	putF(m.MinArea)

	out := make([]byte, 0, 16+body.Len()+4)
	out = append(out, magic[:]...)
	out = le.AppendUint16(out, FormatVersion)
	out = le.AppendUint16(out, FeatureSpec)
	out = le.AppendUint32(out, uint32(body.Len()))
	out = append(out, body.Bytes()...)
	out = le.AppendUint32(out, crc32.ChecksumIEEE(out))
	if _, err := w.Write(out); err != nil {
		return fmt.Errorf("error writing the model: %w", err)
	}
	return nil
}

// Bytes is Save into memory.
func (m *Model) Bytes() ([]byte, error) {
	var b bytes.Buffer
	if err := m.Save(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Load reads a model file, refusing (with an error wrapping ErrCorrupt) one
// that is truncated, altered, of another format or feature version, or
// whose values are out of range.
func Load(r io.Reader) (*Model, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("error reading the model: %w", err)
	}
	if len(data) > MaxFileBytes {
		return nil, corrupt("larger than %d bytes", MaxFileBytes)
	}
	le := binary.LittleEndian
	if len(data) < 20 || !bytes.Equal(data[:8], magic[:]) {
		return nil, corrupt("the file does not start with the IHRM header")
	}
	if v := le.Uint16(data[8:]); v != FormatVersion {
		return nil, corrupt("format version %d; this program reads version %d", v, FormatVersion)
	}
	if v := le.Uint16(data[10:]); v != FeatureSpec {
		return nil, corrupt("feature spec %d; this program computes spec %d", v, FeatureSpec)
	}
	n := int(le.Uint32(data[12:]))
	if len(data) != 16+n+4 {
		return nil, corrupt("the file is %d bytes, its header says %d (truncated or with trailing bytes)", len(data), 16+n+4)
	}
	if got, want := crc32.ChecksumIEEE(data[:16+n]), le.Uint32(data[16+n:]); got != want {
		return nil, corrupt("checksum %08x, expected %08x: the file is damaged", got, want)
	}
	d := &decoder{b: data[16 : 16+n]}
	m := &Model{}
	nl := d.u16()
	for i := 0; i < nl && d.err == nil; i++ {
		m.Labels = append(m.Labels, string(d.bytes(d.u16())))
	}
	if dims := d.u16(); d.err == nil && dims != NumFeatures {
		return nil, corrupt("%d features per region; spec %d has %d", dims, FeatureSpec, NumFeatures)
	}
	for i := range m.Mean {
		m.Mean[i] = d.f64()
	}
	for i := range m.Scale {
		m.Scale[i] = d.f64()
	}
	nc := d.u16()
	if d.err == nil && nc != nl+1 {
		return nil, corrupt("%d classes for %d labels; expected labels + 1", nc, nl)
	}
	for i := 0; i < nc && d.err == nil; i++ {
		var row [NumFeatures + 1]float64
		for j := range row {
			row[j] = d.f64()
		}
		m.Weights = append(m.Weights, row)
	}
	m.SegmentOptions.K = d.f64()
	m.SegmentOptions.Sigma = d.f64()
	m.SegmentOptions.WorkSize = d.u16()
	m.MinProb = d.f64()
	m.MinArea = d.f64()
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, corrupt("%d unexpected bytes after the model", len(d.b))
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// Check loads data as a model file and returns its labels: what the hub
// asks of an uploaded artifact before storing it.
func Check(ctx context.Context, data []byte) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m, err := Load(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return m.Labels, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.err = corrupt("the body ends early")
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u16() int {
	b := d.bytes(2)
	if b == nil {
		return 0
	}
	return int(binary.LittleEndian.Uint16(b))
}

func (d *decoder) f64() float64 {
	b := d.bytes(8)
	if b == nil {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b))
}
