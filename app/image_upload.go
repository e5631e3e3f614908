package app

import (
	"context"
	"crypto/sha256"
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
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/deepimageshub/imagehub/intake"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
)

// uploadResult is one file's outcome, as API.md's upload answer lists them.
type uploadResult struct {
	Filename string     `json:"filename"`
	Status   string     `json:"status"` // created, duplicate or refused
	Image    *imageJSON `json:"image,omitempty"`
	Error    *apiError  `json:"error,omitempty"`
}

// spooledFile is one file part, written to a temporary file while it streamed
// in and hashed on the way.
type spooledFile struct {
	field    string // files[i], for error messages
	filename string
	path     string
	size     int64
	sha256   [32]byte
	refusal  *apiError
}

// uploadForm is what a multipart upload carried.
type uploadForm struct {
	files      []*spooledFile
	labels     []string
	campaignID string
}

func (f *uploadForm) cleanup() {
	for _, sf := range f.files {
		if sf.path != "" {
			os.Remove(sf.path)
		}
	}
}

// receiveUpload reads a multipart upload as a stream: each file part goes to
// a temporary file through a SHA-256 hash, capped per file and per request,
// so memory use stays small whatever is sent. Fields may come before or after
// the files, which is why files are spooled before anything is stored.
func (s *Server) receiveUpload(c *fiber.Ctx) (*uploadForm, error) {
	mediaType, params, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || mediaType != fiber.MIMEMultipartForm || params["boundary"] == "" {
		return nil, problem.New(http.StatusUnsupportedMediaType, "unsupported_media_type", "",
			"Send the images as multipart/form-data with one or more parts named files.")
	}
	if n := c.Request().Header.ContentLength(); n > 0 && int64(n) > s.cfg.UploadMaxRequestBytes {
		return nil, tooLargeRequest(s.cfg.UploadMaxRequestBytes)
	}
	capped := &cappedReader{r: bodyStream(c), left: s.cfg.UploadMaxRequestBytes}
	mr := multipart.NewReader(capped, params["boundary"])

	tmpDir := filepath.Join(s.cfg.DataDir, "tmp")
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return nil, fmt.Errorf("error creating upload folder: %w", err)
	}
	form := &uploadForm{}
	fields := 0
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			form.cleanup()
			return nil, uploadReadError(err, capped, s.cfg.UploadMaxRequestBytes)
		}
		switch name := part.FormName(); {
		case name == "files" || (name == "" && part.FileName() != "") || strings.HasPrefix(name, "files["):
			if len(form.files) >= s.cfg.UploadMaxFiles {
				form.cleanup()
				return nil, problem.New(http.StatusRequestEntityTooLarge, "too_many_files", "files",
					fmt.Sprintf("Send at most %d files in one upload.", s.cfg.UploadMaxFiles))
			}
			sf, err := s.spool(part, tmpDir, len(form.files))
			if sf != nil {
				form.files = append(form.files, sf)
			}
			if err != nil {
				form.cleanup()
				return nil, uploadReadError(err, capped, s.cfg.UploadMaxRequestBytes)
			}
		case name == "labels" || name == "labels[]" || name == "campaign_id":
			fields++
			if fields > 1000 {
				form.cleanup()
				return nil, badInput("too_many_fields", name, "The upload has too many form fields.")
			}
			b, err := io.ReadAll(io.LimitReader(part, 4097))
			if err != nil {
				form.cleanup()
				return nil, uploadReadError(err, capped, s.cfg.UploadMaxRequestBytes)
			}
			if len(b) > 4096 {
				form.cleanup()
				return nil, badInput("too_long", name, name+" is too long.")
			}
			v := strings.TrimSpace(string(b))
			if name == "campaign_id" {
				form.campaignID = v
			} else {
				// Accept repeated fields and comma-separated lists alike.
				for _, l := range strings.Split(v, ",") {
					if l = strings.TrimSpace(l); l != "" {
						form.labels = append(form.labels, l)
					}
				}
			}
		default:
			// Unknown parts are read and ignored, within the request cap.
			if _, err := io.Copy(io.Discard, part); err != nil {
				form.cleanup()
				return nil, uploadReadError(err, capped, s.cfg.UploadMaxRequestBytes)
			}
		}
	}
	if len(form.files) == 0 {
		return nil, badInput("missing_field", "files", "Choose at least one image to upload.")
	}
	return form, nil
}

