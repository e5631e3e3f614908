// Package review is the reviewer's side of the hub: leasing the next item to
// one reviewer only, checking a submission to the last field, storing the
// final instances beside the proposals they came from, and measuring how
// far a blind second review agrees with the first.
//
// A submission is checked completely before anything is written: a bad one
// changes nothing and keeps the lease, so the reviewer can fix it and send
// again.
package review

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/webhook"
)

// Settings tune the review workflow.
type Settings struct {
	Lease        time.Duration // how long a lease lasts without renewal
	MaxInstances int           // instances in one submission
	// SecondShare is the share of first reviews drawn for a blind second
	// review; MinAgreement is the agreement below which a second review is
	// flagged to admins.
	SecondShare  float64
	MinAgreement float64
}

// Service runs reviews on one database.
type Service struct {
	pool  *pgxpool.Pool
	river *river.Client[pgx.Tx] // queues the review.submitted deliveries
	q     *queries.Queries
	set   Settings
	// draw decides whether a review gets a second one; tests replace it.
	draw func() float64
}

// NewService makes a Service.
func NewService(pool *pgxpool.Pool, client *river.Client[pgx.Tx], s Settings) *Service {
	return &Service{pool: pool, river: client, q: queries.New(), set: s, draw: rand.Float64}
}

// Filter narrows which items a reviewer is given.
type Filter struct {
	LabelID    *uuid.UUID
	CampaignID *uuid.UUID
}

// Next leases the next item to reviewer; ok is false when nothing waits.
// Open campaigns come first (ReviewLeaseCampaign), then the rest of the
// queue; each is one statement reading its heads from an index.
func (s *Service) Next(ctx context.Context, reviewer uuid.UUID, f Filter) (queries.ReviewItem, bool, error) {
	item, err := s.q.ReviewLeaseCampaign(ctx, s.pool, queries.ReviewLeaseCampaignParams{
		Reviewer: reviewer, LeaseSeconds: s.set.Lease.Seconds(), LabelID: f.LabelID, CampaignID: f.CampaignID,
	})
	if errors.Is(err, pgx.ErrNoRows) {
		item, err = s.q.ReviewLeaseRest(ctx, s.pool, queries.ReviewLeaseRestParams{
			Reviewer: reviewer, LeaseSeconds: s.set.Lease.Seconds(), LabelID: f.LabelID, CampaignID: f.CampaignID,
		})
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return queries.ReviewItem{}, false, nil
	}
	if err != nil {
		return queries.ReviewItem{}, false, fmt.Errorf("error leasing a review item: %w", err)
	}
	return item, true, nil
}

// Upcoming is the images of the n items Next would lease reviewer after
// the one they hold, in its order (others may lease them first).
func (s *Service) Upcoming(ctx context.Context, reviewer uuid.UUID, f Filter, n int) ([]uuid.UUID, error) {
	ids, err := s.q.ReviewUpcomingCampaign(ctx, s.pool, queries.ReviewUpcomingCampaignParams{
		Reviewer: reviewer, LabelID: f.LabelID, CampaignID: f.CampaignID, N: int32(n),
	})
	if err != nil {
		return nil, fmt.Errorf("error reading the next review items: %w", err)
	}
	if len(ids) < n {
		rest, err := s.q.ReviewUpcomingRest(ctx, s.pool, queries.ReviewUpcomingRestParams{
			Reviewer: reviewer, LabelID: f.LabelID, CampaignID: f.CampaignID, N: int32(n - len(ids)),
		})
		if err != nil {
			return nil, fmt.Errorf("error reading the next review items: %w", err)
		}
		ids = append(ids, rest...)
	}
	return ids, nil
}

// errLease is the answer to a submission or renewal without a live lease.
var errLease = problem.New(http.StatusConflict, "lease_lost", "",
	"This item is no longer leased to you (the lease expired or another reviewer has it). Your edits were not saved; take the next item.")

// Renew extends reviewer's lease on item.
func (s *Service) Renew(ctx context.Context, reviewer, item uuid.UUID) (time.Time, error) {
	until, err := s.q.ReviewRenew(ctx, s.pool, queries.ReviewRenewParams{ID: item, Reviewer: reviewer, LeaseSeconds: s.set.Lease.Seconds()})
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, errLease
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("error renewing lease: %w", err)
	}
	if until == nil {
		return time.Time{}, errLease
	}
	return *until, nil
}

// Release gives reviewer's lease on item back at once, so the item goes to
// the next reviewer who asks rather than after the lease runs out.
func (s *Service) Release(ctx context.Context, reviewer, item uuid.UUID) error {
	n, err := s.q.ReviewRelease(ctx, s.pool, queries.ReviewReleaseParams{ID: item, Reviewer: &reviewer})
	if err != nil {
		return fmt.Errorf("error releasing lease: %w", err)
	}
	if n == 0 {
		return errLease
	}
	return nil
}

