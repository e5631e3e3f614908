package app

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
)

// imageJSON is an image as API.md shows it.
type imageJSON struct {
	ID              string           `json:"id"`
	SHA256          string           `json:"sha256"`
	Width           int32            `json:"width"`
	Height          int32            `json:"height"`
	Status          string           `json:"status"`
	Labels          []string         `json:"labels"`
	Reason          *string          `json:"reason,omitempty"`
	Filename        string           `json:"filename"`
	ContentType     string           `json:"content_type"`
	ByteSize        int64            `json:"byte_size"`
	CampaignID      *string          `json:"campaign_id"`
	NearDuplicateOf *string          `json:"near_duplicate_of,omitempty"`
	CreatedAt       time.Time        `json:"created_at"`
	FileURL         string           `json:"file_url"`
	ThumbnailURL    string           `json:"thumbnail_url,omitempty"`
	Proposals       []proposalJSON   `json:"proposals"`
	Annotations     []annotationJSON `json:"annotations"`
	// Inference is each model's run on the image; only GET /images/{id}
	// fills it.
	Inference []runJSON `json:"inference,omitempty"`
}

// maskJSON is a COCO compressed RLE (FORMATS.md).
type maskJSON struct {
	Size   [2]int32 `json:"size"`
	Counts string   `json:"counts"`
}

type modelRef struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// proposalJSON is one instance a model proposed (API.md).
type proposalJSON struct {
	ID    string   `json:"id"`
	Label string   `json:"label"`
	Score float32  `json:"score"`
	BBox  []int32  `json:"bbox"`
	Area  int32    `json:"area"`
	Mask  maskJSON `json:"mask"`
	Model modelRef `json:"model"`
}

// runJSON is how one model's inference of the image stands.
type runJSON struct {
	Model     modelRef  `json:"model"`
	State     string    `json:"state"`
	Attempt   int32     `json:"attempt"`
	Instances *int32    `json:"instances"`
	ErrorKind *string   `json:"error_kind"`
	LastError *string   `json:"last_error"`
	LatencyMS *int32    `json:"latency_ms"`
	UpdatedAt time.Time `json:"updated_at"`
	// ReportedVersion is the version the model said it is, when its
	// protocol says one (a Label Studio backend's model_version).
	ReportedVersion *string `json:"reported_version,omitempty"`
}

// imageDetailJSON is an image with its proposals and inference runs.
func (s *Server) imageDetailJSON(ctx context.Context, img queries.Image) (imageJSON, error) {
	j, err := s.imageJSON(ctx, img)
	if err != nil {
		return imageJSON{}, err
	}
	props, err := s.q.ProposalsForImage(ctx, s.pool, img.ID)
	if err != nil {
		return imageJSON{}, fmt.Errorf("error reading proposals: %w", err)
	}
	for _, p := range props {
		j.Proposals = append(j.Proposals, proposalJSON{
			ID: p.ID.String(), Label: p.Label, Score: p.Score, BBox: p.Bbox, Area: p.Area,
			Mask:  maskJSON{Size: [2]int32{p.Height, p.Width}, Counts: p.Counts},
			Model: modelRef{Name: p.ModelName, Version: p.ModelVersion},
		})
	}
	if j.Annotations, err = s.imageAnnotations(ctx, img.ID); err != nil {
		return imageJSON{}, err
	}
	runs, err := s.q.RunsForImage(ctx, s.pool, img.ID)
	if err != nil {
		return imageJSON{}, fmt.Errorf("error reading inference runs: %w", err)
	}
	j.Inference = []runJSON{}
	for _, r := range runs {
		j.Inference = append(j.Inference, runJSON{
			Model: modelRef{Name: r.ModelName, Version: r.ModelVersion}, State: string(r.State), Attempt: r.Attempt,
			Instances: r.Instances, ErrorKind: r.ErrorKind, LastError: r.LastError, LatencyMS: r.LatencyMs, UpdatedAt: r.UpdatedAt.UTC(),
			ReportedVersion: r.ReportedVersion,
		})
	}
	return j, nil
}

// imageHash is the hash an image is known by: its canonical bytes once ingest
// has run, the upload's before that.
func imageHash(img queries.Image) string {
	if img.Sha256 != nil {
		return hex.EncodeToString(img.Sha256)
	}
	return hex.EncodeToString(img.UploadSha256)
}

func (s *Server) imageJSON(ctx context.Context, img queries.Image) (imageJSON, error) {
	labels, err := s.q.ImageLabelNames(ctx, s.pool, img.ID)
	if err != nil {
		return imageJSON{}, fmt.Errorf("error reading labels: %w", err)
	}
	return toImageJSON(img, labels), nil
}

func toImageJSON(img queries.Image, labels []string) imageJSON {
	j := imageJSON{
		ID: img.ID.String(), SHA256: imageHash(img), Width: img.Width, Height: img.Height,
		Status: string(img.Status), Labels: labels, Reason: img.Reason, Filename: img.Filename,
		ContentType: img.ContentType, ByteSize: img.ByteSize, CreatedAt: img.CreatedAt.UTC(),
		FileURL: "/api/v1/images/" + img.ID.String() + "/file", Proposals: []proposalJSON{}, Annotations: []annotationJSON{},
	}
	if j.Labels == nil {
		j.Labels = []string{}
	}
	if img.CampaignID != nil {
		id := img.CampaignID.String()
		j.CampaignID = &id
	}
	if img.NearDuplicateOf != nil {
		id := img.NearDuplicateOf.String()
		j.NearDuplicateOf = &id
	}
	if img.Sha256 != nil {
		j.ThumbnailURL = "/images/" + img.ID.String() + "/thumb/grid"
	}
	return j
}

