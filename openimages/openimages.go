// Package openimages reads the CSV files of the Open Images dataset that bulk
// import uses: class descriptions (MID → display name) and image-level labels.
// FORMATS.md describes them.
package openimages

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode"
)

// Class is one row of a class-descriptions file.
type Class struct {
	MID         string // e.g. /m/01yrx
	DisplayName string // e.g. Cat
}

// Name is the label name the hub uses for a class: its display name in lower
// case with inner spaces kept ("Traffic light" → "traffic light").
func (c Class) Name() string {
	return strings.Join(strings.Fields(strings.ToLower(c.DisplayName)), " ")
}

// ReadClasses reads a class-descriptions CSV: two columns, LabelName and
// DisplayName, with or without a header row (older files have none).
func ReadClasses(r io.Reader) ([]Class, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 2
	cr.ReuseRecord = true
	var out []Class
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("class descriptions line %d: %w", line, err)
		}
		mid, name := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1])
		if line == 1 {
			// Only a file's first bytes can be a byte-order mark.
			mid = strings.TrimSpace(strings.TrimPrefix(rec[0], "\ufeff"))
			if strings.EqualFold(mid, "LabelName") {
				continue
			}
		}
		if mid == "" || name == "" {
			return nil, fmt.Errorf("class descriptions line %d: empty field", line)
		}
		if err := printable(mid, name); err != nil {
			return nil, fmt.Errorf("class descriptions line %d: %w", line, err)
		}
		out = append(out, Class{MID: mid, DisplayName: name})
	}
}

// ImageLabel is one row of an image-level labels file.
type ImageLabel struct {
	ImageID    string
	Source     string
	MID        string
	Confidence float64
}

// ReadImageLabels reads an image-level labels CSV
// (ImageID,Source,LabelName,Confidence) and returns, for each image, the MIDs
// it is labelled with. Rows with Confidence 0 say the class was verified
// absent: they are not labels and are skipped. It holds the whole file in
// memory; bulk import streams it with ImageLabelReader instead.
func ReadImageLabels(r io.Reader) (map[string][]string, error) {
	lr, err := NewImageLabelReader(r)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for {
		id, mid, err := lr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out[id] = append(out[id], mid)
	}
}

// ImageLabelReader reads an image-level labels CSV one row at a time, so a
// file of millions of rows is never held in memory.
type ImageLabelReader struct {
	cr                  *csv.Reader
	line                int
	idCol, midCol, conf int
}

// NewImageLabelReader reads the header row and finds the ImageID, LabelName
// and Confidence columns (in any order, Source and others ignored).
func NewImageLabelReader(r io.Reader) (*ImageLabelReader, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("image labels header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))] = i
	}
	for _, need := range []string{"ImageID", "LabelName", "Confidence"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("image labels: no %s column in header %v", need, header)
		}
	}
	return &ImageLabelReader{cr: cr, line: 1, idCol: col["ImageID"], midCol: col["LabelName"], conf: col["Confidence"]}, nil
}

// Next returns the next label row's image id and MID, skipping rows with
// Confidence 0 (the class verified absent: not a label). At the end of the
// file it returns io.EOF; a bad row is an error naming its line.
func (lr *ImageLabelReader) Next() (imageID, mid string, err error) {
	for {
		lr.line++
		rec, err := lr.cr.Read()
		if errors.Is(err, io.EOF) {
			return "", "", io.EOF
		}
		if err != nil {
			return "", "", fmt.Errorf("image labels line %d: %w", lr.line, err)
		}
		conf, err := strconv.ParseFloat(strings.TrimSpace(rec[lr.conf]), 64)
		// ParseFloat reads "NaN" and "Inf" too; neither is a confidence.
		if err != nil || math.IsNaN(conf) || math.IsInf(conf, 0) {
			return "", "", fmt.Errorf("image labels line %d: confidence %q is not a number", lr.line, rec[lr.conf])
		}
		if conf <= 0 {
			continue
		}
		id, mid := strings.TrimSpace(rec[lr.idCol]), strings.TrimSpace(rec[lr.midCol])
		if id == "" || mid == "" {
			return "", "", fmt.Errorf("image labels line %d: empty ImageID or LabelName", lr.line)
		}
		if err := printable(id, mid); err != nil {
			return "", "", fmt.Errorf("image labels line %d: %w", lr.line, err)
		}
		return id, mid, nil
	}
}

// printable refuses fields with control characters: a line break inside a
// quoted field (which encoding/csv turns from CRLF into LF) or a tab would
// end up in a label's name or an image's file name.
func printable(fields ...string) error {
	for _, f := range fields {
		if i := strings.IndexFunc(f, unicode.IsControl); i >= 0 {
			return fmt.Errorf("%q holds the control character %U", f, []rune(f[i:])[0])
		}
	}
	return nil
}
