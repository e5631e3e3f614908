package importer

import (
	"archive/zip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/config"
	"github.com/deepimageshub/imagehub/dataset"
	"github.com/deepimageshub/imagehub/imaging"
	"github.com/deepimageshub/imagehub/intake"
	"github.com/deepimageshub/imagehub/jobs"
	"github.com/deepimageshub/imagehub/queries"
)

// File is one uploaded file, spooled on disk by the caller.
type File struct {
	Path string // where it lies now
	Name string // the client's name for it: the COCO file_name of an image
}

// Upload is what an import sent over HTTP carries: a COCO file and its
// images, or a zip holding both.
type Upload struct {
	Annotations *File
	Images      []File
	Archive     *File
	AsProposals bool
	By          uuid.UUID
	// MaxUnpacked caps what the archive's files may add up to unpacked.
	MaxUnpacked int64
}

// InputError is an upload that cannot be imported; Field names the form
// field at fault. Nothing was stored.
type InputError struct {
	Field, Message string
}

func (e *InputError) Error() string { return e.Field + ": " + e.Message }

// Stored file kinds.
const (
	kindAnnotations = "annotations"
	kindImage       = "image"
	kindArchive     = "archive"
)

// storedFile is one of an import's files in the blob store, as imports.files
// lists them.
type storedFile struct {
	Key  string `json:"key"`
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Entry is, for an archive, the path of its COCO file inside it.
	Entry string `json:"entry,omitempty"`
}

// Key is where an import's n-th file waits in the blob store.
func Key(importID uuid.UUID, n int) string { return fmt.Sprintf("imports/%s/%d", importID, n) }

