package app

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/signedurl"
)

// errBadSignature answers a URL that is not signed for the image or has
// expired: 404, as for an object the caller may not see, so that the
// route tells nothing of which images exist.
var errBadSignature = problem.New(http.StatusNotFound, "not_found", "signature",
	"This link is not valid for this image, or it has expired.")

// signedImageFile: GET /api/v1/signed/images/{id}?expires=&signature=, the
// image's bytes (or a redirect to the blob store's presigned URL) to
// whoever holds a URL the hub signed for that image and that has not
// expired (package signedurl): how a Label Studio ML backend, which has no
// account, reads the image it is asked to label.
func (s *Server) signedImageFile(c *fiber.Ctx) error {
	id, err := uuid.Parse(c.Params("id"))
	if err != nil {
		return errBadSignature
	}
	if err := s.signer.Check(c.UserContext(), id, c.Query("expires"), c.Query("signature"), time.Now()); err != nil {
		if errors.Is(err, signedurl.ErrInvalid) {
			return errBadSignature
		}
		return err
	}
	img, err := s.q.ImageGet(c.UserContext(), s.pool, id)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && img.Sha256 == nil) {
		return problem.New(http.StatusNotFound, "not_found", "", "The image is gone.")
	}
	if err != nil {
		return fmt.Errorf("error reading image: %w", err)
	}
	return s.sendBlob(c, blob.ImageKey(img.Sha256), img.ContentType)
}
