package app

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/views"
)

func (s *Server) uploadPage(c *fiber.Ctx) error {
	d, err := s.uploadPageData(c)
	if err != nil {
		return err
	}
	d.Campaign = c.Query("campaign_id")
	return render(c, http.StatusOK, views.UploadPageView(s.page(c, "Upload"), d))
}

func (s *Server) uploadPageData(c *fiber.Ctx) (views.UploadPage, error) {
	ctx := c.UserContext()
	d := views.UploadPage{MaxBytes: humanBytes(s.cfg.UploadMaxFileBytes)}
	labels, err := s.q.LabelList(ctx, s.pool)
	if err != nil {
		return d, fmt.Errorf("error listing labels: %w", err)
	}
	for _, l := range labels {
		d.Labels = append(d.Labels, l.Name)
	}
	camps, err := s.campaigns(ctx, true)
	if err != nil {
		return d, err
	}
	for _, cp := range camps {
		d.Campaigns = append(d.Campaigns, campaignRow(cp))
	}
	return d, nil
}

// uploadSubmit is the upload form without JavaScript: every file in one
// request, outcomes rendered on the page.
func (s *Server) uploadSubmit(c *fiber.Ctx) error {
	results, status, err := s.upload(c)
	d, derr := s.uploadPageData(c)
	if derr != nil {
		return derr
	}
	if err != nil {
		pe, ok := problem.As(err)
		if !ok || pe.Status >= 500 && pe.Code != "storage_unavailable" {
			return err
		}
		d.Err = &views.FormError{Field: pe.Field, Message: pe.Message}
		status = pe.Status
		for k, v := range pe.Headers {
			c.Set(k, v)
		}
	}
	for _, r := range results {
		vr := views.UploadResult{Filename: r.Filename, Status: r.Status}
		if r.Error != nil {
			vr.Message = r.Error.Message
		}
		if r.Image != nil {
			vr.ImageID = r.Image.ID
		}
		d.Results = append(d.Results, vr)
	}
	if status == http.StatusMultiStatus {
		status = http.StatusOK // a page, not a multi-status document
	}
	return render(c, status, views.UploadPageView(s.page(c, "Upload"), d))
}

func toCard(j imageJSON) views.ImageCard {
	card := views.ImageCard{ID: j.ID, Filename: j.Filename, Status: j.Status, Labels: j.Labels, CreatedAt: j.CreatedAt, Thumbnail: j.ThumbnailURL}
	if j.Reason != nil {
		card.Reason = *j.Reason
	}
	return card
}

// myUploadsPage: the contributor's own uploads as a grid whose cards refresh
// their status by themselves.
func (s *Server) myUploadsPage(c *fiber.Ctx) error {
	f, err := parseImageListFilter(c)
	if err != nil {
		return err
	}
	items, next, err := s.listImages(c, f, false)
	if err != nil {
		return err
	}
	d := views.MyUploads{NextCursor: next}
	for _, it := range items {
		d.Cards = append(d.Cards, toCard(it))
	}
	return render(c, http.StatusOK, views.MyUploadsPage(s.page(c, "Your uploads"), d))
}

// imageCardPartial: one card, for htmx polling.
func (s *Server) imageCardPartial(c *fiber.Ctx) error {
	img, err := s.visibleImage(c)
	if err != nil {
		return err
	}
	j, err := s.imageJSON(c.UserContext(), img)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.ImageCardView(toCard(j)))
}

func (s *Server) imagePage(c *fiber.Ctx) error {
	img, a, err := s.seenImage(c)
	if err != nil {
		return err
	}
	j, err := s.detailFor(c.UserContext(), img, a)
	if err != nil {
		return err
	}
	d := views.ImageDetail{Card: toCard(j), Width: img.Width, Height: img.Height, SHA256: j.SHA256, Inference: inferenceView(c, j)}
	for _, an := range j.Annotations {
		d.Annotations = append(d.Annotations, views.AnnotationRow{ID: an.ID, Label: an.Label, Area: an.Area, Author: an.Author})
	}
	if img.Sha256 != nil {
		d.ReviewImage = "/images/" + img.ID.String() + "/thumb/review"
	}
	return render(c, http.StatusOK, views.ImagePage(s.page(c, j.Filename), d))
}

// imageThumb: GET /images/{id}/thumb/{size} (grid or review).
func (s *Server) imageThumb(c *fiber.Ctx) error {
	img, err := s.visibleImage(c)
	if err != nil {
		return err
	}
	size := c.Params("size")
	if size != blob.ThumbGrid && size != blob.ThumbReview {
		return problem.NotFound
	}
	if img.Sha256 == nil {
		return errNotReady
	}
	return s.sendBlob(c, blob.ThumbKey(size, img.Sha256), "image/jpeg")
}

// sendBlob answers with a blob: a redirect to a short-lived presigned URL when
// the store has them (S3), else the bytes streamed from the store. Content
// addressed, so it may be cached for long.
func (s *Server) sendBlob(c *fiber.Ctx, key, contentType string) error {
	ctx := c.UserContext()
	if url, ok, err := s.blobs.URL(ctx, key, 15*time.Minute); err != nil {
		return fmt.Errorf("error presigning %s: %w", key, err)
	} else if ok {
		c.Set(fiber.HeaderCacheControl, "private, max-age=600")
		return c.Redirect(url, http.StatusFound)
	}
	rc, info, err := s.blobs.Get(ctx, key)
	if errors.Is(err, blob.ErrNotFound) {
		return problem.New(http.StatusNotFound, "not_found", "", "The file is missing from the image store.")
	}
	if err != nil {
		return problem.New(http.StatusServiceUnavailable, "storage_unavailable", "", "The image store is not answering; try again in a minute.")
	}
	c.Set(fiber.HeaderContentType, contentType)
	c.Set(fiber.HeaderCacheControl, "private, max-age=86400, immutable")
	c.Set("X-Content-Type-Options", "nosniff")
	size := int(info.Size)
	if size <= 0 {
		size = -1
	}
	c.Context().SetBodyStream(readCloser{rc}, size)
	return nil
}

// readCloser lets fasthttp close the blob reader when it has sent it.
type readCloser struct{ io.ReadCloser }

// imageInferencePartial: GET /images/{id}/inference, the live section of
// the image page.
func (s *Server) imageInferencePartial(c *fiber.Ctx) error {
	img, a, err := s.seenImage(c)
	if err != nil {
		return err
	}
	j, err := s.detailFor(c.UserContext(), img, a)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.InferenceSection(inferenceView(c, j)))
}

func inferenceView(c *fiber.Ctx, j imageJSON) views.InferenceView {
	v := views.InferenceView{ImageID: j.ID, Staff: currentUser(c).Role.AtLeast(auth.RoleReviewer)}
	// Until ingest accepts the image there is nothing to wait for here.
	v.Pending = j.Status == string(queries.ImageStatusAwaitingInference)
	for _, r := range j.Inference {
		row := views.RunRow{Model: r.Model.Name + " " + r.Model.Version, State: r.State, Attempt: r.Attempt, Error: deref(r.LastError)}
		if r.Instances != nil {
			row.Instances = fmt.Sprint(*r.Instances)
		}
		v.Runs = append(v.Runs, row)
	}
	for _, p := range j.Proposals {
		v.Proposals = append(v.Proposals, views.ProposalRow{Label: p.Label, Model: p.Model.Name + " " + p.Model.Version, Score: p.Score, Area: p.Area})
	}
	return v
}
