// Package training runs trainings: a premium user asks for a recipe to be
// trained on a subset of a published dataset version, a remote trainer
// leases the run, downloads its data, reports progress and uploads the
// trained artifact, and the hub turns the artifact into a model version and
// evaluates it (docs/training.md holds the trainer protocol).
//
// States: queued → running (leased) → evaluating (artifact stored, model
// registered, evaluations started) → succeeded; a run goes back from running
// to queued with attempt + 1 when its lease lapses or its trainer reports a
// failure, and ends failed after max_attempts; cancelled from any state
// before succeeded. Every transition is an UPDATE guarded by the state it
// leaves, so two hubs on one database never both make it.
package training

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/dataset"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/webhook"
)

// The states of a training.
const (
	Queued     = "queued"
	Running    = "running"
	Evaluating = "evaluating"
	Succeeded  = "succeeded"
	Failed     = "failed"
	Cancelled  = "cancelled"
)

// Checker checks an uploaded artifact of one format and returns the labels
// it predicts, in its output order.
type Checker func(ctx context.Context, data []byte) (labels []string, err error)

// Options configure the service; zero values take the defaults of config.
type Options struct {
	// Recipes users may ask for (nil: DefaultRecipes).
	Recipes []Recipe
	// MaxConcurrent trainings per user not yet finished (default 1).
	MaxConcurrent int
	// MaxAttempts leases per run (default 3).
	MaxAttempts int
	// Lease is how long a trainer holds a run between reports (default 2m).
	Lease time.Duration
	// QueueTimeout ends a run that no trainer took within it, when no
	// trainer of its recipe asked for work or held a run of it in that
	// time either (default 24h).
	QueueTimeout time.Duration
	// MaxArtifactBytes caps an upload (default 512 MiB).
	MaxArtifactBytes int64
	// BaseURL is the hub's public address, for the data URLs.
	BaseURL string
	// CheckArtifact checks an artifact by its X-Artifact-Format:
	// "imagehub-region" is wired to the CPU trainer's regionmodel.Check,
	// "onnx" to onnxworker.CheckLoads (after the structural check of
	// checkONNX, which runs alone without an entry; an ONNX checker that
	// returns no labels keeps checkONNX's). A format without a checker is
	// refused.
	CheckArtifact map[string]Checker
	// Endpoint is the inference endpoint (the built-in worker) that serves
	// trained models; it becomes the registered model version's endpoint.
	Endpoint func() string
	// ServeONNX says why Endpoint cannot serve ONNX files (no ONNX Runtime
	// library, a build without cgo), nil when it can or is not asked. An
	// ONNX artifact it cannot serve is still stored and registered, with
	// the reason as the model's problem, but not evaluated: the run ends
	// failed with the reason instead of with metrics of a model that never
	// ran.
	ServeONNX func() error
}

func (o Options) withDefaults() Options {
	if o.Recipes == nil {
		o.Recipes = DefaultRecipes
	}
	if o.MaxConcurrent < 1 {
		o.MaxConcurrent = 1
	}
	if o.MaxAttempts < 1 {
		o.MaxAttempts = 3
	}
	if o.Lease <= 0 {
		o.Lease = 2 * time.Minute
	}
	if o.QueueTimeout <= 0 {
		o.QueueTimeout = 24 * time.Hour
	}
	if o.MaxArtifactBytes <= 0 {
		o.MaxArtifactBytes = 512 << 20
	}
	return o
}

// Service holds what trainings need.
type Service struct {
	pool  *pgxpool.Pool
	blobs blob.Store
	river *river.Client[pgx.Tx]
	opts  Options
	q     *queries.Queries
}

// NewService makes the service. river may be nil for a process that only
// reads trainings.
func NewService(pool *pgxpool.Pool, blobs blob.Store, client *river.Client[pgx.Tx], opts Options) *Service {
	return &Service{pool: pool, blobs: blobs, river: client, opts: opts.withDefaults(), q: queries.New()}
}

