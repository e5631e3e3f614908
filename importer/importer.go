// Package importer brings datasets labelled elsewhere into the hub: a COCO
// instance-segmentation file and its images, or Open Images object
// segmentations (their masks CSV, PNG masks and images). Images go through intake (the
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
	"encoding/csv"
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
	"github.com/deepimageshub/imagehub/lifecycle"
	"github.com/deepimageshub/imagehub/mask"
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
	// AsProposals makes the annotations proposals of a model named for
	// the source (ModelName), for reviewers to check like a model's,
	// instead of the images' first reviews.
	AsProposals bool
}

// ModelName is the model an import's proposals belong to: "imported-" and
// the source, with what a model name may not hold replaced by '-'.
func ModelName(source string) string {
	b := []byte("imported-" + source)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			b[i] = '-'
		}
	}
	return string(b[:min(len(b), 128)])
}

// Summary is what a run did.
type Summary struct {
	Images          int // distinct images the annotations are of
	ImagesCreated   int
	ImagesDuplicate int // already in the hub (their bytes)
	ImagesRefused   int // refused by intake, or missing from the folder
	Annotations     int // read and staged, now or by an earlier run
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
	w, h    int
	refused string // why, when it was not taken in
}

// COCO imports the COCO file r, whose images' file_name are relative to
// dir. Bad elements and refused images are reported in the summary's
// problems, with their line, and skipped; an error stops the run (run it
// again to finish).
func (im *Importer) COCO(ctx context.Context, r io.ReadSeeker, dir string, o Options) (Summary, error) {
	rn, err := im.newRun(ctx, dir, o)
	if err != nil {
		return Summary{}, err
	}
	problems, err := dataset.ReadCOCO(r, func(in dataset.COCOInstance) error {
		lid, ok := rn.labels[in.Label]
		if !ok {
			found, err := im.Intake.ResolveLabels(ctx, []string{in.Label})
			if err == nil && len(found) == 1 {
				lid = &found[0].ID
			}
			rn.labels[in.Label] = lid
		}
		return rn.stage(ctx, in.Line, in.ID, in.Image.FileName, lid, in.Label, func(int, int) (mask.RLE, error) { return in.Mask, nil })
	})
	rn.sum.Problems = append(problems, rn.sum.Problems...)
	if err != nil {
		return rn.sum, err
	}
	err = im.apply(ctx, o.Source, rn.touched, &rn.sum)
	return rn.sum, err
}

// run is one import's state: the images and labels it has resolved.
type run struct {
	im      *Importer
	o       Options
	dir     string
	sum     Summary
	images  map[string]*image
	labels  map[string]*uuid.UUID // nil: not in the taxonomy
	touched []uuid.UUID
	read    int
	model   *uuid.UUID // with AsProposals
}

// newRun starts a run, with its model when it imports proposals.
func (im *Importer) newRun(ctx context.Context, dir string, o Options) (*run, error) {
	if strings.TrimSpace(o.Source) == "" {
		return nil, errors.New("an import needs a source name")
	}
	rn := &run{im: im, o: o, dir: dir, images: map[string]*image{}, labels: map[string]*uuid.UUID{}}
	if o.AsProposals {
		id, err := queries.New().ModelEnsureImported(ctx, im.Pool, ModelName(o.Source))
		if err != nil {
			return nil, fmt.Errorf("error making the import's model: %w", err)
		}
		rn.model = &id
	}
	return rn, nil
}

