package app

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/deepimageshub/imagehub/augment"
	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/dataset"
	"github.com/deepimageshub/imagehub/jobs"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/views"
)

// queryValues reads a repeatable query parameter whose values may also be
// comma-separated: ?labels=cat,dog and ?labels=cat&labels=dog are the same.
func queryValues(c *fiber.Ctx, name string) []string {
	var out []string
	for _, raw := range c.Context().QueryArgs().PeekMulti(name) {
		for _, v := range strings.Split(string(raw), ",") {
			if v = strings.TrimSpace(v); v != "" && !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out
}

// formValues is queryValues for a posted form.
func formValues(c *fiber.Ctx, name string) []string {
	var out []string
	for _, raw := range c.Context().PostArgs().PeekMulti(name) {
		for _, v := range strings.Split(string(raw), ",") {
			if v = strings.TrimSpace(v); v != "" && !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out
}

// parseSubset checks a download's format, mask format, splits and labels
// against the version. Splits come out in train, val, test order and
// labels in id order, so that one subset has one spelling (prepared exports
// are unique by it).
func parseSubset(format, maskFormat string, splits, labels []string, cats []queries.DatasetVersionLabel, number int32) (dataset.Subset, error) {
	sub := dataset.Subset{Format: dataset.COCO, MaskFormat: dataset.MaskRLE}
	switch f := dataset.Format(format); {
	case format == "":
	case slices.Contains(dataset.Formats, f):
		sub.Format = f
	default:
		return dataset.Subset{}, badInput("invalid_format", "format", `format is "coco" (the default), "yolo", "voc" or "png".`)
	}
	// mask_format is COCO's choice: YOLO is always polygons, VOC and PNG
	// always masks, so the one form can send it with any format.
	switch m := dataset.MaskFormat(maskFormat); {
	case maskFormat == "" || m == dataset.MaskRLE:
	case m == dataset.MaskPolygon:
		if sub.Format == dataset.COCO {
			sub.MaskFormat = m
		}
	default:
		return dataset.Subset{}, badInput("invalid_mask_format", "mask_format", `mask_format is "rle" (the default) or "polygon".`)
	}
	for _, sp := range dataset.Splits {
		if slices.Contains(splits, string(sp)) {
			sub.Splits = append(sub.Splits, sp)
		}
	}
	if len(sub.Splits) != len(splits) {
		return dataset.Subset{}, badInput("invalid_split", "split", `split is one or more of "train", "val" and "test".`)
	}
	if len(sub.Splits) == len(dataset.Splits) {
		sub.Splits = nil // all of them: the same subset as none
	}
	var unknown []string
	for _, name := range labels {
		name = strings.ToLower(name)
		i := slices.IndexFunc(cats, func(c queries.DatasetVersionLabel) bool { return c.Name == name })
		if i < 0 {
			unknown = append(unknown, name)
			continue
		}
		if !slices.Contains(sub.Labels, cats[i].LabelID) {
			sub.Labels = append(sub.Labels, cats[i].LabelID)
		}
	}
	if len(unknown) > 0 {
		return dataset.Subset{}, badInput("unknown_label", "labels",
			fmt.Sprintf("Version %d has no instances of: %s.", number, strings.Join(unknown, ", ")))
	}
	slices.SortFunc(sub.Labels, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	return sub, nil
}

var slugRe = regexp.MustCompile(`[^a-z0-9]+`)

// downloadName is the zip's file name: dataset, version and subset.
func downloadName(name string, number int32, sub dataset.Subset, cats []queries.DatasetVersionLabel) string {
	slug := strings.Trim(slugRe.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(slug) > 60 {
		slug = strings.Trim(slug[:60], "-")
	}
	if slug == "" {
		slug = "dataset"
	}
	parts := []string{slug, fmt.Sprintf("v%d", number)}
	for _, sp := range sub.Splits {
		parts = append(parts, string(sp))
	}
	if n := len(sub.Labels); n > 0 && n <= 3 {
		for _, c := range cats {
			if slices.Contains(sub.Labels, c.LabelID) {
				parts = append(parts, strings.Trim(slugRe.ReplaceAllString(c.Name, "-"), "-"))
			}
		}
	} else if n > 3 {
		parts = append(parts, fmt.Sprintf("%d-labels", n))
	}
	parts = append(parts, string(sub.Format))
	if sub.MaskFormat == dataset.MaskPolygon {
		parts = append(parts, "polygon")
	}
	if a := sub.Augment; a.Enabled() {
		parts = append(parts, fmt.Sprintf("aug%d-seed%d", a.Copies, a.Seed))
	}
	return strings.Join(parts, "-") + ".zip"
}

// publishedVersion reads the version of the route, refusing one that is
// not published yet.
func (s *Server) publishedVersion(c *fiber.Ctx) (queries.Dataset, dataset.Version, error) {
	d, v, err := s.versionParam(c)
	if err != nil {
		return queries.Dataset{}, dataset.Version{}, err
	}
	if v.State != queries.DatasetVersionStatePublished {
		return queries.Dataset{}, dataset.Version{}, problem.New(http.StatusConflict, "not_published", "",
			fmt.Sprintf("Version %d is %s, not published; there is nothing to download.", v.Number, v.State))
	}
	ver, err := dataset.LoadVersion(c.UserContext(), s.pool, v)
	if err != nil {
		return queries.Dataset{}, dataset.Version{}, err
	}
	return d, ver, nil
}

// downloadWriteIdle is how long a download may go without the client taking
// bytes before the connection is dropped. The server's WriteTimeout bounds
// a whole response, which a large download outlasts, so the stream pushes
// the deadline on as it writes.
const downloadWriteIdle = 10 * time.Minute

// versionDownload: GET /api/v1/datasets/{id}/versions/{n}/download and
// GET /datasets/{id}/versions/{n}/download (premium): the zip, streamed as
// it is built. Once the first byte is out the status cannot change: a
// failure after that closes the connection before the end of the chunked
// body, so that curl and browsers report the download as broken instead of
// keeping a truncated zip.
func (s *Server) versionDownload(c *fiber.Ctx) error {
	d, ver, err := s.publishedVersion(c)
	if err != nil {
		return err
	}
	sub, err := parseSubset(c.Query("format"), c.Query("mask_format"), queryValues(c, "split"), queryValues(c, "labels"), ver.Categories, ver.Number)
	if err != nil {
		return err
	}
	// Augmented copies are made as the zip streams; the request is checked
	// whole first, so a bad value is a 400 before any byte.
	if sub.Augment, err = augment.Parse(c.Query("augment"), c.Query("copies"), c.Query("augment_seed")); err != nil {
		return err
	}
	name := downloadName(d.Name, ver.Number, sub, ver.Categories)
	c.Set(fiber.HeaderContentType, "application/zip")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	// A version never changes, but a zip of gigabytes is not for caches.
	c.Set(fiber.HeaderCacheControl, "private, no-store, no-transform")
	c.Set("X-Content-Type-Options", "nosniff")

	// Nothing of the Fiber context may be used once the handler returns:
	// the stream runs after that, on fasthttp's own goroutine.
	conn := c.Context().Conn()
	log := logger(c, s.logger).With("dataset_id", d.ID, "version", ver.Number, "format", sub.Format)
	userID := currentUser(c).ID
	ex := &dataset.Exporter{DB: s.pool, Blobs: s.blobs}
	c.Context().SetBodyStreamWriter(func(bw *bufio.Writer) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		start := time.Now()
		out := &streamWriter{bw: bw, conn: conn}
		st, err := ex.Write(ctx, out, ver, sub)
		if err == nil {
			err = bw.Flush()
		}
		if err != nil {
			log.WarnContext(ctx, "download cut short", "user_id", userID, "error", err, "bytes", out.n)
			_ = conn.Close()
			return
		}
		log.InfoContext(ctx, "download done", "user_id", userID, "images", st.Images, "bytes", out.n,
			"duration", time.Since(start))
	})
	return nil
}

// streamWriter hands the zip to fasthttp in pieces of at most 64 KiB:
// fasthttp copies each write into a buffer it keeps for reuse, so one
// large image written whole would pin that much memory per download.
type streamWriter struct {
	bw       *bufio.Writer
	conn     net.Conn
	n        int64
	extended time.Time
}

const streamPiece = 64 << 10

func (w *streamWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		k := min(len(p), streamPiece)
		m, err := w.bw.Write(p[:k])
		written += m
		w.n += int64(m)
		if err != nil {
			return written, err
		}
		p = p[k:]
	}
	if time.Since(w.extended) > 5*time.Second {
		w.extended = time.Now()
		_ = w.conn.SetWriteDeadline(w.extended.Add(downloadWriteIdle))
	}
	return written, nil
}

// Flush implements dataset.Flusher.
func (w *streamWriter) Flush() error { return w.bw.Flush() }

// exportJSON is a prepared export in the API.
type exportJSON struct {
	ID         string     `json:"id"`
	Version    int        `json:"version"`
	Format     string     `json:"format"`
	MaskFormat string     `json:"mask_format"`
	Splits     []string   `json:"splits"`
	Labels     []string   `json:"labels"`
	Augment    string     `json:"augment,omitempty"`
	State      string     `json:"state"`
	Progress   float32    `json:"progress"`
	Bytes      *int64     `json:"bytes"`
	Error      *string    `json:"error,omitempty"`
	URL        *string    `json:"url"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

func labelNames(ids []uuid.UUID, cats []queries.DatasetVersionLabel) []string {
	names := []string{}
	for _, c := range cats {
		if slices.Contains(ids, c.LabelID) {
			names = append(names, c.Name)
		}
	}
	return names
}

func exportPath(d queries.Dataset, v queries.DatasetVersion, e queries.DatasetExport) string {
	return fmt.Sprintf("/datasets/%s/versions/%d/exports/%s", d.ID, v.Number, e.ID)
}

func toExportJSON(d queries.Dataset, v queries.DatasetVersion, e queries.DatasetExport, cats []queries.DatasetVersionLabel, showErr bool) exportJSON {
	j := exportJSON{
		ID: e.ID.String(), Version: int(v.Number), Format: e.Format, MaskFormat: e.MaskFormat, Splits: e.Splits, Labels: labelNames(e.LabelIds, cats),
		Augment: e.Augment, State: string(e.State), Progress: e.Progress, Bytes: e.ByteSize, CreatedAt: e.CreatedAt.UTC(), FinishedAt: utcPtr(e.FinishedAt),
	}
	if showErr {
		j.Error = e.Error
	}
	if e.State == queries.DatasetExportStateReady {
		u := "/api/v1" + exportPath(d, v, e) + "/file"
		j.URL = &u
	}
	return j
}

func (s *Server) exportRow(d queries.Dataset, v queries.DatasetVersion, e queries.DatasetExport, cats []queries.DatasetVersionLabel, admin bool) views.ExportRow {
	r := views.ExportRow{
		ID: e.ID.String(), Format: e.Format + map[string]string{"polygon": " (polygons)"}[e.MaskFormat], State: string(e.State), Progress: float64(e.Progress),
		Splits: "all", Labels: "all", Poll: exportPath(d, v, e), File: exportPath(d, v, e) + "/file",
	}
	if len(e.Splits) > 0 {
		r.Splits = strings.Join(e.Splits, ", ")
	}
	if len(e.LabelIds) > 0 {
		r.Labels = strings.Join(labelNames(e.LabelIds, cats), ", ")
	}
	if e.Augment != "" {
		r.Format += ", " + e.Augment
	}
	if e.ByteSize != nil {
		r.Size = sizeText(*e.ByteSize)
	}
	if e.State == queries.DatasetExportStateFailed {
		r.Error = "The export failed; ask for it again to retry."
		if admin && e.Error != nil {
			r.Error = *e.Error
		}
	}
	return r
}

// requestExport finds the prepared export of a subset or starts one; a
// failed one is tried again. Everyone asking for the same subset of a
// version shares one export.
func (s *Server) requestExport(ctx context.Context, v dataset.Version, sub dataset.Subset, by uuid.UUID) (queries.DatasetExport, bool, error) {
	if s.river == nil {
		return queries.DatasetExport{}, false, problem.New(http.StatusServiceUnavailable, "no_workers", "", "This process runs no background jobs; exports need them.")
	}
	splits := []string{}
	for _, sp := range sub.Splits {
		splits = append(splits, string(sp))
	}
	labels := sub.Labels
	if labels == nil {
		labels = []uuid.UUID{}
	}
	var (
		e       queries.DatasetExport
		started bool
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		e, err = s.q.ExportInsert(ctx, tx, queries.ExportInsertParams{
			VersionID: v.ID, Format: string(sub.Format), MaskFormat: string(sub.MaskFormat), Splits: splits, LabelIds: labels,
			Augment: sub.Augment.String(), RequestedBy: by,
		})
		if errors.Is(err, pgx.ErrNoRows) {
			// Asked for before: keep it, unless it failed.
			e, err = s.q.ExportGetBySubset(ctx, tx, queries.ExportGetBySubsetParams{
				VersionID: v.ID, Format: string(sub.Format), MaskFormat: string(sub.MaskFormat), Splits: splits, LabelIds: labels,
				Augment: sub.Augment.String(),
			})
			if err != nil {
				return fmt.Errorf("error reading export: %w", err)
			}
			if e.State != queries.DatasetExportStateFailed {
				return nil
			}
			if e, err = s.q.ExportRetry(ctx, tx, queries.ExportRetryParams{ID: e.ID, RequestedBy: by}); err != nil {
				return fmt.Errorf("error retrying export: %w", err)
			}
		} else if err != nil {
			return fmt.Errorf("error creating export: %w", err)
		}
		res, err := s.river.InsertTx(ctx, tx, jobs.ExportArgs{ExportID: e.ID}, nil)
		if err != nil {
			return fmt.Errorf("error queueing export: %w", err)
		}
		e.JobID = &res.Job.ID
		started = true
		return s.q.ExportSetJob(ctx, tx, queries.ExportSetJobParams{ID: e.ID, JobID: e.JobID})
	})
	return e, started, err
}

// apiExportCreate: POST /api/v1/datasets/{id}/versions/{n}/exports
// (premium) {format?, split?, labels?} → 202 {export} while it is built, 200
// when it is ready already.
func (s *Server) apiExportCreate(c *fiber.Ctx) error {
	d, ver, err := s.publishedVersion(c)
	if err != nil {
		return err
	}
	var in struct {
		Format     string   `json:"format"`
		MaskFormat string   `json:"mask_format"`
		Splits     []string `json:"splits"`
		Split      []string `json:"split"`
		Labels     []string `json:"labels"`
		Augment    string   `json:"augment"`
		Copies     *int     `json:"copies"`
		Seed       *uint64  `json:"augment_seed"`
	}
	if len(c.BodyRaw()) > 0 {
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
	}
	sub, err := parseSubset(in.Format, in.MaskFormat, append(in.Splits, in.Split...), in.Labels, ver.Categories, ver.Number)
	if err != nil {
		return err
	}
	var copies, seed string
	if in.Copies != nil {
		copies = strconv.Itoa(*in.Copies)
	}
	if in.Seed != nil {
		seed = strconv.FormatUint(*in.Seed, 10)
	}
	if sub.Augment, err = augment.Parse(in.Augment, copies, seed); err != nil {
		return err
	}
	e, _, err := s.requestExport(c.UserContext(), ver, sub, currentUser(c).ID)
	if err != nil {
		return err
	}
	status := http.StatusAccepted
	if e.State == queries.DatasetExportStateReady {
		status = http.StatusOK
	}
	admin := currentUser(c).Role.AtLeast(auth.RoleAdmin)
	return c.Status(status).JSON(fiber.Map{"export": toExportJSON(d, ver.DatasetVersion, e, ver.Categories, admin)})
}

// exportParam reads the export :eid of the route's version.
func (s *Server) exportParam(c *fiber.Ctx) (queries.Dataset, dataset.Version, queries.DatasetExport, error) {
	d, ver, err := s.publishedVersion(c)
	if err != nil {
		return queries.Dataset{}, dataset.Version{}, queries.DatasetExport{}, err
	}
	id, err := paramID(c, "eid")
	if err != nil {
		return queries.Dataset{}, dataset.Version{}, queries.DatasetExport{}, err
	}
	e, err := s.q.ExportGet(c.UserContext(), s.pool, id)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && e.VersionID != ver.ID {
		return queries.Dataset{}, dataset.Version{}, queries.DatasetExport{}, errNotFound
	}
	if err != nil {
		return queries.Dataset{}, dataset.Version{}, queries.DatasetExport{}, fmt.Errorf("error reading export: %w", err)
	}
	return d, ver, e, nil
}

// apiExportGet: GET /api/v1/datasets/{id}/versions/{n}/exports/{eid}
// (premium): its state and progress, and its url once ready.
func (s *Server) apiExportGet(c *fiber.Ctx) error {
	d, ver, e, err := s.exportParam(c)
	if err != nil {
		return err
	}
	admin := currentUser(c).Role.AtLeast(auth.RoleAdmin)
	return c.JSON(fiber.Map{"export": toExportJSON(d, ver.DatasetVersion, e, ver.Categories, admin)})
}

// exportFile: GET …/exports/{eid}/file (premium, page and API): the zip,
// as a redirect to a presigned URL (S3) or served from the folder.
func (s *Server) exportFile(c *fiber.Ctx) error {
	d, ver, e, err := s.exportParam(c)
	if err != nil {
		return err
	}
	if e.State != queries.DatasetExportStateReady || e.BlobKey == nil {
		return problem.New(http.StatusConflict, "not_ready", "", "This export is not ready yet; its page shows how far it is.")
	}
	sub := dataset.Subset{Format: dataset.Format(e.Format), MaskFormat: dataset.MaskFormat(e.MaskFormat), Labels: e.LabelIds}
	for _, sp := range e.Splits {
		sub.Splits = append(sub.Splits, dataset.Split(sp))
	}
	if sub.Augment, err = augment.FromString(e.Augment); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+downloadName(d.Name, ver.Number, sub, ver.Categories)+`"`)
	return s.sendBlob(c, *e.BlobKey, "application/zip")
}

// exportCreateSubmit: POST /datasets/{id}/versions/{n}/exports, the form
// twin of the API's.
func (s *Server) exportCreateSubmit(c *fiber.Ctx) error {
	d, ver, err := s.publishedVersion(c)
	if err != nil {
		return err
	}
	sub, err := parseSubset(c.FormValue("format"), c.FormValue("mask_format"), formValues(c, "split"), formValues(c, "labels"), ver.Categories, ver.Number)
	if err != nil {
		return err
	}
	if sub.Augment, err = augment.Parse(c.FormValue("augment"), c.FormValue("copies"), c.FormValue("augment_seed")); err != nil {
		return err
	}
	if _, _, err := s.requestExport(c.UserContext(), ver, sub, currentUser(c).ID); err != nil {
		return err
	}
	return c.Redirect(fmt.Sprintf("/datasets/%s/versions/%d#exports", d.ID, ver.Number), http.StatusSeeOther)
}

// exportPartial: GET /datasets/{id}/versions/{n}/exports/{eid}, one export's
// live row.
func (s *Server) exportPartial(c *fiber.Ctx) error {
	d, ver, e, err := s.exportParam(c)
	if err != nil {
		return err
	}
	admin := currentUser(c).Role.AtLeast(auth.RoleAdmin)
	return render(c, http.StatusOK, views.ExportItem(s.exportRow(d, ver.DatasetVersion, e, ver.Categories, admin)))
}
