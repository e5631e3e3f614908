package labelstudio

import (
	"errors"
	"fmt"
)

// Brush RLE (value.format "rle" of a brushlabels region) is Label Studio's
// own run-length code, label_studio_converter.brush's and thi.ng's
// rle-pack's: a bit stream read most significant bit first, holding
//
//	32 bits  n, the number of values
//	5 bits   the word size minus one (8 for Label Studio's masks)
//	4×4 bits the four run-length field sizes minus one
//
// then chunks until n values are out: 1 bit repeat, 2 bits choosing a
// field size s, s bits a count c; the chunk is c+1 values, one word
// repeated c+1 times when repeat is 1, else c+1 words each read in turn.
// The values of a brush mask are its RGBA pixels, row by row (n = 4·w·h);
// the alpha channel is the mask.

// MaxBrushValues bounds n, so that a hostile header cannot ask for more
// memory than a 40-megapixel mask takes.
const MaxBrushValues = 4 * 40_000_000

type bitReader struct {
	data []byte
	pos  int // in bits
}

func (r *bitReader) read(n int) (uint32, error) {
	if r.pos+n > 8*len(r.data) {
		return 0, errors.New("the RLE ends in the middle of a value")
	}
	var v uint32
	for range n {
		b := r.data[r.pos>>3] >> (7 - r.pos&7) & 1
		v = v<<1 | uint32(b)
		r.pos++
	}
	return v, nil
}

// DecodeRLE decodes a brush RLE into its values. want, when not 0, is the
// number of values the caller expects (4·w·h); any other n is refused
// before anything is allocated. Words wider than 8 bits are refused: a
// mask's channels are bytes.
func DecodeRLE(data []byte, want int) ([]byte, error) {
	r := &bitReader{data: data}
	n32, err := r.read(32)
	if err != nil {
		return nil, errors.New("the RLE is shorter than its header")
	}
	n := int(n32)
	if want != 0 && n != want {
		return nil, fmt.Errorf("the RLE holds %d values, not the %d of the image's RGBA pixels", n, want)
	}
	if n > MaxBrushValues {
		return nil, fmt.Errorf("the RLE holds %d values, more than the %d allowed", n, MaxBrushValues)
	}
	ws, err := r.read(5)
	if err != nil {
		return nil, errors.New("the RLE is shorter than its header")
	}
	word := int(ws) + 1
	if word > 8 {
		return nil, fmt.Errorf("the RLE's words are %d bits; a mask's are at most 8", word)
	}
	var sizes [4]int
	for i := range sizes {
		s, err := r.read(4)
		if err != nil {
			return nil, errors.New("the RLE is shorter than its header")
		}
		sizes[i] = int(s) + 1
	}
	out := make([]byte, n)
	for i := 0; i < n; {
		rep, err := r.read(1)
		if err != nil {
			return nil, fmt.Errorf("at value %d of %d: %w", i, n, err)
		}
		k, err := r.read(2)
		if err != nil {
			return nil, fmt.Errorf("at value %d of %d: %w", i, n, err)
		}
		c, err := r.read(sizes[k])
		if err != nil {
			return nil, fmt.Errorf("at value %d of %d: %w", i, n, err)
		}
		j := i + 1 + int(c)
		if j > n {
			return nil, fmt.Errorf("a run at value %d of %d goes %d values past the end", i, n, j-n)
		}
		if rep == 1 {
			v, err := r.read(word)
			if err != nil {
				return nil, fmt.Errorf("at value %d of %d: %w", i, n, err)
			}
			for ; i < j; i++ {
				out[i] = byte(v)
			}
			continue
		}
		for ; i < j; i++ {
			v, err := r.read(word)
			if err != nil {
				return nil, fmt.Errorf("at value %d of %d: %w", i, n, err)
			}
			out[i] = byte(v)
		}
	}
	return out, nil
}