// stage takes in the image of one annotation and stages the annotation;
// maskOf gives the mask at the image's width and height. A problem with
// the row is reported with its line and the row skipped.
func (rn *run) stage(ctx context.Context, line int, origID, fileName string, label *uuid.UUID, labelName string,
	maskOf func(w, h int) (mask.RLE, error)) error {
	rn.read++
	if rn.o.Progress != nil {
		defer rn.o.Progress(rn.read)
	}
	rn.sum.Annotations++
	skip := func(what string) error {
		rn.sum.Problems = append(rn.sum.Problems, dataset.COCOProblem{Line: line, What: fmt.Sprintf("annotation %s: %s", origID, what)})
		rn.sum.Annotations--
		return nil
	}
	if label == nil {
		return skip(fmt.Sprintf("label %q is not in the taxonomy (add it with imagehub labels import)", labelName))
	}
	img, err := rn.im.image(ctx, rn.dir, fileName, rn.o.Importer, rn.images, &rn.sum, &rn.touched)
	if err != nil {
		return err
	}
	if img.refused != "" {
		return skip(fmt.Sprintf("image %s %s", fileName, img.refused))
	}
	m, err := maskOf(img.w, img.h)
	if err != nil {
		return skip(err.Error())
	}
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("error making an id: %w", err)
	}
	n, err := queries.New().ImportedAnnotationInsert(ctx, rn.im.Pool, queries.ImportedAnnotationInsertParams{
		ID: id, ImageID: img.id, Source: rn.o.Source, OriginalID: origID, ImporterID: rn.o.Importer, LabelID: *label,
		Height: int32(m.Size[0]), Width: int32(m.Size[1]), Counts: m.Counts, ModelID: rn.model,
	})
	if err != nil {
		return fmt.Errorf("error staging annotation %s: %w", origID, err)
	}
	if n == 1 {
		rn.sum.Added++
	} else {
		rn.sum.Already++
	}
	return nil
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
	img.id, img.w, img.h = out.Image.ID, int(out.Image.Width), int(out.Image.Height)
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
				p, err := review.ApplyImportedProposals(ctx, tx, img, lifecycle.ReasonNoProposals)
				if err != nil {
					return err
				}
				n += p
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

// OpenImages imports Open Images object segmentations: the CSV
// MaskPath,ImageID,LabelName,BoxID,… (FORMATS.md), with the images as
// <ImageID>.jpg in imagesDir and the PNG masks under masksDir. A mask is
// scaled to its image by nearest neighbour (Open Images masks often have
// another resolution); the label is the taxonomy's label of the MID
// (imagehub labels import adds them); the original id is the mask's path.
func (im *Importer) OpenImages(ctx context.Context, csvFile io.Reader, masksDir, imagesDir string, o Options) (Summary, error) {
	rn, err := im.newRun(ctx, imagesDir, o)
	if err != nil {
		return Summary{}, err
	}
	cr := csv.NewReader(csvFile)
	cr.ReuseRecord = true
	var head []string
	head, err = cr.Read()
	if err != nil {
		return rn.sum, fmt.Errorf("error reading the masks CSV's header: %w", err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))] = i
	}
	for _, want := range []string{"MaskPath", "ImageID", "LabelName"} {
		if _, ok := col[want]; !ok {
			return rn.sum, fmt.Errorf("the masks CSV has no %s column (its header is %s)", want, strings.Join(head, ","))
		}
	}
	cr.FieldsPerRecord = len(head)
	q := queries.New()
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				rn.sum.Problems = append(rn.sum.Problems, dataset.COCOProblem{Line: pe.Line, What: "not a row of the masks CSV: " + pe.Err.Error()})
				continue
			}
			return rn.sum, fmt.Errorf("error reading the masks CSV: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return rn.sum, err
		}
		line, _ := cr.FieldPos(0)
		path, imageID, mid := rec[col["MaskPath"]], rec[col["ImageID"]], rec[col["LabelName"]]
		lid, ok := rn.labels[mid]
		if !ok {
			l, err := q.LabelGetByExternalID(ctx, im.Pool, &mid)
			switch {
			case err == nil:
				lid = &l.ID
			case !errors.Is(err, pgx.ErrNoRows):
				return rn.sum, fmt.Errorf("error reading label %s: %w", mid, err)
			}
			rn.labels[mid] = lid
		}
		err = rn.stage(ctx, line, path, imageID+".jpg", lid, mid, func(w, h int) (mask.RLE, error) {
			return readMask(masksDir, path, w, h)
		})
		if err != nil {
			return rn.sum, err
		}
	}
	err = im.apply(ctx, o.Source, rn.touched, &rn.sum)
	return rn.sum, err
}

// readMask reads an Open Images PNG mask and scales it to w×h.
func readMask(dir, path string, w, h int) (mask.RLE, error) {
	rel := filepath.FromSlash(path)
	if !filepath.IsLocal(rel) {
		return mask.RLE{}, fmt.Errorf("mask %s is not inside the masks folder", path)
	}
	f, err := os.Open(filepath.Join(dir, rel))
	if err != nil {
		return mask.RLE{}, fmt.Errorf("mask %s is not in the masks folder", path)
	}
	defer f.Close()
	b, err := mask.FromPNG(f, 127)
	if err != nil {
		return mask.RLE{}, fmt.Errorf("mask %s: %v", path, err)
	}
	if b.W != w || b.H != h {
		b = b.Scale(w, h)
	}
	if b.Area() == 0 {
		return mask.RLE{}, fmt.Errorf("mask %s is empty", path)
	}
	return mask.Encode(b), nil
}
