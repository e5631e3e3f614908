package review

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/queries"
)

// ApplyImported makes an image's staged imported annotations (those not
// imported as proposals) (see
// imported_annotations) its first review, done by their importer, and marks
// the image reviewed, in tx. It applies only to an image ingest has
// accepted (awaiting inference or review) whose first review is not done;
// it returns how many annotations it wrote, 0 when there was nothing to
// apply. Masks whose size is not the image's (the image was rotated by
// its EXIF orientation on the way in) are skipped with the reason.
// Callers lock the image row first (ingest's finish and the importer
// both do), so that staging and applying never miss each other.
func ApplyImported(ctx context.Context, tx pgx.Tx, img queries.Image) (int, error) {
	q := queries.New()
	if img.Status != queries.ImageStatusAwaitingInference && img.Status != queries.ImageStatusAwaitingReview {
		return 0, nil
	}
	rows, err := q.ImportedPendingOfImage(ctx, tx, img.ID)
	if err != nil {
		return 0, fmt.Errorf("error reading imported annotations: %w", err)
	}
	var ok []queries.ImportedPendingOfImageRow
	var wrong []uuid.UUID
	for _, r := range rows {
		if r.ModelID != nil {
			continue // a proposal: ApplyImportedProposals
		}
		if r.Height != img.Height || r.Width != img.Width {
			wrong = append(wrong, r.ID)
			continue
		}
		ok = append(ok, r)
	}
	if len(wrong) > 0 {
		reason := fmt.Sprintf("the mask's size is not the image's %dx%d (rotated on intake?)", img.Width, img.Height)
		if err := q.ImportedSkip(ctx, tx, queries.ImportedSkipParams{Ids: wrong, Skipped: &reason}); err != nil {
			return 0, fmt.Errorf("error skipping imported annotations: %w", err)
		}
	}
	if len(ok) == 0 {
		return 0, nil
	}
	item, err := q.ReviewFirstImported(ctx, tx, queries.ReviewFirstImportedParams{ImageID: img.ID, DoneBy: &ok[0].ImporterID})
	if err == pgx.ErrNoRows {
		// A reviewer finished the first review meanwhile: theirs stands.
		reason := "the image's first review was done by a reviewer first"
		ids := make([]uuid.UUID, len(ok))
		for i, r := range ok {
			ids[i] = r.ID
		}
		return 0, q.ImportedSkip(ctx, tx, queries.ImportedSkipParams{Ids: ids, Skipped: &reason})
	}
	if err != nil {
		return 0, fmt.Errorf("error recording the imported review: %w", err)
	}
	if err := q.AnnotationsReplace(ctx, tx, img.ID); err != nil {
		return 0, fmt.Errorf("error replacing annotations: %w", err)
	}
	ids := make([]uuid.UUID, 0, len(ok))
	for _, r := range ok {
		m := mask.RLE{Size: [2]int{int(r.Height), int(r.Width)}, Counts: r.Counts}
		area, err := m.Area()
		if err != nil {
			return 0, fmt.Errorf("error reading imported mask %s: %w", r.ID, err)
		}
		box, err := m.BBox()
		if err != nil {
			return 0, fmt.Errorf("error reading imported mask %s: %w", r.ID, err)
		}
		id, err := uuid.NewV7()
		if err != nil {
			return 0, fmt.Errorf("error making annotation id: %w", err)
		}
		importedID := r.ID
		if err := q.AnnotationImportedInsert(ctx, tx, queries.AnnotationImportedInsertParams{
			ID: id, ImageID: img.ID, ReviewItemID: item, LabelID: r.LabelID, Height: r.Height, Width: r.Width,
			Counts: r.Counts, Bbox: []int32{int32(box[0]), int32(box[1]), int32(box[2]), int32(box[3])}, Area: int32(area),
			ContentSha256: ContentHash(r.LabelName, m), AuthorID: r.ImporterID, ImportedID: &importedID,
		}); err != nil {
			return 0, fmt.Errorf("error storing an imported annotation: %w", err)
		}
		ids = append(ids, r.ID)
	}
	if err := q.ImportedMarkApplied(ctx, tx, ids); err != nil {
		return 0, fmt.Errorf("error marking imported annotations applied: %w", err)
	}
	if err := q.ImageMarkImported(ctx, tx, img.ID); err != nil {
		return 0, fmt.Errorf("error marking image reviewed: %w", err)
	}
	return len(ids), nil
}

