package training

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/dataset"
	"github.com/deepimageshub/imagehub/problem"
)

// ErrLeaseLost answers a trainer whose lease has ended: it must stop.
var ErrLeaseLost = problem.New(http.StatusConflict, "lease_lost", "",
	"This run's lease has ended (it lapsed, or the run was taken again); stop working on it.")

// Lease is what a trainer holds a run by.
type Lease struct {
	Token       string    `json:"token"`
	ExpiresAt   time.Time `json:"expires_at"`
	RenewEveryS int       `json:"renew_every_s"`
}

// Link is one download of a run's data.
type Link struct {
	URL string `json:"url"`
}

// Data is a run's data: the version's train and val splits, restricted to
// the run's labels, in the recipe's format.
type Data struct {
	Format string `json:"format"`
	Train  Link   `json:"train"`
	Val    Link   `json:"val"`
}

// Run is a leased run as the trainer sees it (docs/training.md).
type Run struct {
	ID      uuid.UUID          `json:"id"`
	Recipe  string             `json:"recipe"`
	Params  map[string]float64 `json:"params"`
	Seed    int64              `json:"seed"`
	Labels  []string           `json:"labels"`
	Attempt int                `json:"attempt"`
	Data    Data               `json:"data"`
	Lease   Lease              `json:"lease"`
}

func (s *Service) newLease() (Lease, []byte) {
	plain, hash := auth.NewSecret("lease_")
	return Lease{Token: plain, ExpiresAt: time.Now().Add(s.opts.Lease).UTC(),
		RenewEveryS: max(1, int(s.opts.Lease.Seconds()/3))}, hash
}

// expireSQL puts runs whose lease lapsed back in the queue, or ends them
// failed after their last attempt. It runs in every lease call and in the
// watch job, so a dead trainer's run moves on whether or not another
// trainer asks.
const expireSQL = `
	UPDATE trainings SET
		state = CASE WHEN attempt >= max_attempts THEN 'failed'::training_state ELSE 'queued'::training_state END,
		error = CASE WHEN attempt >= max_attempts
		             THEN 'gave up after ' || attempt || ' attempts: the trainer of the last stopped reporting (lease lapsed)'
		             ELSE 'attempt ' || attempt || ': the trainer stopped reporting (lease lapsed)' END,
		finished_at = CASE WHEN attempt >= max_attempts THEN now() END,
		lease_hash = NULL, lease_expires_at = NULL, data_key_hash = NULL
	WHERE state = 'running' AND lease_expires_at < now()
	RETURNING id, state::text`

// unclaimedSQL ends runs that no trainer took within the queue timeout
// ($1 seconds, $2 as the error says it), when nothing that trains their
// recipe asked for work or held a run of it in that time: the recipe has
// no trainer (yolo-seg on make run), and the run would otherwise hold its
// owner's training slot for ever. A run once taken has had a trainer and
// waits on: its trainer may come back.
const unclaimedSQL = `
	UPDATE trainings t SET state = 'failed', finished_at = now(),
		error = 'no trainer took this run within ' || $2 || ': ' || coalesce(
			'the last trainer of ' || t.recipe || ' asked for work at ' ||
			  to_char((SELECT p.polled_at FROM trainer_polls p WHERE p.recipe = t.recipe) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'),
			'no trainer that trains ' || t.recipe || ' has asked this hub for work (docs/training.md: a trainer names the recipes it trains when it asks)')
	WHERE t.state = 'queued' AND t.attempt = 0 AND t.created_at < now() - make_interval(secs => $1)
	  AND NOT EXISTS (SELECT 1 FROM trainer_polls p WHERE p.recipe = t.recipe AND p.polled_at > now() - make_interval(secs => $1))
	  AND NOT EXISTS (SELECT 1 FROM trainings r WHERE r.recipe = t.recipe AND r.state = 'running')
	RETURNING t.id, t.state::text`

// Sweep runs the lease expiry, and the end of runs no trainer claims, once.
func (s *Service) Sweep(ctx context.Context) error {
	if _, err := s.finishing(ctx, expireSQL); err != nil {
		return fmt.Errorf("error ending lapsed leases: %w", err)
	}
	if _, err := s.finishing(ctx, unclaimedSQL, s.opts.QueueTimeout.Seconds(), shortDuration(s.opts.QueueTimeout)); err != nil {
		return fmt.Errorf("error ending trainings no trainer took: %w", err)
	}
	return nil
}

// shortDuration writes d as people do: "24h", "1h30m", "90s" rather than
// "24h0m0s".
func shortDuration(d time.Duration) string {
	t := d.String()
	if strings.HasSuffix(t, "m0s") {
		t = strings.TrimSuffix(t, "0s")
	}
	if strings.HasSuffix(t, "h0m") {
		t = strings.TrimSuffix(t, "0m")
	}
	return t
}