// Recipes lists the recipes, by name.
func (s *Service) Recipes() []Recipe {
	out := slices.Clone(s.opts.Recipes)
	slices.SortFunc(out, func(a, b Recipe) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (s *Service) recipe(name string) (Recipe, bool) {
	i := slices.IndexFunc(s.opts.Recipes, func(r Recipe) bool { return r.Name == name })
	if i < 0 {
		return Recipe{}, false
	}
	return s.opts.Recipes[i], true
}

// Request starts a training (POST /api/v1/trainings).
type Request struct {
	DatasetID string                     `json:"dataset_id"`
	Version   int                        `json:"version"`
	Labels    []string                   `json:"labels"`
	Recipe    string                     `json:"recipe"`
	Params    map[string]json.RawMessage `json:"params"`
	Retrain   bool                       `json:"retrain"`
	// Seed is the seed the trainer draws every random choice from; absent
	// (or null), the hub picks one. Raw so a wrong type is refused as 400
	// "seed" by the same check as a value out of range.
	Seed json.RawMessage `json:"seed"`
	// ModelName names the resulting model; empty is train-<first 8 of id>.
	ModelName string `json:"model_name"`
	// Enable registers the model enabled at once (admins only).
	Enable bool `json:"enable"`
}

var modelNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// errTooMany answers a user who has MaxConcurrent trainings unfinished.
var errTooMany = problem.New(http.StatusTooManyRequests, "too_many_trainings", "",
	"You have as many trainings in progress as you may; wait for one to finish or cancel it.")

// Create checks a request and queues the training with its watch job, in
// one transaction. Every refusal names the field at fault and queues nothing.
func (s *Service) Create(ctx context.Context, by queries.User, req Request) (Training, error) {
	var t Training
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		t, err = s.create(ctx, tx, by, req, nil)
		return err
	})
	return t, err
}