// ApplyImportedProposals makes an image's staged annotations imported as
// proposals (--as-proposals) proposals of their import's model, with a
// succeeded run of it, and settles the image as inference does: once no
// other model's run is pending it waits for review, where the reviewer
// checks the imported masks like a model's. Call it after queueing the
// image's inference, so that settling waits for those runs too; failed is
// the reason the image gets should every run have failed. It returns how
// many proposals it wrote.
func ApplyImportedProposals(ctx context.Context, tx pgx.Tx, img queries.Image, failed string) (int, error) {
	q := queries.New()
	if img.Status != queries.ImageStatusAwaitingInference && img.Status != queries.ImageStatusAwaitingReview {
		return 0, nil
	}
	rows, err := q.ImportedPendingOfImage(ctx, tx, img.ID)
	if err != nil {
		return 0, fmt.Errorf("error reading imported annotations: %w", err)
	}
	perModel := map[uuid.UUID]int32{}
	var ids, wrong []uuid.UUID
	for _, r := range rows {
		if r.ModelID == nil {
			continue
		}
		if r.Height != img.Height || r.Width != img.Width {
			wrong = append(wrong, r.ID)
			continue
		}
		m := mask.RLE{Size: [2]int{int(r.Height), int(r.Width)}, Counts: r.Counts}
		area, err := m.Area()
		if err != nil {
			return 0, fmt.Errorf("error reading imported mask %s: %w", r.ID, err)
		}
		box, _ := m.BBox()
		id, err := uuid.NewV7()
		if err != nil {
			return 0, fmt.Errorf("error making proposal id: %w", err)
		}
		if err := q.ProposalImportedInsert(ctx, tx, queries.ProposalImportedInsertParams{
			ID: id, ImageID: img.ID, ModelID: *r.ModelID, LabelID: r.LabelID,
			Bbox: []int32{int32(box[0]), int32(box[1]), int32(box[2]), int32(box[3])}, Area: int32(area),
			Height: r.Height, Width: r.Width, Counts: r.Counts,
		}); err != nil {
			return 0, fmt.Errorf("error storing an imported proposal: %w", err)
		}
		perModel[*r.ModelID]++
		ids = append(ids, r.ID)
	}
	if len(wrong) > 0 {
		reason := fmt.Sprintf("the mask's size is not the image's %dx%d (rotated on intake?)", img.Width, img.Height)
		if err := q.ImportedSkip(ctx, tx, queries.ImportedSkipParams{Ids: wrong, Skipped: &reason}); err != nil {
			return 0, fmt.Errorf("error skipping imported annotations: %w", err)
		}
	}
	if len(ids) == 0 {
		return 0, nil
	}
	for model, n := range perModel {
		if err := q.InferenceRunImported(ctx, tx, queries.InferenceRunImportedParams{ImageID: img.ID, ModelID: model, Instances: &n}); err != nil {
			return 0, fmt.Errorf("error recording the imported run: %w", err)
		}
	}
	if err := q.ImportedMarkApplied(ctx, tx, ids); err != nil {
		return 0, fmt.Errorf("error marking imported annotations applied: %w", err)
	}
	if err := q.ImageSettle(ctx, tx, queries.ImageSettleParams{ImageID: img.ID, FailedReason: failed}); err != nil {
		return 0, fmt.Errorf("error settling image: %w", err)
	}
	if err := RecordModelAgreement(ctx, tx, q, img.ID); err != nil {
		return 0, err
	}
	return len(ids), nil
}