// recordPoll notes that trainer asked for work of recipes (those the hub
// knows, once each), at most every few seconds per recipe so that idle
// trainers polling do not make a write each.
func (s *Service) recordPoll(ctx context.Context, recipes []string, trainer string) error {
	var known []string
	for _, name := range recipes {
		if _, ok := s.recipe(name); ok && !slices.Contains(known, name) {
			known = append(known, name)
		}
	}
	if len(known) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO trainer_polls (recipe, trainer, polled_at)
		SELECT r, $2, now() FROM unnest($1::text[]) r
		ON CONFLICT (recipe) DO UPDATE SET trainer = EXCLUDED.trainer, polled_at = EXCLUDED.polled_at
		WHERE trainer_polls.polled_at < now() - interval '5 seconds'`, known, trainer)
	if err != nil {
		return fmt.Errorf("error recording the trainer's poll: %w", err)
	}
	return nil
}

// TrainerSeen is when a trainer of a recipe last asked for work, and its
// name/version.
type TrainerSeen struct {
	Trainer string
	At      time.Time
}

// TrainersSeen says, by recipe, when a trainer last asked for work of it,
// or now for a recipe whose run a trainer holds a live lease on (it asks
// again only when done); a recipe missing from the map has never had one.
func (s *Service) TrainersSeen(ctx context.Context) (map[string]TrainerSeen, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ON (recipe) recipe, trainer, at FROM (
			SELECT recipe, trainer, polled_at AS at FROM trainer_polls
			UNION ALL
			SELECT recipe, trainer, now() FROM trainings WHERE state = 'running' AND lease_expires_at > now() AND trainer IS NOT NULL
		) seen ORDER BY recipe, at DESC`)
	if err != nil {
		return nil, fmt.Errorf("error reading the trainers' polls: %w", err)
	}
	seen := map[string]TrainerSeen{}
	var recipe string
	var t TrainerSeen
	_, err = pgx.ForEachRow(rows, []any{&recipe, &t.Trainer, &t.At}, func() error {
		seen[recipe] = t
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("error reading the trainers' polls: %w", err)
	}
	return seen, nil
}

// Take leases the oldest queued run of one of recipes to trainer, or
// returns nil when none waits. Two trainers asking at once get different
// runs (FOR UPDATE SKIP LOCKED).
func (s *Service) Take(ctx context.Context, recipes []string, trainer string) (*Run, error) {
	if len(recipes) == 0 {
		return nil, problem.BadInput("missing_field", "recipes", "List the recipes this trainer can train.")
	}
	trainer = strings.TrimSpace(trainer)
	if trainer == "" || len(trainer) > 200 {
		return nil, problem.BadInput("missing_field", "trainer", "Say the trainer's name/version (up to 200 characters): it is recorded with the run.")
	}
	if err := s.recordPoll(ctx, recipes, trainer); err != nil {
		return nil, err
	}
	if err := s.Sweep(ctx); err != nil {
		return nil, err
	}
	var run *Run
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var id uuid.UUID
		err := tx.QueryRow(ctx, `SELECT id FROM trainings WHERE state = 'queued' AND recipe = ANY($1)
			ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED`, recipes).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("error finding a queued training: %w", err)
		}
		lease, hash := s.newLease()
		key, keyHash := auth.NewSecret("data_")
		if _, err := tx.Exec(ctx, `UPDATE trainings SET state = 'running', attempt = attempt + 1, lease_hash = $2,
			lease_expires_at = $3, data_key_hash = $4, trainer = $5, started_at = coalesce(started_at, now()),
			step = 0, steps = 0, epoch = NULL, loss = NULL, phase = NULL WHERE id = $1`,
			id, hash, lease.ExpiresAt, keyHash, trainer); err != nil {
			return fmt.Errorf("error leasing the training: %w", err)
		}
		t, err := get(ctx, tx, id)
		if err != nil {
			return err
		}
		r, _ := s.recipe(t.Recipe)
		base := strings.TrimRight(s.opts.BaseURL, "/") + "/api/v1/trainer/runs/" + id.String() + "/data/"
		q := "?key=" + url.QueryEscape(key)
		run = &Run{ID: id, Recipe: t.Recipe, Params: t.Params, Seed: t.Seed, Labels: t.Labels, Attempt: t.Attempt,
			Data:  Data{Format: r.Format, Train: Link{URL: base + "train" + q}, Val: Link{URL: base + "val" + q}},
			Lease: lease}
		if run.Data.Format == "" {
			run.Data.Format = FormatCOCO
		}
		return nil
	})
	return run, err
}

