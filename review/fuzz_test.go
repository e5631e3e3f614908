package review

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
)

// FuzzSubmission decodes arbitrary submission bodies as the review API does
// and checks them against a fixed 30x20 image with two proposals, first as a
// first review and then as a blind second one. It never panics; a refusal is
// a 400 naming the field at fault; what passes has masks of the image's
// size, each with 1 to h×w pixels inside its box, proposals used at most
// once and verdicts only for this image's proposals, every one of them in a
// first review.
func FuzzSubmission(f *testing.F) {
	const h, w = 20, 30
	box := func(x0, y0, x1, y1 int) mask.RLE {
		b := mask.NewBitmap(w, h)
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				b.Set(x, y, true)
			}
		}
		return mask.Encode(b)
	}
	pa, pb := uuid.MustParse("00000000-0000-4000-8000-00000000000a"), uuid.MustParse("00000000-0000-4000-8000-00000000000b")
	ma, mb := box(2, 2, 10, 10), box(15, 5, 28, 18)
	props := []queries.ProposalsOfImageRow{
		{ID: pa, Label: "cat", Height: h, Width: w, Counts: ma.Counts},
		{ID: pb, Label: "dog", Height: h, Width: w, Counts: mb.Counts},
	}
	labels := map[string]uuid.UUID{"cat": uuid.New(), "dog": uuid.New()}
	s := &Service{set: Settings{MaxInstances: 8}}

	seed := func(sub any) {
		j, err := json.Marshal(sub)
		require.NoError(f, err)
		f.Add(j)
	}
	seed(Submission{Instances: []Instance{{ProposalID: &pa, Label: "cat", Mask: ma}}, RejectedProposals: []uuid.UUID{pb}, TimeSpentMS: 1200})
	seed(Submission{Instances: []Instance{{ProposalID: &pb, Label: "cat", Mask: box(14, 5, 28, 19)}, {Label: "dog", Mask: box(0, 0, 30, 20)}}})
	seed(Submission{})
	seed(map[string]any{"instances": []any{map[string]any{"label": "cat", "mask": map[string]any{"size": []int{h, w}, "counts": []int{0, 600}}}}})
	f.Add([]byte(`{"instances":[{"label":"dog","mask":{"size":[20,30],"counts":"0"}}],"rejected_proposals":["00000000-0000-4000-8000-00000000000b"]}`))
	f.Add([]byte(`{"instances":null,"rejected_proposals":[null],"time_spent_ms":-1}`))

	f.Fuzz(func(t *testing.T, body []byte) {
		var sub Submission
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(&sub); err != nil {
			return // the API answers invalid_json before check is reached
		}
		for _, blind := range []bool{false, true} {
			out, verdicts, err := s.check(sub, h, w, labels, props, blind)
			if err != nil {
				var pe *problem.Error
				require.True(t, errors.As(err, &pe), "not a problem: %v", err)
				require.Equal(t, http.StatusBadRequest, pe.Status)
				require.NotEmpty(t, pe.Field)
				require.NotEmpty(t, pe.Message)
				continue
			}
			require.Len(t, out, len(sub.Instances))
			used := map[uuid.UUID]bool{}
			for _, c := range out {
				require.Equal(t, [2]int{h, w}, c.Mask.Size)
				require.Contains(t, labels, c.Label)
				require.GreaterOrEqual(t, c.area, 1)
				require.LessOrEqual(t, c.area, h*w)
				require.LessOrEqual(t, c.area, c.bbox[2]*c.bbox[3])
				require.LessOrEqual(t, c.bbox[0]+c.bbox[2], w)
				require.LessOrEqual(t, c.bbox[1]+c.bbox[3], h)
				if c.ProposalID != nil {
					require.False(t, blind, "a blind review kept a proposal")
					require.False(t, used[*c.ProposalID], "proposal used twice")
					used[*c.ProposalID] = true
					require.NotNil(t, c.iou)
					require.True(t, *c.iou >= 0 && *c.iou <= 1, "IoU %v", *c.iou)
				}
			}
			for id, v := range verdicts {
				require.Contains(t, []uuid.UUID{pa, pb}, id)
				require.Contains(t, []string{"accepted", "corrected", "rejected"}, v)
			}
			if !blind {
				require.Len(t, verdicts, len(props))
			}
		}
	})
}
