package review

import (
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/queries"
)

// CommitteeMinIoU is the IoU at which two models' instances of a label
// count as the same object.
const CommitteeMinIoU = 0.5

// CommitteeAgreed is the agreement at or above which the insights count an
// image's class as one the models agree on.
const CommitteeAgreed = 0.5

// Committee is how far the models that proposed for one image agree: the
// image's figure and one per label. Models is how many took part.
type Committee struct {
	Models    int
	Agreement float64
	ByLabel   map[string]float64
}

// CommitteeOf measures the agreement of the models' proposals of one image,
// keyed by model: for every pair of models, AgreementAt with
// CommitteeMinIoU, and the mean over the pairs. Per label the same, over
// the pairs of which at least one model proposed the label. ok is false
// with fewer than two models.
func CommitteeOf(byModel map[uuid.UUID][]Labelled) (Committee, bool, error) {
	models := make([]uuid.UUID, 0, len(byModel))
	for id := range byModel {
		models = append(models, id)
	}
	if len(models) < 2 {
		return Committee{}, false, nil
	}
	// A fixed order makes the result independent of map order.
	slices.SortFunc(models, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	c := Committee{Models: len(models), ByLabel: map[string]float64{}}
	pairsByLabel := map[string]int{}
	pairs := 0
	for i := range models {
		for j := i + 1; j < len(models); j++ {
			a, b := byModel[models[i]], byModel[models[j]]
			v, err := AgreementAt(a, b, CommitteeMinIoU)
			if err != nil {
				return Committee{}, false, err
			}
			c.Agreement += v
			pairs++
			for _, label := range labelsOf(a, b) {
				v, err := AgreementAt(withLabel(a, label), withLabel(b, label), CommitteeMinIoU)
				if err != nil {
					return Committee{}, false, err
				}
				c.ByLabel[label] += v
				pairsByLabel[label]++
			}
		}
	}
	c.Agreement /= float64(pairs)
	for l, n := range pairsByLabel {
		c.ByLabel[l] /= float64(n)
	}
	return c, true, nil
}

func labelsOf(a, b []Labelled) []string {
	var out []string
	for _, in := range slices.Concat(a, b) {
		if !slices.Contains(out, in.Label) {
			out = append(out, in.Label)
		}
	}
	return out
}

func withLabel(in []Labelled, label string) []Labelled {
	var out []Labelled
	for _, x := range in {
		if x.Label == label {
			out = append(out, x)
		}
	}
	return out
}

// RecordModelAgreement stores the committee's agreement on an image that
// has just settled for review, inside the transaction that settled it:
// on its first review item, and per label. It does nothing when fewer than
// two models' runs succeeded, when the image did not go to review, or when
// the agreement is already stored.
func RecordModelAgreement(ctx context.Context, tx pgx.Tx, q *queries.Queries, image uuid.UUID) error {
	rows, err := q.CommitteeProposals(ctx, tx, image)
	if err != nil {
		return fmt.Errorf("error reading the models' proposals: %w", err)
	}
	byModel := map[uuid.UUID][]Labelled{}
	labelIDs := map[string]uuid.UUID{}
	for _, r := range rows {
		if _, ok := byModel[r.ModelID]; !ok {
			byModel[r.ModelID] = nil
		}
		if r.ProposalID == nil {
			continue
		}
		byModel[r.ModelID] = append(byModel[r.ModelID], Labelled{
			Label: *r.Label, Mask: mask.RLE{Size: [2]int{int(*r.Height), int(*r.Width)}, Counts: *r.Counts},
		})
		labelIDs[*r.Label] = *r.LabelID
	}
	c, ok, err := CommitteeOf(byModel)
	if err != nil || !ok {
		return err
	}
	a := float32(c.Agreement)
	if err := q.CommitteeAgreementSet(ctx, tx, queries.CommitteeAgreementSetParams{ImageID: image, Agreement: &a}); err != nil {
		return fmt.Errorf("error storing the models' agreement: %w", err)
	}
	if len(c.ByLabel) == 0 {
		return nil
	}
	p := queries.CommitteeLabelsInsertParams{ImageID: image, Models: int32(c.Models)}
	for label, v := range c.ByLabel {
		p.LabelIds = append(p.LabelIds, labelIDs[label])
		p.Agreements = append(p.Agreements, float32(v))
	}
	if err := q.CommitteeLabelsInsert(ctx, tx, p); err != nil {
		return fmt.Errorf("error storing the models' agreement per label: %w", err)
	}
	return nil
}
