package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/sync/errgroup"

	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/imaging"
	"github.com/deepimageshub/imagehub/importer"
	"github.com/deepimageshub/imagehub/intake"
	"github.com/deepimageshub/imagehub/jobs"
	"github.com/deepimageshub/imagehub/labelimport"
	"github.com/deepimageshub/imagehub/openimages"
	"github.com/deepimageshub/imagehub/queries"
)

// importCmd: imagehub import DIR — take a folder of images in through the
// same checks and pipeline as the web upload. Images already stored are
// skipped by their hash, so an interrupted import can simply be run again.
func importCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("import", flag.ContinueOnError)
	fset.SetOutput(stderr)
	labelsCSV := fset.String("labels-csv", "", "Open Images image-level labels CSV (ImageID,Source,LabelName,Confidence)")
	classesCSV := fset.String("classes-csv", "", "Open Images class descriptions CSV; its classes are added to the taxonomy")
	labelList := fset.String("labels", "", "comma-separated labels for every image")
	email := fset.String("email", "", "account the images are uploaded as (default: the first admin)")
	campaign := fset.String("campaign", "", "campaign id to upload into")
	workers := fset.Int("workers", runtime.GOMAXPROCS(0), "files processed at once")
	quiet := fset.Bool("quiet", false, "no progress bar")
	cocoFile := fset.String("coco", "", "a COCO instance-segmentation file whose images are in DIR (file_name relative to it): its annotations become the images' first reviews")
	oiMasks := fset.String("oi-masks", "", "an Open Images object segmentations CSV (MaskPath,ImageID,LabelName,…); images are <ImageID>.jpg in DIR")
	asProposals := fset.Bool("as-proposals", false, "with --coco or --oi-masks: make the annotations proposals of a model named for the file, for reviewers to check, instead of first reviews")
	masksDir := fset.String("masks-dir", "", "the folder of the --oi-masks PNG masks (default: the CSV's folder)")
	fset.Usage = func() {
		fmt.Fprintln(stderr, "usage: imagehub import [flags] DIR\n       imagehub import --coco instances.json [--email E] IMAGES_DIR\n       imagehub import --oi-masks masks.csv [--masks-dir MASKS_DIR] IMAGES_DIR")
		fset.PrintDefaults()
	}
	// Flags may come before or after the folder.
	var dir string
	rest := args
	for len(rest) > 0 {
		if err := fset.Parse(rest); err != nil {
			return errUsage
		}
		if fset.NArg() == 0 {
			break
		}
		if dir != "" {
			fset.Usage()
			return errUsage
		}
		dir, rest = fset.Arg(0), fset.Args()[1:]
	}
	if dir == "" {
		fset.Usage()
		return errUsage
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("%s is not a folder", dir)
	}

	e, err := setup(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	defer e.pool.Close()
	q := queries.New()
	blobURL, err := e.cfg.BlobStoreURL()
	if err != nil {
		return err
	}
	blobs, err := blob.Open(ctx, blobURL)
	if err != nil {
		return fmt.Errorf("error opening blob store: %w", err)
	}
	rc, err := jobs.NewClient(jobs.Deps{Pool: e.pool, Logger: e.logger, Blobs: blobs, Config: e.cfg}, jobs.Options{})
	if err != nil {
		return err
	}
	in := intake.NewService(e.pool, blobs, rc, imaging.Limits{MaxPixels: e.cfg.UploadMaxPixels}, e.logger)

	var uploader queries.User
	if *email != "" {
		uploader, err = q.UserGetByEmail(ctx, e.pool, *email)
	} else {
		uploader, err = q.UserFirstAdmin(ctx, e.pool)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return errors.New("no such account: create one first (imagehub users create) or pass --email")
	}
	if err != nil {
		return fmt.Errorf("error reading uploader: %w", err)
	}

	if *cocoFile != "" || *oiMasks != "" {
		return importAnnotations(ctx, e, in, uploader, *cocoFile, *oiMasks, *masksDir, dir, *asProposals, *quiet, stdout, stderr)
	}
	if *classesCSV != "" {
		f, err := os.Open(*classesCSV)
		if err != nil {
			return err
		}
		classes, err := openimages.ReadClasses(f)
		f.Close()
		if err != nil {
			return err
		}
		added, updated, err := importClasses(ctx, e, classes)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "labels: %d added, %d updated\n", added, updated)
	}
	common, err := in.ResolveLabels(ctx, strings.Split(*labelList, ","))
	if err != nil {
		return explain(err)
	}
	campaignID, err := in.ResolveOpenCampaign(ctx, *campaign)
	if err != nil {
		return explain(err)
	}
	// The labels CSV is staged before any image is taken in, so that a bad
	// row stops the run with nothing imported, as a read into memory did.
	var staged *labelimport.Staged
	if *labelsCSV != "" {
		if staged, err = stageLabels(ctx, e, *labelsCSV, stderr); err != nil {
			return err
		}
		defer staged.Close()
	}

	var paths []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && p != dir {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("error listing %s: %w", dir, err)
	}
	sort.Strings(paths)

	bar := progressbar.NewOptions(len(paths), progressbar.OptionSetWriter(stderr), progressbar.OptionSetDescription("importing"),
		progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("img"),
		progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionSetVisibility(!*quiet),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(stderr) }))
	var created, skipped atomic.Int64
	var mu sync.Mutex
	var refused []string
	var taken []labelimport.Image // images of this run, created or already stored, for the staged labels
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(*workers, 1))
	for _, p := range paths {
		g.Go(func() error {
			defer bar.Add(1) //nolint:errcheck // a progress bar
			name := filepath.Base(p)
			f, err := intake.HashFile(p, name)
			if err != nil {
				return err
			}
			out, err := in.Add(gctx, uploader.ID, f, common, campaignID)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			switch out.Status {
			case intake.Created:
				created.Add(1)
			case intake.Duplicate:
				skipped.Add(1)
			case intake.Refused:
				mu.Lock()
				refused = append(refused, p+": "+out.Refusal.Message)
				mu.Unlock()
				return nil
			}
			if staged != nil {
				mu.Lock()
				taken = append(taken, labelimport.Image{ID: out.Image.ID, Key: strings.TrimSuffix(name, filepath.Ext(name))})
				mu.Unlock()
			}
			return nil
		})
	}
	err = g.Wait()
	_ = bar.Finish()
	if staged != nil {
		// Applied also when the run stopped early, for the images it did
		// take in (an image and its labels used to commit together); a
		// second run adds whatever is still missing.
		added, applyErr := staged.Apply(ctx, taken, uploader.ID)
		if applyErr != nil {
			return errors.Join(err, applyErr)
		}
		if err == nil {
			fmt.Fprintf(stderr, "image labels: %d added\n", added)
		}
	}
	if err != nil {
		return err
	}
	sort.Strings(refused)
	for _, r := range refused {
		fmt.Fprintln(stderr, "refused", r)
	}
	elapsed := time.Since(start)
	fmt.Fprintf(stdout, "%d created, %d already stored, %d refused in %s (%.1f files/s); ingest runs in `imagehub serve`\n",
		created.Load(), skipped.Load(), len(refused), elapsed.Round(time.Millisecond), float64(len(paths))/elapsed.Seconds())
	return nil
}