// Instance is one final instance as a reviewer submits it.
type Instance struct {
	ProposalID *uuid.UUID `json:"proposal_id"`
	Label      string     `json:"label"`
	Mask       mask.RLE   `json:"mask"`
}

// Submission is the body of POST /api/v1/review/{item_id}.
type Submission struct {
	Instances         []Instance  `json:"instances"`
	RejectedProposals []uuid.UUID `json:"rejected_proposals"`
	TimeSpentMS       int64       `json:"time_spent_ms"`
}

// Result is what a submission stored.
type Result struct {
	Item        queries.ReviewItem
	Annotations []queries.AnnotationsOfReviewRow
}

// checked is an instance that passed every check.
type checked struct {
	Instance
	labelID uuid.UUID
	bbox    [4]int
	area    int
	iou     *float64
}

// Submit stores reviewer's final instances for item, if the lease is still
// theirs, in one transaction: the annotations (with the IoU against the
// proposal each came from), a verdict for every proposal, the item done,
// the image reviewed, and maybe a second review; a second review records
// its agreement with the first instead.
func (s *Service) Submit(ctx context.Context, reviewer, itemID uuid.UUID, sub Submission) (Result, error) {
	var res Result
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		item, err := s.q.ReviewGetForUpdate(ctx, tx, itemID)
		if errors.Is(err, pgx.ErrNoRows) {
			return problem.NotFound
		}
		if err != nil {
			return fmt.Errorf("error reading review item: %w", err)
		}
		if item.DoneAt != nil || item.LeasedBy == nil || *item.LeasedBy != reviewer || !item.LeaseLive {
			return errLease
		}
		img, err := s.q.ImageGet(ctx, tx, item.ImageID)
		if err != nil {
			return fmt.Errorf("error reading image: %w", err)
		}
		props, err := s.q.ProposalsOfImage(ctx, tx, item.ImageID)
		if err != nil {
			return fmt.Errorf("error reading proposals: %w", err)
		}
		labels, err := s.labelIDs(ctx, tx, sub.Instances)
		if err != nil {
			return err
		}
		blind := item.Kind == queries.ReviewKindSecond
		ins, verdicts, err := s.check(sub, int(img.Height), int(img.Width), labels, props, blind)
		if err != nil {
			return err
		}

		var agreement *float32
		flagged := false
		if blind {
			a, err := s.agreement(ctx, tx, item.ImageID, ins)
			if err != nil {
				return err
			}
			agreement, flagged = &a, float64(a) < s.set.MinAgreement
		} else {
			if err := s.q.AnnotationsReplace(ctx, tx, item.ImageID); err != nil {
				return fmt.Errorf("error replacing annotations: %w", err)
			}
		}
		if err := s.insert(ctx, tx, item, img, reviewer, ins); err != nil {
			return err
		}
		if len(verdicts) > 0 {
			p := queries.VerdictsInsertParams{ReviewItemID: item.ID}
			for id, v := range verdicts {
				p.ProposalIds = append(p.ProposalIds, id)
				p.Verdicts = append(p.Verdicts, v)
			}
			if err := s.q.VerdictsInsert(ctx, tx, p); err != nil {
				return fmt.Errorf("error recording verdicts: %w", err)
			}
		}
		spent := int32(min(max(sub.TimeSpentMS, 0), 24*3600*1000))
		if err := s.q.ReviewFinish(ctx, tx, queries.ReviewFinishParams{
			ID: item.ID, DoneBy: &reviewer, TimeSpentMs: &spent, Agreement: agreement, Flagged: flagged,
		}); err != nil {
			return fmt.Errorf("error finishing review: %w", err)
		}
		if !blind {
			if err := s.q.ImageMarkReviewed(ctx, tx, item.ImageID); err != nil {
				return fmt.Errorf("error marking image reviewed: %w", err)
			}
			if s.draw() < s.set.SecondShare {
				if err := s.q.ReviewQueueSecond(ctx, tx, queries.ReviewQueueSecondParams{
					ImageID: item.ImageID, Confidence: item.Confidence, ExcludedUser: &reviewer,
				}); err != nil {
					return fmt.Errorf("error queueing a second review: %w", err)
				}
			}
		}
		if err := webhook.Emit(ctx, tx, s.river, webhook.ReviewSubmitted, webhook.Review(item.ID, item.ImageID)); err != nil {
			return err
		}
		res.Item, err = s.q.ReviewGet(ctx, tx, item.ID)
		if err != nil {
			return fmt.Errorf("error reading review item: %w", err)
		}
		res.Annotations, err = s.q.AnnotationsOfReview(ctx, tx, item.ID)
		if err != nil {
			return fmt.Errorf("error reading annotations: %w", err)
		}
		return nil
	})
	return res, err
}

