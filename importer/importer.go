// Package importer brings datasets labelled elsewhere into the hub: a COCO
// instance-segmentation file and its images. Images go through intake (the
// upload's checks and dedupe) as the importer's uploads; each annotation is
// staged in imported_annotations with its provenance (source file,
// importer, original id) and becomes part of the image's first review once
// ingest has accepted the image (review.ApplyImported), so it shows in
// review and in the next dataset version like a reviewer's work.
//
// A run is idempotent and resumable: an annotation is staged once per
// source, original id and image, so running the same file again adds
// nothing, and a run cut short is finished by running it again. Staged
// annotations are applied only at the end of a run, so that ingest never
// applies half of an image's annotations.
package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deepimageshub/imagehub/dataset"
	"github.com/deepimageshub/imagehub/intake"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/review"
)

// Importer imports into one hub.
type Importer struct {
	Pool   *pgxpool.Pool
	Intake *intake.Service
	Logger *slog.Logger
}

// Options describe one run.
type Options struct {
	// Source names the file in the provenance, and makes a run's
	// annotations the same ones when it is run again.
	Source string
	// Importer is the account the images are uploaded as and the
	// annotations authored by.
	Importer uuid.UUID
	// Progress, when set, is called after each annotation read.
	Progress func(read int)
}

// Summary is what a run did.
type Summary struct {
	Images          int // distinct images the annotations are of
	ImagesCreated   int
	ImagesDuplicate int // already in the hub (their bytes)
	ImagesRefused   int // refused by intake, or missing from the folder
	Annotations     int // read and usable
	Added           int // staged by this run
	Already         int // staged by an earlier run of the same source
	Applied         int // became annotations in this run
	Waiting         int // wait for ingest to accept their images
	Skipped         int // not applied, with a reason (reported in Problems)
	Problems        []dataset.COCOProblem
}

// String is the summary as the command prints it.
func (s Summary) String() string {
	return fmt.Sprintf("images: %d (%d new, %d already here, %d refused); annotations: %d read, %d added, %d imported before, "+
		"%d applied, %d waiting for ingest, %d skipped; %d problems",
		s.Images, s.ImagesCreated, s.ImagesDuplicate, s.ImagesRefused, s.Annotations, s.Added, s.Already,
		s.Applied, s.Waiting, s.Skipped, len(s.Problems))
}

// image is what the run knows of one file name.
type image struct {
	id      uuid.UUID
	refused string // why, when it was not taken in
}

// COCO imports the COCO file r, whose images' file_name are relative to
// dir. Bad elements and refused images are reported in the summary's
// problems, with their line, and skipped; an error stops the run (run it
// again to finish).
func (im *Importer) COCO(ctx context.Context, r io.ReadSeeker, dir string, o Options) (Summary, error) {
	if strings.TrimSpace(o.Source) == "" {
		return Summary{}, errors.New("an import needs a source name")
	}
	q := queries.New()
	var sum Summary
	images := map[string]*image{}
	var touched []uuid.UUID
	labels := map[string]*uuid.UUID{} // nil: not in the taxonomy
	read := 0
	problems, err := dataset.ReadCOCO(r, func(in dataset.COCOInstance) error {
		read++
		if o.Progress != nil {
			defer o.Progress(read)
		}
		sum.Annotations++
		lid, ok := labels[in.Label]
		if !ok {
			found, err := im.Intake.ResolveLabels(ctx, []string{in.Label})
			if err == nil && len(found) == 1 {
				lid = &found[0].ID
			}
			labels[in.Label] = lid
		}
		if lid == nil {
			sum.Problems = append(sum.Problems, dataset.COCOProblem{Line: in.Line,
				What: fmt.Sprintf("annotation %s: label %q is not in the taxonomy (add it with imagehub labels import)", in.ID, in.Label)})
			return nil
		}
		img, err := im.image(ctx, dir, in.Image.FileName, o.Importer, images, &sum, &touched)
		if err != nil {
			return err
		}
		if img.refused != "" {
			sum.Problems = append(sum.Problems, dataset.COCOProblem{Line: in.Line,
				What: fmt.Sprintf("annotation %s: image %s %s", in.ID, in.Image.FileName, img.refused)})
			return nil
		}
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("error making an id: %w", err)
		}
		n, err := q.ImportedAnnotationInsert(ctx, im.Pool, queries.ImportedAnnotationInsertParams{
			ID: id, ImageID: img.id, Source: o.Source, OriginalID: in.ID, ImporterID: o.Importer, LabelID: *lid,
			Height: int32(in.Mask.Size[0]), Width: int32(in.Mask.Size[1]), Counts: in.Mask.Counts,
		})
		if err != nil {
			return fmt.Errorf("error staging annotation %s: %w", in.ID, err)
		}
		if n == 1 {
			sum.Added++
		} else {
			sum.Already++
		}
		return nil
	})
	sum.Problems = append(problems, sum.Problems...)
	if err != nil {
		return sum, err
	}
	if err := im.apply(ctx, o.Source, touched, &sum); err != nil {
		return sum, err
	}
	return sum, nil
}