// stageLabels streams an image-level labels CSV into a staging table.
// MIDs the taxonomy lacks are counted and reported, not fatal: pass
// --classes-csv to add them.
func stageLabels(ctx context.Context, e *env, path string, stderr io.Writer) (*labelimport.Staged, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	staged, err := labelimport.Stage(ctx, e.pool, f)
	if err != nil {
		return nil, err
	}
	if staged.UnknownMIDs > 0 {
		fmt.Fprintf(stderr, "note: %d label ids are not in the taxonomy and were skipped (import them with --classes-csv)\n", staged.UnknownMIDs)
	}
	return staged, nil
}

// importAnnotations runs imagehub import --coco or --oi-masks: the
// importer over one file, with a progress bar by annotation, the problems
// (line and reason) and a summary. Run it again after an interruption: it
// adds only what is missing.
func importAnnotations(ctx context.Context, e *env, in *intake.Service, uploader queries.User, cocoPath, oiPath, masksDir, dir string,
	asProposals, quiet bool, stdout, stderr io.Writer) error {
	path := cmp.Or(cocoPath, oiPath)
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	bar := progressbar.NewOptions(-1, progressbar.OptionSetWriter(stderr), progressbar.OptionSetDescription("importing annotations"),
		progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("ann"),
		progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionSetVisibility(!quiet),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(stderr) }))
	im := &importer.Importer{Pool: e.pool, Intake: in, Logger: e.logger}
	o := importer.Options{Source: filepath.Base(path), Importer: uploader.ID, AsProposals: asProposals, Progress: func(int) { _ = bar.Add(1) }}
	start := time.Now()
	var sum importer.Summary
	if cocoPath != "" {
		sum, err = im.COCO(ctx, f, dir, o)
	} else {
		sum, err = im.OpenImages(ctx, f, cmp.Or(masksDir, filepath.Dir(oiPath)), dir, o)
	}
	_ = bar.Finish()
	for _, p := range sum.Problems {
		fmt.Fprintln(stderr, "skipped", p)
	}
	if err != nil {
		return fmt.Errorf("import stopped (run it again to finish): %w", err)
	}
	fmt.Fprintf(stdout, "%s in %s; ingest applies the rest in `imagehub serve`\n", sum, time.Since(start).Round(time.Millisecond))
	return nil
}