// Submit checks an upload, stores its files in the blob store under
// imports/<id>/ and records the import with the job that runs it, so that
// the import survives a restart. Bad input gives an *InputError and
// stores nothing.
func Submit(ctx context.Context, pool *pgxpool.Pool, blobs blob.Store, rc *river.Client[pgx.Tx], u Upload) (queries.Import, *rivertype.JobInsertResult, error) {
	var files []storedFile
	var source string
	switch {
	case u.Annotations != nil && u.Archive != nil:
		return queries.Import{}, nil, &InputError{"archive", "Send either a COCO file (annotations) with its images, or one zip (archive), not both."}
	case u.Archive != nil:
		entry, err := checkArchive(u.Archive.Path, u.MaxUnpacked)
		if err != nil {
			return queries.Import{}, nil, err
		}
		source = path.Base(entry)
		files = append(files, storedFile{Name: u.Archive.Name, Kind: kindArchive, Entry: entry})
	case u.Annotations != nil:
		if err := checkCOCOFile(u.Annotations.Path); err != nil {
			return queries.Import{}, nil, &InputError{"annotations", fmt.Sprintf("%s is not a COCO file: %v", u.Annotations.Name, err)}
		}
		if len(u.Images) == 0 {
			return queries.Import{}, nil, &InputError{"images", "Send the images the annotations are of, as files named images."}
		}
		source = path.Base(strings.ReplaceAll(u.Annotations.Name, `\`, "/"))
		files = append(files, storedFile{Name: u.Annotations.Name, Kind: kindAnnotations})
		for _, img := range u.Images {
			files = append(files, storedFile{Name: img.Name, Kind: kindImage})
		}
	default:
		return queries.Import{}, nil, &InputError{"annotations", "Send a COCO file as annotations (with its images), or a zip as archive."}
	}
	if strings.TrimSpace(source) == "" || source == "." || source == "/" {
		source = "import.json"
	}
	id, err := uuid.NewV7()
	if err != nil {
		return queries.Import{}, nil, fmt.Errorf("error making an id: %w", err)
	}
	// The files on disk, in the order of files.
	var local []*File
	if u.Archive != nil {
		local = append(local, u.Archive)
	} else {
		local = append(local, u.Annotations)
		for i := range u.Images {
			local = append(local, &u.Images[i])
		}
	}
	removeStored := func() {
		// With a fresh context: the request's may be what failed.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		for _, f := range files {
			if f.Key != "" {
				_ = blobs.Delete(dctx, f.Key)
			}
		}
	}
	for i, f := range local {
		files[i].Key = Key(id, i)
		if err := putFile(ctx, blobs, files[i].Key, f.Path); err != nil {
			removeStored()
			return queries.Import{}, nil, err
		}
	}
	list, err := json.Marshal(files)
	if err != nil {
		removeStored()
		return queries.Import{}, nil, fmt.Errorf("error encoding the import's files: %w", err)
	}
	q := queries.New()
	var imp queries.Import
	var job *rivertype.JobInsertResult
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := q.ImportCreate(ctx, tx, queries.ImportCreateParams{ID: id, CreatedBy: u.By, Source: source, AsProposals: u.AsProposals, Files: list}); err != nil {
			return fmt.Errorf("error recording the import: %w", err)
		}
		job, err = rc.InsertTx(ctx, tx, ImportArgs{ImportID: id}, nil)
		if err != nil {
			return fmt.Errorf("error queueing the import: %w", err)
		}
		if err := q.ImportSetJob(ctx, tx, queries.ImportSetJobParams{ID: id, JobID: &job.Job.ID}); err != nil {
			return fmt.Errorf("error recording the import's job: %w", err)
		}
		imp, err = q.ImportGet(ctx, tx, id)
		if err != nil {
			return fmt.Errorf("error reading the import: %w", err)
		}
		return nil
	})
	if err != nil {
		removeStored()
		return queries.Import{}, nil, err
	}
	return imp, job, nil
}

func putFile(ctx context.Context, blobs blob.Store, key, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("error opening an uploaded file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("error reading an uploaded file: %w", err)
	}
	if err := blobs.Put(ctx, key, f, st.Size(), "application/octet-stream"); err != nil {
		return fmt.Errorf("error storing an import's file: %w", err)
	}
	return nil
}

// checkCOCOFile reads a COCO file through, as the import will.
func checkCOCOFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("error opening an uploaded file: %w", err)
	}
	defer f.Close()
	return checkCOCO(f)
}

// checkCOCO checks that r is a whole JSON object with images and
// annotations (dataset.ReadCOCO takes a file cut short after its first
// brace for an empty one), then reads it through as the import will.
func checkCOCO(r io.ReadSeeker) error {
	dec := json.NewDecoder(r)
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return errors.New("the file is not a JSON object")
	}
	keys := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("the file is not JSON (near byte %d)", dec.InputOffset())
		}
		k, _ := tok.(string)
		keys[k] = true
		// Walk the value token by token: memory stays small whatever its size.
		for depth := 0; ; {
			tok, err := dec.Token()
			if err != nil {
				return fmt.Errorf("the file is not JSON (near byte %d)", dec.InputOffset())
			}
			switch tok {
			case json.Delim('{'), json.Delim('['):
				depth++
			case json.Delim('}'), json.Delim(']'):
				depth--
			}
			if depth == 0 {
				break
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return errors.New("the file is not JSON: it ends before its object does")
	}
	for _, k := range []string{"images", "annotations"} {
		if !keys[k] {
			return fmt.Errorf("the file has no %s list", k)
		}
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("error reading an uploaded file: %w", err)
	}
	_, err := dataset.ReadCOCO(r, func(dataset.COCOInstance) error { return nil })
	return err
}

// checkArchive checks a zip and returns the path of its COCO file: its one
// .json file (hidden files and macOS's __MACOSX folder aside).
func checkArchive(p string, maxUnpacked int64) (string, error) {
	zr, err := zip.OpenReader(p)
	if err != nil {
		return "", &InputError{"archive", "The archive is not a zip file."}
	}
	defer zr.Close()
	var jsons []*zip.File
	var total uint64
	for _, f := range zr.File {
		total += f.UncompressedSize64
		if skipEntry(f.Name) || f.FileInfo().IsDir() {
			continue
		}
		if strings.EqualFold(path.Ext(f.Name), ".json") {
			jsons = append(jsons, f)
		}
	}
	if maxUnpacked > 0 && total > uint64(maxUnpacked) {
		return "", &InputError{"archive", fmt.Sprintf("The archive unpacks to %d bytes, more than the %d an import may.", total, maxUnpacked)}
	}
	if len(jsons) != 1 {
		return "", &InputError{"archive", fmt.Sprintf("The archive must hold one COCO .json file; it holds %d.", len(jsons))}
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), "import-json-*")
	if err != nil {
		return "", fmt.Errorf("error creating temporary file: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	rc, err := jsons[0].Open()
	if err != nil {
		return "", &InputError{"archive", fmt.Sprintf("%s cannot be read from the zip: %v", jsons[0].Name, err)}
	}
	_, err = io.Copy(tmp, io.LimitReader(rc, int64(jsons[0].UncompressedSize64)+1))
	rc.Close()
	if err != nil {
		return "", &InputError{"archive", fmt.Sprintf("%s cannot be read from the zip: %v", jsons[0].Name, err)}
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return "", fmt.Errorf("error reading temporary file: %w", err)
	}
	if err := checkCOCO(tmp); err != nil {
		return "", &InputError{"archive", fmt.Sprintf("%s is not a COCO file: %v", jsons[0].Name, err)}
	}
	return jsons[0].Name, nil
}

// skipEntry: files of a zip that are no part of a dataset.
func skipEntry(name string) bool {
	for _, seg := range strings.Split(name, "/") {
		if strings.HasPrefix(seg, ".") || seg == "__MACOSX" {
			return true
		}
	}
	return false
}

// ImportArgs runs an import sent over HTTP (Submit).
type ImportArgs struct {
	ImportID uuid.UUID `json:"import_id"`
}

// Kind is the job kind.
func (ImportArgs) Kind() string { return "dataset_import" }

// InsertOpts puts imports with the other dataset jobs. A run cut short is
// finished by the next attempt (a run is resumable).
func (ImportArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueDatasets, MaxAttempts: 5}
}

// ImportWorker runs ImportArgs: it fetches the import's files from the
// blob store into a temporary folder and runs the importer over them.
type ImportWorker struct {
	river.WorkerDefaults[ImportArgs]
	pool   *pgxpool.Pool
	blobs  blob.Store
	cfg    config.Config
	logger *slog.Logger
}

// AddWorkers registers the import worker with River (jobs.Options.More):
// it lives here because jobs cannot import importer.
func AddWorkers(w *river.Workers, d jobs.Deps) error {
	return river.AddWorkerSafely(w, &ImportWorker{pool: d.Pool, blobs: d.Blobs, cfg: d.Config, logger: d.Logger})
}

// Timeout lets an import run as long as a dataset job may: River rescues
// jobs running longer than JOB_RESCUE_AFTER.
func (w *ImportWorker) Timeout(*river.Job[ImportArgs]) time.Duration {
	return max(w.cfg.JobTimeout, w.cfg.JobRescueAfter-w.cfg.JobRescueAfter/10)
}

// Work runs one import.
func (w *ImportWorker) Work(ctx context.Context, job *river.Job[ImportArgs]) error {
	q := queries.New()
	imp, err := q.ImportGet(ctx, w.pool, job.Args.ImportID)
	if errors.Is(err, pgx.ErrNoRows) {
		return river.JobCancel(fmt.Errorf("import %s does not exist", job.Args.ImportID))
	}
	if err != nil {
		return fmt.Errorf("error reading import: %w", err)
	}
	if imp.State == "done" {
		return nil
	}
	if err := q.ImportStart(ctx, w.pool, imp.ID); err != nil {
		return fmt.Errorf("error starting import: %w", err)
	}
	sum, err := w.run(ctx, imp)
	if err != nil {
		state, msg := "queued", err.Error()
		if job.Attempt >= job.MaxAttempts {
			state = "failed"
		}
		if ferr := q.ImportFinish(context.WithoutCancel(ctx), w.pool, queries.ImportFinishParams{
			ID: imp.ID, State: state, Summary: encodeSummary(sum), Error: &msg,
		}); ferr != nil {
			w.logger.Error("error recording an import's failure", "import", imp.ID, "error", ferr)
		}
		return err
	}
	if err := q.ImportFinish(ctx, w.pool, queries.ImportFinishParams{ID: imp.ID, State: "done", Summary: encodeSummary(sum)}); err != nil {
		return fmt.Errorf("error finishing import: %w", err)
	}
	// Done: its files are in the hub now (images through intake), so the
	// copies kept for a restart go.
	var files []storedFile
	if err := json.Unmarshal(imp.Files, &files); err == nil {
		for _, f := range files {
			if err := w.blobs.Delete(ctx, f.Key); err != nil {
				w.logger.Warn("error deleting an import's file", "import", imp.ID, "key", f.Key, "error", err)
			}
		}
	}
	w.logger.Info("import done", "import", imp.ID, "summary", sum.String())
	return nil
}

// run fetches the files and imports them.
func (w *ImportWorker) run(ctx context.Context, imp queries.Import) (Summary, error) {
	var files []storedFile
	if err := json.Unmarshal(imp.Files, &files); err != nil {
		return Summary{}, fmt.Errorf("error reading the import's files: %w", err)
	}
	tmp := filepath.Join(w.cfg.DataDir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return Summary{}, fmt.Errorf("error creating temporary folder: %w", err)
	}
	dir, err := os.MkdirTemp(tmp, "import-*")
	if err != nil {
		return Summary{}, fmt.Errorf("error creating temporary folder: %w", err)
	}
	defer os.RemoveAll(dir)
	base := filepath.Join(dir, "files")
	if err := os.Mkdir(base, 0o700); err != nil {
		return Summary{}, fmt.Errorf("error creating temporary folder: %w", err)
	}
	var cocoPath string
	for _, f := range files {
		switch f.Kind {
		case kindAnnotations:
			cocoPath = filepath.Join(dir, "annotations.json")
			if err := w.fetch(ctx, f.Key, cocoPath); err != nil {
				return Summary{}, err
			}
		case kindImage:
			name := filepath.FromSlash(strings.ReplaceAll(f.Name, `\`, "/"))
			if !filepath.IsLocal(name) {
				name = filepath.Base(name)
			}
			if err := w.fetch(ctx, f.Key, filepath.Join(base, name)); err != nil {
				return Summary{}, err
			}
		case kindArchive:
			zipPath := filepath.Join(dir, "archive.zip")
			if err := w.fetch(ctx, f.Key, zipPath); err != nil {
				return Summary{}, err
			}
			if err := unpack(zipPath, base, 10*w.cfg.ImportMaxBytes); err != nil {
				return Summary{}, err
			}
			cocoPath = filepath.Join(base, filepath.FromSlash(f.Entry))
		}
	}
	if cocoPath == "" {
		return Summary{}, errors.New("the import has no COCO file")
	}
	if files[0].Kind == kindAnnotations {
		if err := linkByBase(cocoPath, base); err != nil {
			return Summary{}, err
		}
	}
	cf, err := os.Open(cocoPath)
	if err != nil {
		return Summary{}, fmt.Errorf("error opening the import's COCO file: %w", err)
	}
	defer cf.Close()
	rc, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return Summary{}, fmt.Errorf("error getting the river client: %w", err)
	}
	im := &Importer{Pool: w.pool, Intake: intake.NewService(w.pool, w.blobs, rc, imaging.Limits{MaxPixels: w.cfg.UploadMaxPixels}, w.logger), Logger: w.logger}
	var last time.Time
	lastRead := 0
	q := queries.New()
	progress := func(read int) {
		lastRead = read
		if time.Since(last) < 500*time.Millisecond {
			return
		}
		last = time.Now()
		if err := q.ImportProgress(ctx, w.pool, queries.ImportProgressParams{ID: imp.ID, Progress: int32(read)}); err != nil && ctx.Err() == nil {
			w.logger.Warn("error recording an import's progress", "import", imp.ID, "error", err)
		}
	}
	sum, err := im.COCO(ctx, cf, base, Options{Source: imp.Source, Importer: imp.CreatedBy, AsProposals: imp.AsProposals, Progress: progress})
	if err == nil {
		err = q.ImportProgress(ctx, w.pool, queries.ImportProgressParams{ID: imp.ID, Progress: int32(lastRead)})
	}
	return sum, err
}

// linkByBase makes the images of a multipart import, which arrive by their
// base names (multipart file names have no folders), reachable at the COCO
// file's file_name when that has folders ("val2017/1.jpg"), unless two
// file_names share a base name.
func linkByBase(cocoPath, base string) error {
	f, err := os.Open(cocoPath)
	if err != nil {
		return fmt.Errorf("error opening the import's COCO file: %w", err)
	}
	defer f.Close()
	byBase := map[string]map[string]bool{}
	_, err = dataset.ReadCOCO(f, func(in dataset.COCOInstance) error {
		n := in.Image.FileName
		if strings.Contains(n, "/") {
			b := path.Base(n)
			if byBase[b] == nil {
				byBase[b] = map[string]bool{}
			}
			byBase[b][n] = true
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("error reading the import's COCO file: %w", err)
	}
	for b, names := range byBase {
		if len(names) != 1 {
			continue
		}
		for n := range names {
			src, rel := filepath.Join(base, filepath.FromSlash(b)), filepath.FromSlash(n)
			if !filepath.IsLocal(rel) {
				continue
			}
			dst := filepath.Join(base, rel)
			if _, err := os.Stat(src); err != nil {
				continue
			}
			if _, err := os.Lstat(dst); !errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
				return fmt.Errorf("error creating temporary folder: %w", err)
			}
			if err := os.Link(src, dst); err != nil {
				return fmt.Errorf("error linking %s: %w", n, err)
			}
		}
	}
	return nil
}

// fetch copies a blob to a file.
func (w *ImportWorker) fetch(ctx context.Context, key, dst string) error {
	r, _, err := w.blobs.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("error reading an import's file: %w", err)
	}
	defer r.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("error creating temporary folder: %w", err)
	}
	f, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("error creating temporary file: %w", err)
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("error copying an import's file: %w", err)
	}
	return nil
}

// unpack writes a zip's files under dir, at most max bytes in all. A file
// under images/ is also reachable without that prefix, so that file_name
// may be relative to the zip's root or to its images folder.
func unpack(zipPath, dir string, max int64) error {
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return fmt.Errorf("error opening the import's zip: %w", err)
	}
	defer zr.Close()
	left := max
	for _, f := range zr.File {
		name := filepath.FromSlash(f.Name)
		if f.FileInfo().IsDir() || skipEntry(f.Name) || !filepath.IsLocal(name) {
			continue
		}
		dst := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return fmt.Errorf("error creating temporary folder: %w", err)
		}
		r, err := f.Open()
		if err != nil {
			return fmt.Errorf("error reading %s from the zip: %w", f.Name, err)
		}
		out, err := os.Create(dst)
		if err != nil {
			r.Close()
			return fmt.Errorf("error creating temporary file: %w", err)
		}
		n, err := io.Copy(out, io.LimitReader(r, left+1))
		r.Close()
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("error unpacking %s: %w", f.Name, err)
		}
		if left -= n; left < 0 {
			return fmt.Errorf("the import's zip unpacks to more than %d bytes", max)
		}
		if rest, ok := strings.CutPrefix(f.Name, "images/"); ok && rest != "" {
			alias := filepath.Join(dir, filepath.FromSlash(rest))
			if _, err := os.Lstat(alias); errors.Is(err, os.ErrNotExist) {
				if err := os.MkdirAll(filepath.Dir(alias), 0o700); err != nil {
					return fmt.Errorf("error creating temporary folder: %w", err)
				}
				if err := os.Link(dst, alias); err != nil {
					return fmt.Errorf("error linking %s: %w", f.Name, err)
				}
			}
		}
	}
	return nil
}

// SummaryJSON is a run's summary as the API shows it.
type SummaryJSON struct {
	Images          int           `json:"images"`
	ImagesCreated   int           `json:"images_created"`
	ImagesDuplicate int           `json:"images_duplicate"`
	ImagesRefused   int           `json:"images_refused"`
	Annotations     int           `json:"annotations"`
	Added           int           `json:"added"`
	Already         int           `json:"already"`
	Applied         int           `json:"applied"`
	Waiting         int           `json:"waiting"`
	Skipped         int           `json:"skipped"`
	Problems        []ProblemJSON `json:"problems"`
	// ProblemsTotal counts every problem; Problems lists the first
	// maxProblems.
	ProblemsTotal int `json:"problems_total"`
}

// ProblemJSON is one problem of a run: a bad row, with its line, or an
// image refused.
type ProblemJSON struct {
	Line int    `json:"line,omitempty"`
	What string `json:"what"`
}

// maxProblems keeps an import's row small whatever its file holds.
const maxProblems = 1000

func encodeSummary(s Summary) []byte {
	out := SummaryJSON{
		Images: s.Images, ImagesCreated: s.ImagesCreated, ImagesDuplicate: s.ImagesDuplicate, ImagesRefused: s.ImagesRefused,
		Annotations: s.Annotations, Added: s.Added, Already: s.Already, Applied: s.Applied, Waiting: s.Waiting,
		Skipped: s.Skipped, Problems: []ProblemJSON{}, ProblemsTotal: len(s.Problems),
	}
	for _, p := range s.Problems[:min(len(s.Problems), maxProblems)] {
		out.Problems = append(out.Problems, ProblemJSON{Line: p.Line, What: p.What})
	}
	b, _ := json.Marshal(out) // plain fields: cannot fail
	return b
}
