package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/deepimageshub/imagehub/importer"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
)

// importJSON is an import as API.md shows it.
type importJSON struct {
	ID       string                `json:"id"`
	State    string                `json:"state"`
	Source   string                `json:"source"`
	Progress *importProgress       `json:"progress,omitempty"`
	Summary  *importer.SummaryJSON `json:"summary,omitempty"`
	Error    *string               `json:"error,omitempty"`
	JobID    *string               `json:"job_id,omitempty"`
}

// importProgress is how far an import has read (the last count, once it
// has ended).
type importProgress struct {
	Annotations int32 `json:"annotations"`
}

func toImportJSON(imp queries.Import) importJSON {
	j := importJSON{ID: imp.ID.String(), State: imp.State, Source: imp.Source, Error: imp.Error}
	if imp.JobID != nil {
		s := strconv.FormatInt(*imp.JobID, 10)
		j.JobID = &s
	}
	if imp.Progress > 0 {
		j.Progress = &importProgress{Annotations: imp.Progress}
	}
	if len(imp.Summary) > 0 {
		var sum importer.SummaryJSON
		if json.Unmarshal(imp.Summary, &sum) == nil {
			j.Summary = &sum
		}
	}
	return j
}

// apiImportCreate: POST /api/v1/imports (admin) → 202 {import, job}. The
// body is multipart: a COCO file (annotations) and its images (images,
// repeated), or one zip (archive); as_proposals=true makes the annotations
// proposals. The files are stored before the answer, and a job imports
// them.
func (s *Server) apiImportCreate(c *fiber.Ctx) error {
	form, err := s.receiveImport(c)
	if err != nil {
		return err
	}
	defer form.cleanup()
	form.upload.By = currentUser(c).ID
	imp, job, err := importer.Submit(c.UserContext(), s.pool, s.blobs, s.river, form.upload)
	var ie *importer.InputError
	if errors.As(err, &ie) {
		return badInput("invalid", ie.Field, ie.Message)
	}
	if err != nil {
		return err
	}
	return c.Status(http.StatusAccepted).JSON(fiber.Map{
		"import": toImportJSON(imp),
		"job":    fiber.Map{"id": strconv.FormatInt(job.Job.ID, 10), "kind": job.Job.Kind, "state": string(job.Job.State)},
	})
}

// apiImportGet: GET /api/v1/imports/{id} (admin).
func (s *Server) apiImportGet(c *fiber.Ctx) error {
	id, err := uuid.Parse(c.Params("id"))
	if err != nil {
		return problem.NotFound
	}
	imp, err := s.q.ImportGet(c.UserContext(), s.pool, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return problem.NotFound
	}
	if err != nil {
		return fmt.Errorf("error reading import: %w", err)
	}
	return c.JSON(fiber.Map{"import": toImportJSON(imp)})
}

// importForm is what an import's multipart body carried, spooled on disk.
type importForm struct {
	upload importer.Upload
	paths  []string
}

func (f *importForm) cleanup() {
	for _, p := range f.paths {
		os.Remove(p)
	}
}

// receiveImport streams an import's multipart body into temporary files,
// capped at IMPORT_MAX_BYTES in all (as receiveUpload does for uploads).
func (s *Server) receiveImport(c *fiber.Ctx) (*importForm, error) {
	limit := s.cfg.ImportMaxBytes
	mediaType, params, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || mediaType != fiber.MIMEMultipartForm || params["boundary"] == "" {
		return nil, problem.New(http.StatusUnsupportedMediaType, "unsupported_media_type", "",
			"Send the import as multipart/form-data: a COCO file named annotations with files named images, or a zip named archive.")
	}
	if n := c.Request().Header.ContentLength(); n > 0 && int64(n) > limit {
		return nil, tooLargeImport(limit)
	}
	capped := &cappedReader{r: bodyStream(c), left: limit}
	mr := multipart.NewReader(capped, params["boundary"])
	tmpDir := filepath.Join(s.cfg.DataDir, "tmp")
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return nil, fmt.Errorf("error creating upload folder: %w", err)
	}
	form := &importForm{upload: importer.Upload{MaxUnpacked: 10 * limit}}
	fail := func(err error) (*importForm, error) {
		form.cleanup()
		if capped.over || errors.Is(err, errRequestTooLarge) {
			return nil, tooLargeImport(limit)
		}
		return nil, uploadReadError(err, capped, limit)
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail(err)
		}
		switch name := part.FormName(); name {
		case "annotations", "archive", "images", "images[]":
			if (name == "annotations" && form.upload.Annotations != nil) || (name == "archive" && form.upload.Archive != nil) {
				form.cleanup()
				return nil, badInput("invalid", name, "Send one "+name+" file.")
			}
			p, err := spoolPart(part, tmpDir)
			if p != "" {
				form.paths = append(form.paths, p)
			}
			if err != nil {
				return fail(err)
			}
			f := importer.File{Path: p, Name: part.FileName()}
			switch name {
			case "annotations":
				f.Name = cleanImportName(f.Name, "annotations.json")
				form.upload.Annotations = &f
			case "archive":
				f.Name = cleanImportName(f.Name, "import.zip")
				form.upload.Archive = &f
			default:
				if strings.TrimSpace(f.Name) == "" {
					form.cleanup()
					return nil, badInput("invalid", "images", "Each image needs its file name (the COCO file_name).")
				}
				form.upload.Images = append(form.upload.Images, f)
			}
		case "as_proposals":
			b, err := io.ReadAll(io.LimitReader(part, 17))
			if err != nil {
				return fail(err)
			}
			switch v := strings.ToLower(strings.TrimSpace(string(b))); v {
			case "true", "1", "on":
				form.upload.AsProposals = true
			case "false", "0", "":
			default:
				form.cleanup()
				return nil, badInput("invalid", "as_proposals", "as_proposals is true or false.")
			}
		default:
			// Unknown parts are read and ignored, within the cap.
			if _, err := io.Copy(io.Discard, part); err != nil {
				return fail(err)
			}
		}
	}
	return form, nil
}

// spoolPart writes a part to a temporary file; the caller removes it.
func spoolPart(part *multipart.Part, dir string) (string, error) {
	f, err := os.CreateTemp(dir, "import-*")
	if err != nil {
		return "", fmt.Errorf("error creating temporary file: %w", err)
	}
	_, err = io.Copy(f, part)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("error writing temporary file: %w", cerr)
	}
	return f.Name(), err
}

// cleanImportName is a file's name without its folders, or def.
func cleanImportName(name, def string) string {
	name = filepath.Base(strings.ReplaceAll(name, `\`, "/"))
	if name == "." || name == "/" || strings.TrimSpace(name) == "" {
		return def
	}
	return name
}

func tooLargeImport(limit int64) *problem.Error {
	return problem.New(http.StatusRequestEntityTooLarge, "too_large", "",
		fmt.Sprintf("The import is larger than %s (IMPORT_MAX_BYTES); import the rest with another request or with imagehub import --coco.", humanBytes(limit)))
}