// spool streams one file part into a temporary file. A file over the per-file
// cap is refused, and the rest of it is read and thrown away so the next part
// can be reached.
func (s *Server) spool(part *multipart.Part, dir string, i int) (*spooledFile, error) {
	sf := &spooledFile{field: fmt.Sprintf("files[%d]", i), filename: cleanFilename(part.FileName())}
	f, err := os.CreateTemp(dir, "upload-*")
	if err != nil {
		return nil, fmt.Errorf("error creating temporary file: %w", err)
	}
	sf.path = f.Name()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(part, s.cfg.UploadMaxFileBytes+1))
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("error writing temporary file: %w", cerr)
	}
	if err != nil {
		return sf, err
	}
	if n > s.cfg.UploadMaxFileBytes {
		if _, err := io.Copy(io.Discard, part); err != nil {
			return sf, err
		}
		sf.refusal = &apiError{Code: "too_large", Field: sf.field, Message: fmt.Sprintf(
			"%s is larger than %s, the largest file we accept.", sf.filename, humanBytes(s.cfg.UploadMaxFileBytes))}
		return sf, nil
	}
	sf.size = n
	copy(sf.sha256[:], h.Sum(nil))
	return sf, nil
}

// cappedReader fails once more than left bytes have been read.
type cappedReader struct {
	r    io.Reader
	left int64
	over bool
}

var errRequestTooLarge = errors.New("request body over the cap")

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		c.over = true
		return 0, errRequestTooLarge
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

func tooLargeRequest(limit int64) *problem.Error {
	return problem.New(http.StatusRequestEntityTooLarge, "too_large", "",
		fmt.Sprintf("The upload is larger than %s in all; send fewer files at a time.", humanBytes(limit)))
}

