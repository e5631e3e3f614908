// Package dataset builds the hub's product: immutable dataset versions and
// their downloads. A dataset is a saved filter over reviewed images and split
// ratios (Spec); publishing writes a version's manifest, class histogram and
// diff set-based in SQL (Publish); a download streams a subset of a version
// as a zip, the same bytes every time (Exporter).
//
// Splits are decided by a hash, never stored as a choice: an image's split is
// a function of the dataset's seed and the sha256 of the root of its
// near-duplicate group, so it is the same in every version, and
// near-duplicates always share it. The SQL that publishes computes the same
// function as Bucket (queries/datasets.sql, VersionManifestInsert).
package dataset

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/deepimageshub/imagehub/problem"
)

// Split is train, val or test.
type Split string

// The splits, in the order pages and READMEs list them.
const (
	Train Split = "train"
	Val   Split = "val"
	Test  Split = "test"
)

// Splits lists every split.
var Splits = []Split{Train, Val, Test}

// ParseSplit reads a split's name.
func ParseSplit(s string) (Split, bool) {
	switch Split(s) {
	case Train, Val, Test:
		return Split(s), true
	}
	return "", false
}

// PPM is the whole of a ratio: ratios are whole parts per million, so that an
// image's split is an exact integer comparison in Go and in SQL alike.
const PPM = 1_000_000

// Ratios are the shares of train, val and test in parts per million; they
// add up to PPM.
type Ratios struct {
	Train, Val, Test int
}

// DefaultRatios are 80% train, 10% val, 10% test.
var DefaultRatios = Ratios{Train: 800_000, Val: 100_000, Test: 100_000}

// NewRatios turns fractions that add up to 1 (within a millionth) into
// Ratios.
func NewRatios(train, val, test float64) (Ratios, error) {
	for _, f := range []float64{train, val, test} {
		if math.IsNaN(f) || f < 0 || f > 1 {
			return Ratios{}, problem.BadInput("invalid_splits", "splits", "Each split is a share from 0 to 1, e.g. {\"train\": 0.8, \"val\": 0.1, \"test\": 0.1}.")
		}
	}
	if math.Abs(train+val+test-1) > 1e-6 {
		return Ratios{}, problem.BadInput("invalid_splits", "splits", fmt.Sprintf("The splits must add up to 1; these add up to %g.", train+val+test))
	}
	r := Ratios{Train: int(math.Round(train * PPM)), Val: int(math.Round(val * PPM))}
	r.Test = PPM - r.Train - r.Val
	if r.Test < 0 {
		r.Val += r.Test
		r.Test = 0
	}
	if r.Train == 0 && r.Val == 0 && r.Test == 0 {
		return Ratios{}, problem.BadInput("invalid_splits", "splits", "At least one split needs a share above 0.")
	}
	return r, nil
}

// Fractions returns the ratios as shares of 1.
func (r Ratios) Fractions() (train, val, test float64) {
	return float64(r.Train) / PPM, float64(r.Val) / PPM, float64(r.Test) / PPM
}

// Of returns the split of a bucket (see Bucket).
func (r Ratios) Of(bucket int) Split {
	switch {
	case bucket < r.Train:
		return Train
	case bucket < r.Train+r.Val:
		return Val
	default:
		return Test
	}
}

// Bucket places an image in [0, PPM): the first 8 bytes of
// SHA-256(seed ‖ group), read big-endian without the sign bit, modulo PPM.
// group is the sha256 of the root of the image's near-duplicate group (the
// image's own when it has none). The modulo's bias is below 1e-13.
func Bucket(seed, group []byte) int {
	h := sha256.New()
	h.Write(seed)
	h.Write(group)
	sum := h.Sum(nil)
	return int((binary.BigEndian.Uint64(sum[:8]) & math.MaxInt64) % PPM)
}

// Assign returns the split of an image whose near-duplicate group has root
// sha256 group, in a dataset of seed and ratios r.
func Assign(seed, group []byte, r Ratios) Split {
	return r.Of(Bucket(seed, group))
}

// NewSeed returns a dataset's random seed. Two datasets over the same images
// split them differently; one dataset splits them the same way forever.
func NewSeed() []byte {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return b
}