// labelIDs reads the labels the instances name; a name that is not among
// them is unknown.
func (s *Service) labelIDs(ctx context.Context, db queries.DBTX, ins []Instance) (map[string]uuid.UUID, error) {
	names := make([]string, len(ins))
	for i, in := range ins {
		names[i] = in.Label
	}
	ls, err := s.q.LabelGetByNames(ctx, db, names)
	if err != nil {
		return nil, fmt.Errorf("error reading labels: %w", err)
	}
	m := make(map[string]uuid.UUID, len(ls))
	for _, l := range ls {
		m[l.Name] = l.ID
	}
	return m, nil
}

// check validates a submission against the image and its proposals and
// decides each proposal's verdict: accepted when an instance keeps it
// unchanged, corrected when an instance comes from it changed, rejected
// when none does. Errors name the field at fault.
func (s *Service) check(sub Submission, h, w int, labels map[string]uuid.UUID, props []queries.ProposalsOfImageRow, blind bool) ([]checked, map[uuid.UUID]string, error) {
	bad := func(field, format string, args ...any) error {
		return problem.BadInput("invalid_review", field, fmt.Sprintf(format, args...))
	}
	if len(sub.Instances) > s.set.MaxInstances {
		return nil, nil, bad("instances", "At most %d instances per image; this has %d.", s.set.MaxInstances, len(sub.Instances))
	}
	byID := make(map[uuid.UUID]queries.ProposalsOfImageRow, len(props))
	for _, p := range props {
		byID[p.ID] = p
	}
	verdicts := map[uuid.UUID]string{}
	out := make([]checked, 0, len(sub.Instances))
	for i, in := range sub.Instances {
		f := fmt.Sprintf("instances[%d]", i)
		id, ok := labels[in.Label]
		if !ok {
			return nil, nil, bad(f+".label", "%q is not a label of the taxonomy.", in.Label)
		}
		if in.Mask.Size != [2]int{h, w} {
			return nil, nil, bad(f+".mask.size", "The mask is %v but the image is [%d, %d] ([height, width]).", in.Mask.Size, h, w)
		}
		if err := in.Mask.Validate(); err != nil {
			return nil, nil, bad(f+".mask.counts", "The mask cannot be read: %v.", err)
		}
		area, err := in.Mask.Area()
		if err != nil {
			return nil, nil, bad(f+".mask.counts", "The mask cannot be read: %v.", err)
		}
		if area == 0 {
			return nil, nil, bad(f+".mask", "The mask is empty; leave the instance out instead.")
		}
		box, err := in.Mask.BBox()
		if err != nil {
			return nil, nil, bad(f+".mask.counts", "The mask cannot be read: %v.", err)
		}
		c := checked{Instance: in, labelID: id, bbox: box, area: area}
		if in.ProposalID != nil {
			if blind {
				return nil, nil, bad(f+".proposal_id", "A second review is blind: its instances come from no proposal.")
			}
			p, ok := byID[*in.ProposalID]
			if !ok {
				return nil, nil, bad(f+".proposal_id", "%s is not a proposal of this image.", in.ProposalID)
			}
			if _, dup := verdicts[p.ID]; dup {
				return nil, nil, bad(f+".proposal_id", "Proposal %s is used by two instances.", p.ID)
			}
			iou := 1.0
			if p.Counts != in.Mask.Counts {
				iou, err = mask.IoU(mask.RLE{Size: [2]int{int(p.Height), int(p.Width)}, Counts: p.Counts}, in.Mask)
				if err != nil {
					return nil, nil, fmt.Errorf("error comparing with proposal %s: %w", p.ID, err)
				}
			}
			c.iou = &iou
			verdicts[p.ID] = "corrected"
			if p.Counts == in.Mask.Counts && p.Label == in.Label {
				verdicts[p.ID] = "accepted"
			}
		}
		out = append(out, c)
	}
	for i, id := range sub.RejectedProposals {
		if _, ok := byID[id]; !ok {
			return nil, nil, bad(fmt.Sprintf("rejected_proposals[%d]", i), "%s is not a proposal of this image.", id)
		}
		if _, used := verdicts[id]; used {
			return nil, nil, bad(fmt.Sprintf("rejected_proposals[%d]", i), "Proposal %s is both rejected and kept.", id)
		}
	}
	if !blind {
		// A proposal the reviewer neither kept nor named did not make it
		// into the final instances: it counts as rejected.
		for _, p := range props {
			if _, ok := verdicts[p.ID]; !ok {
				verdicts[p.ID] = "rejected"
			}
		}
	}
	return out, verdicts, nil
}