func (s *Service) create(ctx context.Context, tx pgx.Tx, by queries.User, req Request, retrainOf *uuid.UUID) (Training, error) {
	r, ok := s.recipe(strings.TrimSpace(req.Recipe))
	switch {
	case req.Recipe == "":
		return Training{}, problem.BadInput("missing_field", "recipe", "Say which recipe to train (GET /api/v1/trainings/recipes).")
	case !ok:
		return Training{}, problem.BadInput("unknown_recipe", "recipe", fmt.Sprintf("There is no recipe %q.", req.Recipe))
	}
	params, err := r.resolveParams(req.Params)
	if err != nil {
		return Training{}, err
	}
	seed, err := resolveSeed(req.Seed)
	if err != nil {
		return Training{}, err
	}
	dsID, err := uuid.Parse(req.DatasetID)
	if err != nil {
		return Training{}, problem.BadInput("unknown_dataset", "dataset_id", "There is no dataset with this id.")
	}
	ds, err := s.q.DatasetGet(ctx, tx, dsID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Training{}, problem.BadInput("unknown_dataset", "dataset_id", "There is no dataset with this id.")
	}
	if err != nil {
		return Training{}, fmt.Errorf("error reading dataset: %w", err)
	}
	if req.Version < 1 {
		return Training{}, problem.BadInput("missing_field", "version", "Say which version of the dataset, a number from 1.")
	}
	v, err := s.q.VersionGet(ctx, tx, queries.VersionGetParams{DatasetID: ds.ID, Number: int32(min(req.Version, 1<<30))})
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && v.State != queries.DatasetVersionStatePublished) {
		return Training{}, problem.BadInput("unknown_version", "version", fmt.Sprintf("Dataset %s has no published version %d.", ds.Name, req.Version))
	}
	if err != nil {
		return Training{}, fmt.Errorf("error reading version: %w", err)
	}
	cats, err := s.q.VersionLabels(ctx, tx, v.ID)
	if err != nil {
		return Training{}, fmt.Errorf("error reading the version's labels: %w", err)
	}
	// The labels go in the version's category order, which is the class
	// order of the data a trainer gets (YOLO numbers classes so).
	var picked []int
	for _, name := range req.Labels {
		name = strings.ToLower(strings.TrimSpace(name))
		i := slices.IndexFunc(cats, func(c queries.DatasetVersionLabel) bool { return c.Name == name })
		if i < 0 {
			return Training{}, problem.BadInput("unknown_label", "labels", fmt.Sprintf("Version %d has no label %q.", v.Number, name))
		}
		if !slices.Contains(picked, i) {
			picked = append(picked, i)
		}
	}
	slices.Sort(picked)
	labelIDs := []uuid.UUID{} // not nil: NULL would match no subset
	var names []string
	for _, i := range picked {
		labelIDs, names = append(labelIDs, cats[i].LabelID), append(names, cats[i].Name)
	}
	if len(names) == 0 {
		for _, c := range cats {
			names = append(names, c.Name)
		}
	}
	if r.LabelsMax > 0 && len(names) > r.LabelsMax {
		return Training{}, problem.BadInput("too_many_labels", "labels", fmt.Sprintf("Recipe %s trains at most %d labels.", r.Name, r.LabelsMax))
	}
	// The subset is the train split's images with an instance of a chosen
	// label; with none there is nothing to learn from.
	var n int
	if err := tx.QueryRow(ctx, `
		SELECT count(*) FROM dataset_version_images
		WHERE version_id = $1 AND split = 'train'
		  AND cardinality(annotation_labels) > 0
		  AND (cardinality($2::uuid[]) = 0 OR annotation_labels && $2::uuid[])`, v.ID, labelIDs).Scan(&n); err != nil {
		return Training{}, fmt.Errorf("error counting the subset: %w", err)
	}
	if n == 0 {
		return Training{}, problem.BadInput("empty_subset", "labels",
			fmt.Sprintf("The train split of version %d has no instances of these labels to learn from.", v.Number))
	}
	req.ModelName = strings.TrimSpace(req.ModelName)
	if req.ModelName != "" && !modelNameRe.MatchString(req.ModelName) {
		return Training{}, problem.BadInput("invalid", "model_name", "A model name is letters, digits, '.', '_' and '-', up to 128.")
	}
	if req.ModelName != "" && retrainOf == nil {
		// A name of a model no training made (or someone else's) is not
		// the user's to add versions to.
		var taken bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM models WHERE name = $1)
			OR EXISTS (SELECT 1 FROM trainings WHERE model_name = $1 AND created_by <> $2)`, req.ModelName, by.ID).Scan(&taken); err != nil {
			return Training{}, fmt.Errorf("error checking the model name: %w", err)
		}
		if taken {
			return Training{}, problem.BadInput("model_name_taken", "model_name", fmt.Sprintf("There is a model %s already; choose another name.", req.ModelName))
		}
	}
	if req.Enable && by.Role != auth.RoleAdmin {
		return Training{}, problem.BadInput("admins_only", "enable", "Only admins can enable the trained model at once.")
	}
	// One user's trainings are counted under a lock on the user, so two
	// requests at once cannot both pass the limit.
	if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, by.ID); err != nil {
		return Training{}, fmt.Errorf("error locking the user: %w", err)
	}
	if retrainOf == nil {
		var busy int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM trainings WHERE created_by = $1 AND state IN ('queued', 'running', 'evaluating')`,
			by.ID).Scan(&busy); err != nil {
			return Training{}, fmt.Errorf("error counting trainings: %w", err)
		}
		if busy >= s.opts.MaxConcurrent {
			return Training{}, errTooMany
		}
	}
	id := uuid.New()
	if req.ModelName == "" {
		req.ModelName = "train-" + id.String()[:8]
	}
	paramsJSON, err := json.Marshal(params)
	if err != nil {
		return Training{}, fmt.Errorf("error encoding params: %w", err)
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO trainings (id, created_by, dataset_id, version_id, version_number, label_ids, label_names,
		                       recipe, params, seed, retrain, retrain_of, enable, model_name, max_attempts)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		id, by.ID, ds.ID, v.ID, v.Number, labelIDs, names, r.Name, paramsJSON, seed, req.Retrain, retrainOf,
		req.Enable, req.ModelName, s.opts.MaxAttempts)
	if err != nil {
		return Training{}, fmt.Errorf("error recording the training: %w", err)
	}
	if s.river != nil {
		if _, err := s.river.InsertTx(ctx, tx, WatchArgs{TrainingID: id}, nil); err != nil {
			return Training{}, fmt.Errorf("error queueing the training's watch: %w", err)
		}
	}
	return get(ctx, tx, id)
}

// MaxSeed is the largest seed a run takes: every trainer's int32 seed
// holds it.
const MaxSeed = math.MaxInt32

