package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/riverqueue/river/rivertype"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/jobs"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
)

// jobJSON is a background job as API.md shows it.
type jobJSON struct {
	ID       string     `json:"id"`
	Kind     string     `json:"kind"`
	State    string     `json:"state"`
	Attempt  int        `json:"attempt"`
	Errors   []jobError `json:"errors"`
	Progress *float32   `json:"progress,omitempty"`
}

type jobError struct {
	At      time.Time `json:"at"`
	Attempt int       `json:"attempt"`
	Error   string    `json:"error"`
}

// apiJobGet: GET /api/v1/jobs/{id}. Admins see every job; anyone else the
// jobs of images they uploaded (ingest, inference). Other ids answer 404.
func (s *Server) apiJobGet(c *fiber.Ctx) error {
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil || s.river == nil {
		return problem.NotFound
	}
	ctx := c.UserContext()
	job, err := s.river.JobGet(ctx, id)
	if errors.Is(err, rivertype.ErrNotFound) {
		return problem.NotFound
	}
	if err != nil {
		return fmt.Errorf("error reading job: %w", err)
	}
	var args struct {
		ImageID   *uuid.UUID `json:"image_id"`
		VersionID *uuid.UUID `json:"version_id"`
	}
	_ = json.Unmarshal(job.EncodedArgs, &args) // kinds without these fields leave them nil
	u := currentUser(c)
	if !u.Role.AtLeast(auth.RoleAdmin) {
		if args.ImageID == nil {
			return problem.NotFound
		}
		mine, err := s.q.ImageUploadedBy(ctx, s.pool, queries.ImageUploadedByParams{ImageID: *args.ImageID, UserID: u.ID})
		if err != nil {
			return fmt.Errorf("error checking uploader: %w", err)
		}
		if !mine {
			return problem.NotFound
		}
	}
	j := jobJSON{ID: strconv.FormatInt(job.ID, 10), Kind: job.Kind, State: string(job.State), Attempt: job.Attempt, Errors: []jobError{}}
	for _, e := range job.Errors {
		msg := e.Error
		if !u.Role.AtLeast(auth.RoleAdmin) {
			// A job's error can carry internal addresses and what an
			// inference server answered: only admins read it.
			msg = "This attempt failed; the job is retried while attempts remain. An admin can see why."
		}
		j.Errors = append(j.Errors, jobError{At: e.At.UTC(), Attempt: e.Attempt, Error: msg})
	}
	if job.Kind == (jobs.PublishArgs{}).Kind() && args.VersionID != nil {
		if v, err := s.q.VersionGetByID(ctx, s.pool, *args.VersionID); err == nil {
			p := v.Progress
			j.Progress = &p
		}
	}
	return c.JSON(j)
}