// visibleImage loads an image the caller may see (seenImage), for the
// routes that serve its bytes.
func (s *Server) visibleImage(c *fiber.Ctx) (queries.Image, error) {
	img, _, err := s.seenImage(c)
	return img, err
}

// apiImageGet: GET /api/v1/images/{id}.
func (s *Server) apiImageGet(c *fiber.Ctx) error {
	img, a, err := s.seenImage(c)
	if err != nil {
		return err
	}
	j, err := s.detailFor(c.UserContext(), img, a)
	if err != nil {
		return err
	}
	return c.JSON(j)
}

// imageListFilter is the filters of an image list.
type imageListFilter struct {
	status     *queries.ImageStatus
	label      *string
	campaignID *uuid.UUID
	limit      int
	before     *cursor
}

func parseImageListFilter(c *fiber.Ctx) (imageListFilter, error) {
	var f imageListFilter
	limit, after, err := pageParams(c)
	if err != nil {
		return f, err
	}
	f.limit, f.before = limit, after
	if v := c.Query("status"); v != "" {
		st := queries.ImageStatus(v)
		if !st.Valid() {
			return f, badInput("invalid_status", "status", "status must be one of uploaded, processing, awaiting_inference, awaiting_review, reviewed, flagged, rejected, failed.")
		}
		f.status = &st
	}
	if v := c.Query("label"); v != "" {
		v = strings.ToLower(v)
		f.label = &v
	}
	if v := c.Query("campaign_id"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return f, badInput("invalid_campaign", "campaign_id", "campaign_id is not a campaign id.")
		}
		f.campaignID = &id
	}
	return f, nil
}

// listImages returns one page of the images the caller may see, newest first.
func (s *Server) listImages(c *fiber.Ctx, f imageListFilter, all bool) ([]imageJSON, string, error) {
	ctx := c.UserContext()
	u := currentUser(c)
	var imgs []queries.Image
	var times []time.Time
	if all {
		p := queries.ImageListAllParams{Status: f.status, Label: f.label, CampaignID: f.campaignID, MaxRows: int32(f.limit + 1)}
		if f.before != nil {
			p.BeforeAt, p.BeforeID = &f.before.T, &f.before.ID
		}
		rows, err := s.q.ImageListAll(ctx, s.pool, p)
		if err != nil {
			return nil, "", fmt.Errorf("error listing images: %w", err)
		}
		for _, r := range rows {
			imgs, times = append(imgs, r.Image), append(times, r.UploadedAt)
		}
	} else {
		p := queries.ImageListByUploaderParams{UserID: u.ID, Status: f.status, Label: f.label, CampaignID: f.campaignID, MaxRows: int32(f.limit + 1)}
		if f.before != nil {
			p.BeforeAt, p.BeforeID = &f.before.T, &f.before.ID
		}
		rows, err := s.q.ImageListByUploader(ctx, s.pool, p)
		if err != nil {
			return nil, "", fmt.Errorf("error listing images: %w", err)
		}
		for _, r := range rows {
			// As this contributor uploaded it: their name for it, their campaign.
			img := asUploaded(r.Image, queries.ImageUpload{UserID: u.ID, Filename: r.UploadFilename, CampaignID: r.UploadCampaignID})
			imgs, times = append(imgs, img), append(times, r.UploadedAt)
		}
	}
	next := ""
	if len(imgs) > f.limit {
		imgs, times = imgs[:f.limit], times[:f.limit]
		next = cursor{T: times[f.limit-1], ID: imgs[f.limit-1].ID}.String()
	}
	ids := make([]uuid.UUID, len(imgs))
	for i, img := range imgs {
		ids[i] = img.ID
	}
	labelRows, err := s.q.ImageLabelNamesMany(ctx, s.pool, ids)
	if err != nil {
		return nil, "", fmt.Errorf("error reading labels: %w", err)
	}
	labels := map[uuid.UUID][]string{}
	for _, r := range labelRows {
		labels[r.ImageID] = append(labels[r.ImageID], r.Name)
	}
	out := make([]imageJSON, len(imgs))
	for i, img := range imgs {
		out[i] = toImageJSON(img, labels[img.ID])
	}
	return out, next, nil
}

// apiImageList: GET /api/v1/images: contributors see their own uploads,
// reviewers and above every image.
func (s *Server) apiImageList(c *fiber.Ctx) error {
	f, err := parseImageListFilter(c)
	if err != nil {
		return err
	}
	all := currentUser(c).Role.AtLeast(auth.RoleReviewer) && c.Query("mine") != "true"
	items, next, err := s.listImages(c, f, all)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"items": items, "next_cursor": nullIfEmpty(next)})
}

// apiImageFile: GET /api/v1/images/{id}/file → the image bytes (the canonical
// copy once ingest has cleaned it), or a redirect to a presigned URL.
func (s *Server) apiImageFile(c *fiber.Ctx) error {
	img, err := s.visibleImage(c)
	if err != nil {
		return err
	}
	if img.Sha256 == nil {
		// The upload's own bytes may still carry GPS data: nothing is served
		// before ingest has written the cleaned copy.
		return errNotReady
	}
	return s.sendBlob(c, blob.ImageKey(img.Sha256), img.ContentType)
}

var errNotReady = problem.New(http.StatusConflict, "not_ready", "", "The image is still being processed; try again in a moment.")