// resolveSeed reads a request's seed, a whole number from 0 to MaxSeed, or
// picks one at random when there is none.
func resolveSeed(raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		return int64(binary.BigEndian.Uint64(b[:]) >> 33), nil // 0..MaxSeed
	}
	bad := problem.BadInput("invalid", "seed", fmt.Sprintf("seed is a whole number from 0 to %d.", MaxSeed))
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, bad
	}
	if v < 0 || v > MaxSeed || v != math.Trunc(v) {
		return 0, bad
	}
	return int64(v), nil
}

// Retrain queues, in tx, a run of every retrain training of the dataset of
// a version just published: the same subset, recipe and params on the new
// version, as the next version of the same model. A label the new version
// lacks is left out; a subset left empty queues nothing.
func (s *Service) Retrain(ctx context.Context, tx pgx.Tx, v queries.DatasetVersion) (int, error) {
	rows, err := tx.Query(ctx, `
		SELECT id FROM (
			SELECT DISTINCT ON (model_name) id, version_number FROM trainings
			WHERE dataset_id = $1 AND retrain AND state <> 'cancelled'
			ORDER BY model_name, version_number DESC, created_at DESC
		) latest
		-- a model already retrained on this version (a publish job run
		-- twice) gets no second run
		WHERE version_number < $2`, v.DatasetID, v.Number)
	if err != nil {
		return 0, fmt.Errorf("error finding trainings to run again: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return 0, fmt.Errorf("error finding trainings to run again: %w", err)
	}
	n := 0
	for _, id := range ids {
		t, err := get(ctx, tx, id)
		if err != nil {
			return n, err
		}
		u, err := s.q.UserGet(ctx, tx, t.CreatedBy)
		if err != nil {
			return n, fmt.Errorf("error reading the training's owner: %w", err)
		}
		params := map[string]json.RawMessage{}
		for k, val := range t.Params {
			b, _ := json.Marshal(val)
			params[k] = b
		}
		var labels []string
		if len(t.LabelIDs) > 0 {
			labels = t.Labels
		}
		// The same seed too: a retrain differs from its training only
		// by the data.
		req := Request{DatasetID: t.DatasetID.String(), Version: int(v.Number), Labels: labels, Recipe: t.Recipe,
			Params: params, Seed: json.RawMessage(strconv.FormatInt(t.Seed, 10)), Retrain: true, ModelName: t.ModelName, Enable: t.Enable && u.Role == auth.RoleAdmin}
		// A savepoint: one training that no longer fits must not undo
		// the others.
		sp, err := tx.Begin(ctx)
		if err != nil {
			return n, fmt.Errorf("error opening a savepoint: %w", err)
		}
		if _, err := s.create(ctx, sp, u, req, &t.ID); err != nil {
			_ = sp.Rollback(ctx)
			var pe *problem.Error
			if errors.As(err, &pe) {
				continue
			}
			return n, err
		}
		if err := sp.Commit(ctx); err != nil {
			return n, fmt.Errorf("error releasing the savepoint: %w", err)
		}
		n++
	}
	return n, nil
}

// dataFormat maps a recipe's format to the export's.
func dataFormat(f string) dataset.Format {
	if f == FormatYOLOSeg {
		return dataset.YOLO
	}
	return dataset.COCO
}

// finishing runs sql (an UPDATE of trainings that returns id and
// state::text) in one transaction with the training.finished events of the
// trainings it ended, and returns how many rows it changed.
func (s *Service) finishing(ctx context.Context, sql string, args ...any) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		n, err = s.finishingTx(ctx, tx, sql, args...)
		return err
	})
	return n, err
}

// finishingTx is finishing in the caller's transaction.
func (s *Service) finishingTx(ctx context.Context, tx pgx.Tx, sql string, args ...any) (int, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return 0, err
	}
	type ended struct {
		id    uuid.UUID
		state string
	}
	n := 0
	var done []ended
	for rows.Next() {
		var e ended
		if err := rows.Scan(&e.id, &e.state); err != nil {
			rows.Close()
			return 0, err
		}
		n++
		if e.state == Succeeded || e.state == Failed || e.state == Cancelled {
			done = append(done, e)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, e := range done {
		if err := webhook.Emit(ctx, tx, s.river, webhook.TrainingFinished, webhook.Training(e.id, e.state)); err != nil {
			return 0, err
		}
	}
	return n, nil
}
