package app

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/training"
)

// trainerAPIPrefix is the only part of the API a trainer token reaches.
const trainerAPIPrefix = "/api/v1/trainer/"

// trainingJSON is a training in the API (API.md, docs/training.md).
type trainingJSON struct {
	ID        string             `json:"id"`
	State     string             `json:"state"`
	DatasetID string             `json:"dataset_id"`
	Version   int                `json:"version"`
	Labels    []string           `json:"labels"`
	Recipe    string             `json:"recipe"`
	Params    map[string]float64 `json:"params"`
	Seed      int64              `json:"seed"`
	Retrain   bool               `json:"retrain"`
	Attempt   int                `json:"attempt"`
	Trainer   *string            `json:"trainer,omitempty"`
	Progress  progressJSON       `json:"progress"`
	Metrics   *trainingMetrics   `json:"metrics,omitempty"`
	Model     *modelRefJSON      `json:"model,omitempty"`
	Artifact  *artifactJSON      `json:"artifact,omitempty"`
	Error     *string            `json:"error,omitempty"`
	CreatedAt time.Time          `json:"created_at"`
	Finished  *time.Time         `json:"finished_at,omitempty"`
}

type progressJSON struct {
	Step  int      `json:"step"`
	Steps int      `json:"steps"`
	Epoch *int     `json:"epoch,omitempty"`
	Loss  *float64 `json:"loss,omitempty"`
	// Phase is the trainer's own word while running: "running", or
	// "evaluating" during its validation pass.
	Phase *string `json:"phase,omitempty"`
}

type artifactJSON struct {
	Format string `json:"format"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// trainingMetrics are the trained model's evaluation and the baseline's
// (the model proposing today, or the version before for a retrain).
type trainingMetrics struct {
	Evaluation *evaluationJSON `json:"evaluation"`
	Baseline   *evaluationJSON `json:"baseline,omitempty"`
}

func (s *Server) toTrainingJSON(ctx context.Context, t training.Training) trainingJSON {
	j := trainingJSON{
		ID: t.ID.String(), State: t.State, DatasetID: t.DatasetID.String(), Version: t.VersionNumber, Labels: t.Labels,
		Recipe: t.Recipe, Params: t.Params, Seed: t.Seed, Retrain: t.Retrain, Attempt: t.Attempt, Trainer: t.Trainer,
		Progress: progressJSON{Step: t.Step, Steps: t.Steps, Epoch: t.Epoch, Loss: t.Loss},
		Error:    t.Error, CreatedAt: t.CreatedAt, Finished: t.FinishedAt,
	}
	if t.State == training.Running {
		j.Progress.Phase = t.Phase
	}
	if t.ModelVersion != nil {
		j.Model = &modelRefJSON{Name: t.ModelName, Version: *t.ModelVersion}
	}
	if t.ArtifactKey != nil && t.ArtifactSize != nil && t.ArtifactFmt != nil {
		j.Artifact = &artifactJSON{Format: *t.ArtifactFmt, SHA256: fmt.Sprintf("%x", t.ArtifactSHA), Size: *t.ArtifactSize}
	}
	if t.EvaluationID != nil && t.State == training.Succeeded {
		m := &trainingMetrics{}
		if row, err := s.q.EvaluationGet(ctx, s.pool, *t.EvaluationID); err == nil {
			if e, err := s.toEvaluationJSON(ctx, row.Evaluation, row.ModelName, row.ModelVersion, true); err == nil {
				m.Evaluation = &e
			}
		}
		if t.BaselineID != nil {
			if row, err := s.q.EvaluationGet(ctx, s.pool, *t.BaselineID); err == nil {
				if e, err := s.toEvaluationJSON(ctx, row.Evaluation, row.ModelName, row.ModelVersion, true); err == nil {
					m.Baseline = &e
				}
			}
		}
		j.Metrics = m
	}
	return j
}

// apiTrainingCreate: POST /api/v1/trainings (premium) → 202 {training}.
func (s *Server) apiTrainingCreate(c *fiber.Ctx) error {
	var req training.Request
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	t, err := s.training.Create(c.UserContext(), *currentUser(c), req)
	if err != nil {
		return err
	}
	return c.Status(http.StatusAccepted).JSON(fiber.Map{"training": fiber.Map{"id": t.ID, "state": t.State}})
}

// apiTrainingList: GET /api/v1/trainings → the caller's (admins: all),
// newest first, a page at a time (?limit=, ?cursor=).
func (s *Server) apiTrainingList(c *fiber.Ctx) error {
	limit, after, err := pageParams(c)
	if err != nil {
		return err
	}
	var from *training.After
	if after != nil {
		from = &training.After{At: after.T, ID: after.ID}
	}
	u := currentUser(c)
	ts, err := s.training.List(c.UserContext(), u.ID, u.Role == auth.RoleAdmin, limit+1, from)
	if err != nil {
		return err
	}
	next := ""
	if len(ts) > limit {
		ts = ts[:limit]
		next = cursor{T: ts[limit-1].CreatedAt, ID: ts[limit-1].ID}.String()
	}
	items := make([]trainingJSON, len(ts))
	for i, t := range ts {
		items[i] = s.toTrainingJSON(c.UserContext(), t)
	}
	return c.JSON(fiber.Map{"items": items, "next_cursor": nullIfEmpty(next)})
}

func (s *Server) trainingParam(c *fiber.Ctx) (training.Training, error) {
	id, err := paramID(c, "id")
	if err != nil {
		return training.Training{}, err
	}
	u := currentUser(c)
	return s.training.Get(c.UserContext(), id, u.ID, u.Role == auth.RoleAdmin)
}

// apiTrainingGet: GET /api/v1/trainings/{id}.
func (s *Server) apiTrainingGet(c *fiber.Ctx) error {
	t, err := s.trainingParam(c)
	if err != nil {
		return err
	}
	return c.JSON(s.toTrainingJSON(c.UserContext(), t))
}

// apiTrainingCancel: POST /api/v1/trainings/{id}/cancel.
func (s *Server) apiTrainingCancel(c *fiber.Ctx) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	u := currentUser(c)
	t, err := s.training.Cancel(c.UserContext(), id, u.ID, u.Role == auth.RoleAdmin)
	if err != nil {
		return err
	}
	return c.JSON(s.toTrainingJSON(c.UserContext(), t))
}

// recipeJSON is a recipe with the trainer last seen asking for its work.
type recipeJSON struct {
	training.Recipe
	Trainer *trainerSeenJSON `json:"trainer"`
}

type trainerSeenJSON struct {
	Name   string    `json:"name"`
	SeenAt time.Time `json:"seen_at"`
}

// apiTrainingRecipes: GET /api/v1/trainings/recipes.
func (s *Server) apiTrainingRecipes(c *fiber.Ctx) error {
	seen, err := s.training.TrainersSeen(c.UserContext())
	if err != nil {
		return err
	}
	items := []recipeJSON{}
	for _, r := range s.training.Recipes() {
		item := recipeJSON{Recipe: r}
		if t, ok := seen[r.Name]; ok {
			item.Trainer = &trainerSeenJSON{Name: t.Trainer, SeenAt: t.At.UTC()}
		}
		items = append(items, item)
	}
	return c.JSON(fiber.Map{"items": items})
}

// apiTrainingArtifact: GET /api/v1/trainings/{id}/artifact, the trained file.
func (s *Server) apiTrainingArtifact(c *fiber.Ctx) error {
	t, err := s.trainingParam(c)
	if err != nil {
		return err
	}
	rc, err := s.training.Artifact(c.UserContext(), t)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "application/octet-stream")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+t.ModelName+`.`+*t.ArtifactFmt+`"`)
	c.Set(fiber.HeaderCacheControl, "private, no-store")
	return c.SendStream(rc, int(*t.ArtifactSize))
}