func uploadReadError(err error, c *cappedReader, limit int64) error {
	if c.over || errors.Is(err, errRequestTooLarge) {
		return tooLargeRequest(limit)
	}
	var pe *problem.Error
	if errors.As(err, &pe) {
		return pe
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "multipart") || errors.Is(err, io.EOF) {
		return badInput("truncated_upload", "", "The upload was cut off before it ended; nothing was stored. Please try again.")
	}
	return fmt.Errorf("error reading upload: %w", err)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// cleanFilename keeps the client's file name as a label only: no folders, no
// control characters, at most 255 bytes of valid UTF-8.
func cleanFilename(name string) string {
	name = strings.ReplaceAll(name, "\\", "/")
	name = filepath.Base(name)
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, strings.ToValidUTF8(name, "?"))
	if name == "." || name == "/" || name == "" {
		name = "unnamed"
	}
	for len(name) > 255 {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return name
}

// storeUploads takes each spooled file in through intake and returns one
// result per file.
func (s *Server) storeUploads(ctx context.Context, user queries.User, form *uploadForm) ([]uploadResult, error) {
	labels, err := s.intake.ResolveLabels(ctx, form.labels)
	if err != nil {
		return nil, err
	}
	campaignID, err := s.intake.ResolveOpenCampaign(ctx, form.campaignID)
	if err != nil {
		return nil, err
	}
	quota := intake.Quota{FilesPerDay: s.cfg.UploadQuotaFilesPerDay, BytesPerDay: s.cfg.UploadQuotaBytesPerDay}
	results := make([]uploadResult, 0, len(form.files))
	for i, sf := range form.files {
		r := uploadResult{Filename: sf.filename}
		if sf.refusal != nil {
			r.Status, r.Error = "refused", sf.refusal
			results = append(results, r)
			continue
		}
		charge, fits, err := s.intake.TakeQuota(ctx, user.ID, sf.size, quota)
		if err != nil {
			return results, err
		}
		if !fits {
			r.Status, r.Error = "refused", &apiError{Code: "quota_exceeded", Field: sf.field, Message: s.quotaMessage(sf.filename)}
			results = append(results, r)
			continue
		}
		out, err := s.intake.Add(ctx, user.ID, intake.File{Path: sf.path, Filename: sf.filename, Size: sf.size, SHA256: sf.sha256}, labels, campaignID)
		if err != nil || out.Status == intake.Refused {
			s.intake.Refund(ctx, charge)
		}
		if errors.Is(err, intake.ErrStorageUnavailable) {
			return results, blobUnavailable(len(form.files)-i, len(form.files))
		}
		if err != nil {
			return results, err
		}
		r.Status = out.Status
		if out.Refusal != nil {
			r.Error = &apiError{Code: out.Refusal.Code, Field: sf.field, Message: sf.filename + ": " + out.Refusal.Message}
		} else {
			// The answer shows the image as this contributor's upload: a
			// duplicate does not reveal the first uploader's file name.
			img := asUploaded(out.Image, queries.ImageUpload{UserID: user.ID, Filename: sf.filename, CampaignID: campaignID})
			ij, err := s.imageJSON(ctx, img)
			if err != nil {
				return results, err
			}
			r.Image = &ij
		}
		results = append(results, r)
	}
	return results, nil
}

// quotaMessage says why a file went over the daily upload quota and when
// the quota starts again.
func (s *Server) quotaMessage(filename string) string {
	var limits []string
	if n := s.cfg.UploadQuotaFilesPerDay; n > 0 {
		limits = append(limits, fmt.Sprintf("%d files", n))
	}
	if n := s.cfg.UploadQuotaBytesPerDay; n > 0 {
		limits = append(limits, humanBytes(n))
	}
	mins := (secondsToMidnightUTC(time.Now()) + 59) / 60
	return fmt.Sprintf("%s was not stored: you have reached today's upload limit (%s a day). It starts again at midnight UTC, in %dh %02dm.",
		filename, strings.Join(limits, " or "), mins/60, mins%60)
}

// secondsToMidnightUTC is when the daily quota starts again, at least 1.
func secondsToMidnightUTC(now time.Time) int {
	now = now.UTC()
	midnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
	return max(int(midnight.Sub(now).Seconds()+0.999), 1)
}

func blobUnavailable(left, total int) *problem.Error {
	msg := "The image store is not answering, so nothing was stored. Please try again in a minute."
	if left < total {
		msg = fmt.Sprintf("The image store stopped answering: %d of %d files were not stored. Please upload them again in a minute.", left, total)
	}
	return withRetryAfter(problem.New(http.StatusServiceUnavailable, "storage_unavailable", "", msg))
}

// apiImageUpload: POST /api/v1/images (multipart) → 201 all stored, 207 some
// refused, 4xx none stored.
func (s *Server) apiImageUpload(c *fiber.Ctx) error {
	results, status, err := s.upload(c)
	if err != nil {
		if pe, ok := problem.As(err); ok && results != nil {
			for k, v := range pe.Headers {
				c.Set(k, v)
			}
			return c.Status(pe.Status).JSON(fiber.Map{"results": results, "error": apiError{Code: pe.Code, Message: pe.Message, Field: pe.Field}})
		}
		return err
	}
	out := fiber.Map{"results": results}
	if status >= 400 {
		first := results[0].Error
		out["error"] = apiError{Code: first.Code, Field: first.Field, Message: "No file was stored. " + first.Message}
	}
	return c.Status(status).JSON(out)
}

// upload is the shared path of the API and the upload page.
func (s *Server) upload(c *fiber.Ctx) ([]uploadResult, int, error) {
	form, err := s.receiveUpload(c)
	if err != nil {
		// The rest of the body is still on the wire: close the connection
		// after answering, or it would be read as the next request.
		closeAfterAnswer(c)
		return nil, 0, err
	}
	defer form.cleanup()
	results, err := s.storeUploads(c.UserContext(), *currentUser(c), form)
	if err != nil {
		return results, 0, err
	}
	stored, tooLarge, overQuota := 0, 0, 0
	for _, r := range results {
		switch {
		case r.Status != "refused":
			stored++
		case r.Error.Code == "too_large":
			tooLarge++
		case r.Error.Code == "quota_exceeded":
			overQuota++
		}
	}
	if overQuota > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secondsToMidnightUTC(time.Now())))
	}
	switch {
	case stored == len(results):
		return results, http.StatusCreated, nil
	case stored > 0:
		return results, http.StatusMultiStatus, nil
	case tooLarge == len(results):
		return results, http.StatusRequestEntityTooLarge, nil
	case overQuota > 0 && overQuota+tooLarge == len(results):
		return results, http.StatusTooManyRequests, nil
	default:
		return results, http.StatusBadRequest, nil
	}
}