// image takes a file in through intake, once per run.
func (im *Importer) image(ctx context.Context, dir, name string, by uuid.UUID, images map[string]*image, sum *Summary, touched *[]uuid.UUID) (*image, error) {
	if img, ok := images[name]; ok {
		return img, nil
	}
	img := &image{}
	images[name] = img
	sum.Images++
	rel := filepath.FromSlash(name)
	if !filepath.IsLocal(rel) {
		img.refused = "is not inside the images folder"
		sum.ImagesRefused++
		return img, nil
	}
	f, err := intake.HashFile(filepath.Join(dir, rel), filepath.Base(rel))
	if errors.Is(err, os.ErrNotExist) {
		img.refused = "is not in the images folder"
		sum.ImagesRefused++
		return img, nil
	}
	if err != nil {
		return nil, err
	}
	out, err := im.Intake.Add(ctx, by, f, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("error taking in %s: %w", name, err)
	}
	switch out.Status {
	case intake.Refused:
		img.refused = "was refused: " + out.Refusal.Message
		sum.ImagesRefused++
		return img, nil
	case intake.Created:
		sum.ImagesCreated++
	default:
		sum.ImagesDuplicate++
	}
	img.id = out.Image.ID
	*touched = append(*touched, img.id)
	return img, nil
}

// apply readies the run's staged annotations and applies those of images
// ingest has accepted; the others are applied by ingest when it accepts
// them.
func (im *Importer) apply(ctx context.Context, source string, touched []uuid.UUID, sum *Summary) error {
	q := queries.New()
	if err := q.ImportedReady(ctx, im.Pool, queries.ImportedReadyParams{Source: source, ImageIds: touched}); err != nil {
		return fmt.Errorf("error readying imported annotations: %w", err)
	}
	for _, id := range touched {
		err := pgx.BeginFunc(ctx, im.Pool, func(tx pgx.Tx) error {
			img, err := q.ImageGetForUpdate(ctx, tx, id)
			if err != nil {
				return fmt.Errorf("error reading image %s: %w", id, err)
			}
			pending, err := q.ImportedPendingOfImage(ctx, tx, id)
			if err != nil {
				return fmt.Errorf("error reading imported annotations: %w", err)
			}
			if len(pending) == 0 {
				return nil
			}
			var reason string
			switch img.Status {
			case queries.ImageStatusUploaded, queries.ImageStatusProcessing:
				sum.Waiting += len(pending)
				return nil
			case queries.ImageStatusAwaitingInference, queries.ImageStatusAwaitingReview:
				n, err := review.ApplyImported(ctx, tx, img)
				if err != nil {
					return err
				}
				sum.Applied += n
				sum.Skipped += len(pending) - n
				if n < len(pending) {
					sum.Problems = append(sum.Problems, dataset.COCOProblem{What: fmt.Sprintf("image %s: %d annotations skipped (their masks are not the image's size, or a reviewer reviewed it first)", img.Filename, len(pending)-n)})
				}
				return nil
			case queries.ImageStatusReviewed:
				reason = "the image was reviewed already; its review stands"
			default:
				reason = fmt.Sprintf("the image is %s", img.Status)
			}
			if _, err := q.ImportedSkipPendingOfImage(ctx, tx, queries.ImportedSkipPendingOfImageParams{ImageID: id, Skipped: &reason}); err != nil {
				return fmt.Errorf("error skipping imported annotations: %w", err)
			}
			sum.Skipped += len(pending)
			sum.Problems = append(sum.Problems, dataset.COCOProblem{What: fmt.Sprintf("image %s: %d annotations skipped: %s", img.Filename, len(pending), reason)})
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