// Trainer routes (docs/training.md).

func leaseToken(c *fiber.Ctx) string { return c.Get("X-Lease-Token") }

// apiTrainerLease: POST /api/v1/trainer/lease → 200 {run} or 204.
func (s *Server) apiTrainerLease(c *fiber.Ctx) error {
	var in struct {
		Recipes []string `json:"recipes"`
		Trainer string   `json:"trainer"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	run, err := s.training.Take(c.UserContext(), in.Recipes, in.Trainer)
	if err != nil {
		return err
	}
	if run == nil {
		return c.SendStatus(http.StatusNoContent)
	}
	return c.JSON(fiber.Map{"run": run})
}

// apiTrainerProgress: POST /api/v1/trainer/runs/{id}/progress.
func (s *Server) apiTrainerProgress(c *fiber.Ctx) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	var in training.Report
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	lease, cancel, err := s.training.Progress(c.UserContext(), id, leaseToken(c), in)
	if err != nil {
		return err
	}
	if cancel {
		return c.JSON(fiber.Map{"lease": nil, "cancel": true})
	}
	return c.JSON(fiber.Map{"lease": lease, "cancel": false})
}

// apiTrainerFail: POST /api/v1/trainer/runs/{id}/fail.
func (s *Server) apiTrainerFail(c *fiber.Ctx) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	var in struct {
		Error string `json:"error"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if err := s.training.Fail(c.UserContext(), id, leaseToken(c), in.Error); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"ok": true})
}

// apiTrainerArtifact: PUT /api/v1/trainer/runs/{id}/artifact, streamed.
func (s *Server) apiTrainerArtifact(c *fiber.Ctx) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	t, err := s.training.Upload(c.UserContext(), id, leaseToken(c), c.Get("X-Artifact-Format"), c.Get("X-Artifact-Layout"), bodyStream(c))
	if err != nil {
		return err
	}
	j := fiber.Map{"state": t.State}
	if t.ModelVersion != nil {
		j["model"] = modelRefJSON{Name: t.ModelName, Version: *t.ModelVersion}
	}
	return c.JSON(j)
}

// trainerData: GET /api/v1/trainer/runs/{id}/data/{split}?key=…, the run's
// data zip. Public: the key in the URL, good while the lease lives, is
// the credential, so the trainer's download tool needs no header.
func (s *Server) trainerData(c *fiber.Ctx) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	// A copy: Fiber's strings point into a buffer it reuses once the
	// handler returns, and the stream below runs after that.
	split := strings.Clone(c.Params("split"))
	if err := s.training.DataReady(c.UserContext(), id, split, c.Query("key")); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "application/zip")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+split+`.zip"`)
	c.Set(fiber.HeaderCacheControl, "private, no-store, no-transform")
	conn := c.Context().Conn()
	log := logger(c, s.logger).With("training_id", id, "split", split)
	c.Context().SetBodyStreamWriter(func(bw *bufio.Writer) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out := &streamWriter{bw: bw, conn: conn}
		err := s.training.WriteData(ctx, id, split, out)
		if err == nil {
			err = bw.Flush()
		}
		if err != nil {
			log.WarnContext(ctx, "training data download cut short", "error", err, "bytes", out.n)
			_ = conn.Close()
		}
	})
	return nil
}