func (s *Service) insert(ctx context.Context, tx pgx.Tx, item queries.ReviewGetForUpdateRow, img queries.Image, author uuid.UUID, ins []checked) error {
	if len(ins) == 0 {
		return nil
	}
	p := queries.AnnotationsInsertParams{ImageID: img.ID, ReviewItemID: item.ID, Height: img.Height, Width: img.Width, AuthorID: author}
	for _, c := range ins {
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("error making annotation id: %w", err)
		}
		p.Ids = append(p.Ids, id)
		p.LabelIds = append(p.LabelIds, c.labelID)
		if c.ProposalID != nil {
			p.ProposalIds = append(p.ProposalIds, *c.ProposalID)
		} else {
			p.ProposalIds = append(p.ProposalIds, uuid.Nil)
		}
		iou := float32(-1)
		if c.iou != nil {
			iou = float32(*c.iou)
		}
		p.Ious = append(p.Ious, iou)
		p.Counts = append(p.Counts, c.Mask.Counts)
		p.Xs, p.Ys = append(p.Xs, int32(c.bbox[0])), append(p.Ys, int32(c.bbox[1]))
		p.Ws, p.Hs = append(p.Ws, int32(c.bbox[2])), append(p.Hs, int32(c.bbox[3]))
		p.Areas = append(p.Areas, int32(c.area))
		p.Hashes = append(p.Hashes, ContentHash(c.Label, c.Mask))
	}
	if err := s.q.AnnotationsInsert(ctx, tx, p); err != nil {
		return fmt.Errorf("error storing annotations: %w", err)
	}
	return nil
}

// ContentHash identifies an annotation's content for dataset manifests: the
// SHA-256 of "<label>\n<height> <width>\n<counts>".
func ContentHash(label string, m mask.RLE) []byte {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\n%d %d\n%s", label, m.Size[0], m.Size[1], m.Counts))
	return sum[:]
}

// agreement compares a second review's instances with the first review's
// annotations of the image.
func (s *Service) agreement(ctx context.Context, tx pgx.Tx, image uuid.UUID, second []checked) (float32, error) {
	first, err := s.q.FirstReviewOf(ctx, tx, image)
	if err != nil {
		return 0, fmt.Errorf("error reading the first review: %w", err)
	}
	rows, err := s.q.AnnotationsOfReview(ctx, tx, first.ID)
	if err != nil {
		return 0, fmt.Errorf("error reading the first review's annotations: %w", err)
	}
	a := make([]Labelled, len(rows))
	for i, r := range rows {
		a[i] = Labelled{Label: r.Label, Mask: mask.RLE{Size: [2]int{int(r.Height), int(r.Width)}, Counts: r.Counts}}
	}
	b := make([]Labelled, len(second))
	for i, c := range second {
		b[i] = Labelled{Label: c.Label, Mask: c.Mask}
	}
	v, err := Agreement(a, b)
	if err != nil {
		return 0, err
	}
	return float32(v), nil
}

// Labelled is an instance for Agreement.
type Labelled struct {
	Label string
	Mask  mask.RLE
}

// Agreement is the mean IoU of the matched instances of two reviews of one
// image, an unmatched instance of either counting as 0. Instances match one
// to one, same label only, greedily by the highest IoU first. Two reviews
// that both found nothing agree fully.
func Agreement(a, b []Labelled) (float64, error) {
	return AgreementAt(a, b, 0)
}

// AgreementAt is Agreement where two instances match only when their IoU
// is at least minIoU (and above 0).
func AgreementAt(a, b []Labelled, minIoU float64) (float64, error) {
	if len(a) == 0 && len(b) == 0 {
		return 1, nil
	}
	type pair struct {
		i, j int
		iou  float64
	}
	var pairs []pair
	for i := range a {
		for j := range b {
			if a[i].Label != b[j].Label {
				continue
			}
			v, err := mask.IoU(a[i].Mask, b[j].Mask)
			if err != nil {
				return 0, fmt.Errorf("error comparing masks: %w", err)
			}
			if v > 0 && v >= minIoU {
				pairs = append(pairs, pair{i, j, v})
			}
		}
	}
	// Highest IoU first; ties in input order so the result is stable.
	slices.SortStableFunc(pairs, func(x, y pair) int { return cmp.Compare(y.iou, x.iou) })
	usedA, usedB := make([]bool, len(a)), make([]bool, len(b))
	sum, matched := 0.0, 0
	for _, p := range pairs {
		if usedA[p.i] || usedB[p.j] {
			continue
		}
		usedA[p.i], usedB[p.j] = true, true
		sum += p.iou
		matched++
	}
	total := matched + (len(a) - matched) + (len(b) - matched)
	return sum / float64(total), nil
}
