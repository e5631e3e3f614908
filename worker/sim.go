package worker

import (
	"encoding/binary"
	"encoding/json"
	"math"

	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/oip"
	"github.com/deepimageshub/imagehub/worker/segment"
)

// Malformation is one way a simulated answer breaks the convention.
type Malformation string

// The malformations.
const (
	WrongMaskSize   Malformation = "wrong_mask_size"    // the first mask is one row taller than the image
	NaNScore        Malformation = "nan_score"          // the first score is NaN (SCORES then travels binary)
	ScoreOutOfRange Malformation = "score_out_of_range" // the first score is 1.5
	UnknownLabel    Malformation = "unknown_label"      // the first label is one nobody knows
	MissingOutput   Malformation = "missing_output"     // SCORES is left out
	CountMismatch   Malformation = "count_mismatch"     // LABELS has one element fewer than MASKS
	WrongID         Malformation = "wrong_id"           // the answer's id is not the request's
	BadRLE          Malformation = "bad_rle"            // the first mask is not a valid mask
	WrongShape      Malformation = "wrong_shape"        // MASKS has an extra dimension
	WrongDatatype   Malformation = "wrong_datatype"     // SCORES is FP64
	NotJSON         Malformation = "not_json"           // the body is an HTML page
)

// AllMalformations lists every Malformation.
var AllMalformations = []Malformation{
	WrongMaskSize, NaNScore, ScoreOutOfRange, UnknownLabel, MissingOutput,
	CountMismatch, WrongID, BadRLE, WrongShape, WrongDatatype, NotJSON,
}

// fate is what the simulation decided for one request.
type fate struct {
	timeout, fail, malformed bool
	kind                     Malformation
}

// draw decides a request's fate. It always takes the same number of draws,
// so the sequence does not depend on the rates.
func (s *Server) draw() fate {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, f, m := s.rng.Float64(), s.rng.Float64(), s.rng.Float64()
	k := s.rng.IntN(len(s.cfg.Malformations))
	return fate{
		timeout:   t < s.cfg.TimeoutRate,
		fail:      f < s.cfg.FailRate,
		malformed: m < s.cfg.MalformedRate,
		kind:      s.cfg.Malformations[k],
	}
}

// ensureInstance gives the first image an instance when none was found, so
// that there is something to break.
func ensureInstance(results []result) {
	for _, r := range results {
		if len(r.ins) > 0 {
			return
		}
	}
	r := &results[0]
	bm := mask.NewBitmap(r.w, r.h)
	for y := r.h / 4; y < max(r.h*3/4, r.h/4+1); y++ {
		for x := r.w / 4; x < max(r.w*3/4, r.w/4+1); x++ {
			bm.Set(x, y, true)
		}
	}
	r.ins = []segment.Instance{{Mask: bm, Score: 0.5}}
	r.labels = []string{defaultLabel}
}

// malform breaks resp in the way kind says; binary is updated where the
// break needs the binary form.
func malform(resp *oip.InferResponse, kind Malformation, results []result, binaryOut map[string]bool) {
	masks, scores, labels := resp.Output(outMasks), resp.Output(outScores), resp.Output(outLabels)
	w, h := results[0].w, results[0].h
	switch kind {
	case WrongMaskSize:
		if masks == nil {
			return
		}
		if masks.Datatype == oip.BYTES {
			bm := mask.NewBitmap(w, h+1)
			bm.Set(0, 0, true)
			masks.Elems[0], _ = json.Marshal(mask.Encode(bm))
			return
		}
		n := int(masks.Shape[0])
		raw := make([]byte, 0, n*(h+1)*w)
		for i := range n {
			raw = append(raw, masks.Raw[i*h*w:(i+1)*h*w]...)
			raw = append(raw, make([]byte, w)...)
		}
		masks.Raw, masks.Shape = raw, []int64{int64(n), int64(h + 1), int64(w)}
	case NaNScore, ScoreOutOfRange:
		if scores == nil {
			return
		}
		v := float32(1.5)
		if kind == NaNScore {
			v = float32(math.NaN())
			binaryOut[outScores] = true
		}
		binary.LittleEndian.PutUint32(scores.Raw, math.Float32bits(v))
	case UnknownLabel:
		if labels != nil {
			labels.Elems[0] = []byte("unheard-of-label-7f3a")
		}
	case MissingOutput:
		out := resp.Outputs[:0]
		for _, t := range resp.Outputs {
			if t.Name != outScores {
				out = append(out, t)
			}
		}
		resp.Outputs = out
	case CountMismatch:
		if labels != nil {
			labels.Elems = labels.Elems[:len(labels.Elems)-1]
			labels.Shape = []int64{int64(len(labels.Elems))}
		}
	case WrongID:
		resp.ID = "not-" + resp.ID
	case BadRLE:
		if masks == nil {
			return
		}
		if masks.Datatype == oip.BYTES {
			masks.Elems[0], _ = json.Marshal(mask.RLE{Size: [2]int{h, w}, Counts: "!!not-rle"})
			return
		}
		masks.Raw[0] = 7
	case WrongShape:
		if masks != nil {
			masks.Shape = append([]int64{1}, masks.Shape...)
		}
	case WrongDatatype:
		if scores == nil {
			return
		}
		f, _ := scores.Float32s()
		raw := make([]byte, 0, 8*len(f))
		for _, v := range f {
			raw = binary.LittleEndian.AppendUint64(raw, math.Float64bits(float64(v)))
		}
		scores.Datatype, scores.Raw = oip.FP64, raw
	}
}