// Report is a trainer's progress report.
type Report struct {
	Step  int      `json:"step"`
	Steps int      `json:"steps"`
	Epoch *int     `json:"epoch"`
	Loss  *float64 `json:"loss"`
	State string   `json:"state"`
}

// Progress records a report and renews the lease. cancel tells the trainer
// to stop: the run was cancelled.
func (s *Service) Progress(ctx context.Context, id uuid.UUID, token string, p Report) (Lease, bool, error) {
	switch {
	case p.Step < 0 || p.Steps < 0 || p.Step > p.Steps && p.Steps > 0:
		return Lease{}, false, problem.BadInput("invalid", "step", "step and steps are whole numbers, step at most steps.")
	case p.State != "" && p.State != Running && p.State != Evaluating:
		return Lease{}, false, problem.BadInput("invalid", "state", `state is "running" or "evaluating".`)
	}
	var lease Lease
	cancel := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var state string
		var attempt int
		err := tx.QueryRow(ctx, `SELECT state::text, attempt FROM trainings WHERE id = $1 AND lease_hash = $2
			AND (state = 'cancelled' OR lease_expires_at > now()) FOR UPDATE`, id, auth.HashSecret(token)).Scan(&state, &attempt)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrLeaseLost
		}
		if err != nil {
			return fmt.Errorf("error reading the lease: %w", err)
		}
		if state == Cancelled {
			cancel = true
			return nil
		}
		if state != Running {
			return ErrLeaseLost
		}
		// The same token, a later expiry.
		lease, _ = s.newLease()
		lease.Token = token
		if _, err := tx.Exec(ctx, `UPDATE trainings SET lease_expires_at = $2, step = $3, steps = $4, epoch = $5, loss = $6,
			phase = coalesce(nullif($7, ''), 'running') WHERE id = $1`, id, lease.ExpiresAt, p.Step, p.Steps, p.Epoch, p.Loss, p.State); err != nil {
			return fmt.Errorf("error renewing the lease: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO training_progress (training_id, attempt, step, steps, epoch, loss)
			VALUES ($1, $2, $3, $4, $5, $6)`, id, attempt, p.Step, p.Steps, p.Epoch, p.Loss); err != nil {
			return fmt.Errorf("error recording progress: %w", err)
		}
		return nil
	})
	return lease, cancel, err
}

// Fail records a trainer's failure: the run goes back to the queue, or
// ends failed with the error after its last attempt.
func (s *Service) Fail(ctx context.Context, id uuid.UUID, token, msg string) error {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return problem.BadInput("missing_field", "error", "Say what went wrong.")
	}
	if len(msg) > 4000 {
		msg = msg[:4000]
	}
	n, err := s.finishing(ctx, `UPDATE trainings SET
		state = CASE WHEN attempt >= max_attempts THEN 'failed'::training_state ELSE 'queued'::training_state END,
		error = $3, finished_at = CASE WHEN attempt >= max_attempts THEN now() END,
		lease_hash = NULL, lease_expires_at = NULL, data_key_hash = NULL
		WHERE id = $1 AND lease_hash = $2 AND state = 'running'
		RETURNING id, state::text`, id, auth.HashSecret(token), msg)
	if err != nil {
		return fmt.Errorf("error recording the failure: %w", err)
	}
	if n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// DataReady checks a download before its stream starts.
func (s *Service) DataReady(ctx context.Context, id uuid.UUID, split, key string) error {
	sp, ok := dataset.ParseSplit(split)
	if !ok || sp == dataset.Test {
		return problem.NotFound
	}
	var live bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM trainings WHERE id = $1 AND data_key_hash = $2
		AND state = 'running' AND lease_expires_at > now())`, id, auth.HashSecret(key)).Scan(&live); err != nil {
		return fmt.Errorf("error checking the data key: %w", err)
	}
	if !live {
		return problem.NotFound
	}
	return nil
}

// WriteData writes the zip of one split of a run's data to w (after
// DataReady said the key is good).
func (s *Service) WriteData(ctx context.Context, id uuid.UUID, split string, w io.Writer) error {
	sp, _ := dataset.ParseSplit(split)
	t, err := get(ctx, s.pool, id)
	if err != nil {
		return err
	}
	v, err := s.q.VersionGetByID(ctx, s.pool, t.VersionID)
	if err != nil {
		return fmt.Errorf("error reading the version: %w", err)
	}
	ver, err := dataset.LoadVersion(ctx, s.pool, v)
	if err != nil {
		return err
	}
	r, _ := s.recipe(t.Recipe)
	ex := &dataset.Exporter{DB: s.pool, Blobs: s.blobs}
	_, err = ex.Write(ctx, w, ver, dataset.Subset{Format: dataFormat(r.Format), Splits: []dataset.Split{sp}, Labels: t.LabelIDs})
	return err
}
