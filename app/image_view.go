package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/inference"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
)

// audience is what one caller may see of one image. The rules, in one place:
//
//   - Admins see everything, except while they hold the image's second
//     review themselves.
//   - Reviewers (and premium users) see the proposals, the annotations with
//     their authors and the inference runs with the kind of each failure,
//     but nothing of the first review while a blind second review of the
//     image is open that they may be handed (they are not its first
//     reviewer): no annotations, no authors, and, as in the review API's
//     answer for a second review, no proposals either.
//   - The contributor who first uploaded an image sees its proposals and
//     its annotations without reviewer names, and a plain sentence for a
//     failed inference instead of the error an inference server gave.
//   - A contributor who uploaded the same bytes later sees the image as
//     their own upload: its status, its labels, the name and campaign they
//     gave it; not the first uploader's file name, nor proposals,
//     annotations, inference runs or reviewers.
type audience struct {
	admin bool
	staff bool
	// blind: a second review of the image is open for this reviewer.
	blind bool
	// owner: the contributor who first uploaded the image.
	owner bool
	// upload is a contributor's own upload of the image.
	upload *queries.ImageUpload
}

// seesFirstReview reports whether the caller may see the proposals and the
// annotations of the image.
func (a audience) seesFirstReview() bool {
	return !a.blind && (a.staff || a.owner)
}

// seenImage loads an image the caller may see, and what they may see of it.
// Anything they may not see is 404, so an id reveals nothing.
func (s *Server) seenImage(c *fiber.Ctx) (queries.Image, audience, error) {
	id, err := paramID(c, "id")
	if err != nil {
		return queries.Image{}, audience{}, err
	}
	ctx := c.UserContext()
	img, err := s.q.ImageGet(ctx, s.pool, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return queries.Image{}, audience{}, problem.NotFound
	}
	if err != nil {
		return queries.Image{}, audience{}, fmt.Errorf("error reading image: %w", err)
	}
	u := currentUser(c)
	if u.Role.AtLeast(auth.RoleReviewer) {
		a := audience{staff: true, admin: u.Role.AtLeast(auth.RoleAdmin)}
		st, err := s.q.ReviewBlindFor(ctx, s.pool, queries.ReviewBlindForParams{ImageID: id, UserID: u.ID})
		if err != nil {
			return queries.Image{}, audience{}, fmt.Errorf("error checking second review: %w", err)
		}
		a.blind = st.Holds || (st.MayTake && !a.admin)
		return img, a, nil
	}
	up, err := s.q.ImageUploadGet(ctx, s.pool, queries.ImageUploadGetParams{ImageID: id, UserID: u.ID})
	if errors.Is(err, pgx.ErrNoRows) {
		return queries.Image{}, audience{}, problem.NotFound
	}
	if err != nil {
		return queries.Image{}, audience{}, fmt.Errorf("error checking uploader: %w", err)
	}
	return asUploaded(img, up), audience{owner: img.OwnerID == u.ID, upload: &up}, nil
}

// asUploaded is an image as one of its uploaders knows it: under the name
// and campaign they gave it. Who else sent the same bytes, and what their
// photo is near to, stays with its first uploader.
func asUploaded(img queries.Image, up queries.ImageUpload) queries.Image {
	img.Filename, img.CampaignID = up.Filename, up.CampaignID
	if img.OwnerID != up.UserID {
		img.NearDuplicateOf = nil
	}
	return img
}

// runErrorText is what a failed or retried inference says to someone who
// may not read the inference server's own error (it can carry internal
// addresses and bodies): one sentence per kind of failure.
func runErrorText(kind *string) *string {
	if kind == nil {
		return nil
	}
	var msg string
	switch *kind {
	case inference.KindRetryable:
		msg = "The model server did not answer in time; it will be tried again."
	case inference.KindBusy, "waiting":
		msg = "The model servers are busy; this photo waits its turn."
	case inference.KindContract:
		msg = "The model's answer could not be used."
	case inference.KindCanceled:
		msg = "The model run was stopped."
	default:
		msg = "The model could not process this photo."
	}
	return &msg
}

// detailFor is the image with what this audience may see of its proposals,
// annotations and inference runs.
func (s *Server) detailFor(ctx context.Context, img queries.Image, a audience) (imageJSON, error) {
	j, err := s.imageDetailJSON(ctx, img)
	if err != nil {
		return imageJSON{}, err
	}
	if !a.seesFirstReview() {
		j.Proposals, j.Annotations = []proposalJSON{}, []annotationJSON{}
	}
	if !a.staff {
		for i := range j.Annotations {
			j.Annotations[i].Author = ""
		}
		if !a.owner {
			j.Inference = []runJSON{}
		}
	}
	if !a.admin {
		for i := range j.Inference {
			j.Inference[i].LastError = runErrorText(j.Inference[i].ErrorKind)
		}
	}
	return j, nil
}
