// Package trainer is the project's own CPU trainer: recipes that learn a
// model from a dataset version's COCO export in pure Go, and the client side
// of the hub's trainer protocol (docs/training.md) that leases runs, reports
// progress (which renews the lease), uploads the artifact or reports the
// failure. `imagehub trainer` runs it on its own; `serve` can run one in
// process with Run.
//
// Reproducibility: a run's model bytes and metrics depend only on its data,
// labels, recipe, params, seed and Version; the images are read in id order
// and every random draw comes from a PCG generator seeded with the run's
// seed. Bit for bit on one architecture: Go may fuse multiply-adds on
// arm64, ppc64 and s390x, so a model trained there can differ in its last
// bits from one trained on amd64.
package trainer

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Version is the trainer's version, sent with every lease. Bump it when a
// recipe's results change for the same inputs, so that the hub's record of
// a run says which code made it.
const Version = "1"

// Agent is how the trainer names itself to the hub.
const Agent = "imagehub-trainer/" + Version

// Options configure Run.
type Options struct {
	Hub     string   // the hub's base URL, e.g. http://127.0.0.1:8080
	Token   string   // a trainer token
	Recipes []string // recipes to lease runs of; default all of Recipes()
	// Once takes at most one run: Run returns after it, or at once when
	// none waits.
	Once    bool
	Poll    time.Duration // wait between leases when none waits; default 5s
	Client  *http.Client  // default one with a 10-minute timeout per request
	Logger  *slog.Logger
	TempDir string // for the downloaded zips; default os.TempDir()
}

// The trainer protocol's messages.
type (
	leaseRequest struct {
		Recipes []string `json:"recipes"`
		Trainer string   `json:"trainer"`
	}
	leaseInfo struct {
		Token       string    `json:"token"`
		ExpiresAt   time.Time `json:"expires_at"`
		RenewEveryS float64   `json:"renew_every_s"`
	}
	runData struct {
		Format string `json:"format"`
		Train  struct {
			URL string `json:"url"`
		} `json:"train"`
		Val struct {
			URL string `json:"url"`
		} `json:"val"`
	}
	leasedRun struct {
		ID      runID          `json:"id"`
		Recipe  string         `json:"recipe"`
		Params  map[string]any `json:"params"`
		Seed    int64          `json:"seed"`
		Labels  []string       `json:"labels"`
		Attempt int            `json:"attempt"`
		Data    runData        `json:"data"`
		Lease   leaseInfo      `json:"lease"`
	}
	progressBody struct {
		Progress
		Metrics map[string]any `json:"metrics,omitempty"`
	}
	progressAnswer struct {
		Lease  leaseInfo `json:"lease"`
		Cancel bool      `json:"cancel"`
	}
)

// runID is a run's id, which the hub may send as a number or a string.
type runID string

func (id *runID) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*id = runID(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("a run id is a number or a string, not %s", b)
	}
	*id = runID(n)
	return nil
}

func (id runID) String() string { return url.PathEscape(string(id)) }

// ErrUnauthorized is returned by Run when the hub refuses the token.
var ErrUnauthorized = errors.New("the hub refused the trainer token")

// Run leases runs and trains them until ctx ends (or, with Once, after one
// run). A run's own failure is reported to the hub and logged, not
// returned; Run returns an error only when it cannot go on: a refused
// token, or with Once a hub it cannot reach. When ctx ends mid-run the run
// is left as it is: its lease lapses and the hub queues it again.
func Run(ctx context.Context, opt Options) error {
	c, err := newClient(opt)
	if err != nil {
		return err
	}
	backoff := time.Second
	for ctx.Err() == nil {
		run, err := c.lease(ctx)
		switch {
		case errors.Is(err, ErrUnauthorized):
			return err
		case err != nil && ctx.Err() != nil:
			return nil
		case err != nil:
			if opt.Once {
				return err
			}
			c.log.Warn("error leasing a run; retrying", "error", err, "in", backoff)
			sleep(ctx, backoff)
			backoff = min(2*backoff, time.Minute)
			continue
		}
		backoff = time.Second
		if run == nil {
			if opt.Once {
				return nil
			}
			sleep(ctx, c.poll)
			continue
		}
		c.train(ctx, run)
		if opt.Once {
			return nil
		}
	}
	return nil
}

type client struct {
	hub, token string
	recipes    []string
	poll       time.Duration
	http       *http.Client
	log        *slog.Logger
	tmp        string
}

func newClient(opt Options) (*client, error) {
	if opt.Hub == "" || opt.Token == "" {
		return nil, fmt.Errorf("the trainer needs the hub's URL and a trainer token")
	}
	c := &client{
		hub: strings.TrimRight(opt.Hub, "/"), token: opt.Token, recipes: opt.Recipes,
		poll: cmp.Or(opt.Poll, 5*time.Second), http: opt.Client, log: opt.Logger, tmp: opt.TempDir,
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: 10 * time.Minute}
	}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if len(c.recipes) == 0 {
		for _, r := range Recipes() {
			c.recipes = append(c.recipes, r.Name)
		}
	}
	for _, name := range c.recipes {
		if _, ok := Find(name); !ok {
			return nil, fmt.Errorf("unknown recipe %q; this trainer knows %s", name, strings.Join(recipeNames(), ", "))
		}
	}
	return c, nil
}

func recipeNames() []string {
	var out []string
	for _, r := range Recipes() {
		out = append(out, r.Name)
	}
	return out
}

// call sends one request to the hub and returns the status and body.
func (c *client) call(ctx context.Context, method, path, lease string, header http.Header, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.hub+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("User-Agent", Agent)
	req.Header.Set("Content-Type", "application/json")
	if lease != "" {
		req.Header.Set("X-Lease-Token", lease)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("error reading the hub's answer to %s %s: %w", method, path, err)
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return resp.StatusCode, b, fmt.Errorf("%w: %s %s answered %s", ErrUnauthorized, method, path, resp.Status)
	}
	return resp.StatusCode, b, nil
}

func (c *client) lease(ctx context.Context) (*leasedRun, error) {
	body, _ := json.Marshal(leaseRequest{Recipes: c.recipes, Trainer: Agent})
	status, b, err := c.call(ctx, http.MethodPost, "/api/v1/trainer/lease", "", nil, body)
	if err != nil {
		return nil, fmt.Errorf("error leasing a run: %w", err)
	}
	switch status {
	case http.StatusNoContent:
		return nil, nil
	case http.StatusOK:
	default:
		return nil, fmt.Errorf("error leasing a run: the hub answered %d: %s", status, snippet(b))
	}
	var a struct {
		Run *leasedRun `json:"run"`
	}
	if err := json.Unmarshal(b, &a); err != nil || a.Run == nil || a.Run.ID == "" || a.Run.Lease.Token == "" {
		return nil, fmt.Errorf("error leasing a run: the hub's answer is not a run: %s", snippet(b))
	}
	return a.Run, nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// Why a run stops before its end.
var (
	errLeaseLost = errors.New("the hub took the lease back")
	errCancelled = errors.New("the run was cancelled")
)

// reporter sends the latest progress to the hub, at once after a change
// (at most every quarter second) and at least every renew_every_s to renew the
// lease, and stops the run when the hub answers 409 or cancel.
type reporter struct {
	c      *client
	run    *leasedRun
	stop   context.CancelCauseFunc
	mu     sync.Mutex
	latest Progress
	kick   chan struct{}
}

func (r *reporter) set(p Progress) {
	r.mu.Lock()
	// The last epoch and loss stay in later reports (evaluation has none),
	// so the hub always shows the latest.
	if p.Epoch == nil {
		p.Epoch, p.Loss = r.latest.Epoch, r.latest.Loss
	}
	r.latest = p
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *reporter) loop(ctx context.Context) {
	every := time.Duration(r.run.Lease.RenewEveryS * float64(time.Second))
	if every <= 0 {
		every = 30 * time.Second
	}
	expires := r.run.Lease.ExpiresAt
	renew := time.NewTimer(every)
	defer renew.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-renew.C:
		case <-r.kick:
			if wait := 250*time.Millisecond - time.Since(last); wait > 0 {
				if !sleep(ctx, wait) {
					return
				}
			}
		}
		r.mu.Lock()
		p := r.latest
		r.mu.Unlock()
		last = time.Now()
		a, err := r.c.progress(ctx, r.run, progressBody{Progress: p})
		renew.Reset(every)
		switch {
		case errors.Is(err, errLeaseLost), errors.Is(err, ErrUnauthorized):
			r.stop(err)
			return
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			r.c.log.Warn("error reporting progress; retrying", "run", r.run.ID, "error", err)
			if !expires.IsZero() && time.Now().After(expires) {
				r.stop(fmt.Errorf("%w: its lease expired at %s while the hub was unreachable", errLeaseLost, expires.Format(time.RFC3339)))
				return
			}
			renew.Reset(min(every, 5*time.Second))
		case a.Cancel:
			r.stop(errCancelled)
			return
		default:
			if !a.Lease.ExpiresAt.IsZero() {
				expires = a.Lease.ExpiresAt
			}
			if a.Lease.Token != "" {
				r.c.log.Debug("lease renewed", "run", r.run.ID, "expires_at", expires)
			}
		}
	}
}

func (c *client) progress(ctx context.Context, run *leasedRun, p progressBody) (*progressAnswer, error) {
	body, _ := json.Marshal(p)
	status, b, err := c.call(ctx, http.MethodPost, "/api/v1/trainer/runs/"+run.ID.String()+"/progress", run.Lease.Token, nil, body)
	if err != nil {
		return nil, fmt.Errorf("error reporting progress: %w", err)
	}
	switch status {
	case http.StatusOK:
	case http.StatusConflict:
		return nil, fmt.Errorf("%w: %s", errLeaseLost, snippet(b))
	default:
		return nil, fmt.Errorf("error reporting progress: the hub answered %d: %s", status, snippet(b))
	}
	var a progressAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("error reporting progress: the hub's answer is not JSON: %s", snippet(b))
	}
	return &a, nil
}

// train runs one leased run to its end: an artifact uploaded, a failure
// reported, or a stop the hub asked for.
func (c *client) train(ctx context.Context, run *leasedRun) {
	log := c.log.With("run", run.ID.String(), "recipe", run.Recipe, "attempt", run.Attempt)
	log.Info("training", "labels", run.Labels, "seed", run.Seed)
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	rep := &reporter{c: c, run: run, stop: stop, kick: make(chan struct{}, 1)}
	repDone := make(chan struct{})
	go func() { defer close(repDone); rep.loop(runCtx) }()

	res, err := c.execute(runCtx, run, rep.set)
	stop(nil)
	<-repDone
	if cause := context.Cause(runCtx); errors.Is(cause, errLeaseLost) || errors.Is(cause, errCancelled) || errors.Is(cause, ErrUnauthorized) {
		log.Info("stopped", "why", cause)
		return
	}
	if ctx.Err() != nil {
		log.Info("stopped by shutdown; the lease will lapse and the hub queue the run again")
		return
	}
	if err == nil {
		rep.mu.Lock()
		last := rep.latest
		rep.mu.Unlock()
		err = c.finish(ctx, run, res, last)
		if errors.Is(err, errLeaseLost) {
			log.Info("stopped", "why", err)
			return
		}
	}
	if err != nil {
		log.Warn("training failed", "error", err)
		c.fail(ctx, run, err)
		return
	}
	log.Info("trained", "metrics", res.Metrics)
}

// execute downloads the data and runs the recipe.
func (c *client) execute(ctx context.Context, run *leasedRun, report func(Progress)) (*Result, error) {
	recipe, ok := Find(run.Recipe)
	if !ok || !slices.Contains(c.recipes, run.Recipe) {
		return nil, fmt.Errorf("this trainer does not run recipe %q", run.Recipe)
	}
	if run.Data.Format != recipe.DataFormat {
		return nil, fmt.Errorf("recipe %s needs the %s format, the run's data is %q", recipe.Name, recipe.DataFormat, run.Data.Format)
	}
	params, err := recipe.Validate(run.Params)
	if err != nil {
		return nil, err
	}
	report(Progress{Step: 0, Steps: 1, State: "running"})
	open := func(url, what string) (*Split, func(), error) {
		f, n, err := download(ctx, c.http, url, c.tmp)
		if err != nil {
			return nil, nil, fmt.Errorf("%s split: %w", what, err)
		}
		done := func() { f.Close(); os.Remove(f.Name()) }
		s, err := OpenSplit(f, n, run.Labels)
		if err != nil {
			done()
			return nil, nil, fmt.Errorf("%s split: %w", what, err)
		}
		return s, done, nil
	}
	train, doneTrain, err := open(run.Data.Train.URL, "train")
	if err != nil {
		return nil, err
	}
	defer doneTrain()
	val, doneVal, err := open(run.Data.Val.URL, "val")
	if err != nil {
		return nil, err
	}
	defer doneVal()
	return recipe.Train(ctx, Job{Labels: run.Labels, Params: params, Seed: run.Seed, Train: train, Val: val, Report: report})
}

// finish reports the metrics as the last progress, then uploads the
// artifact, retrying a lost connection a few times.
func (c *client) finish(ctx context.Context, run *leasedRun, res *Result, last Progress) error {
	last.Step, last.State = last.Steps, "evaluating"
	if _, err := c.progress(ctx, run, progressBody{Progress: last, Metrics: res.Metrics}); err != nil {
		if errors.Is(err, errLeaseLost) {
			return err
		}
		c.log.Warn("error reporting the metrics; uploading anyway", "run", run.ID, "error", err)
	}
	h := http.Header{"X-Artifact-Format": {res.Format}, "Content-Type": {"application/octet-stream"}}
	var lastErr error
	for try := range 4 {
		if try > 0 && !sleep(ctx, time.Duration(try)*2*time.Second) {
			return ctx.Err()
		}
		status, b, err := c.call(ctx, http.MethodPut, "/api/v1/trainer/runs/"+run.ID.String()+"/artifact", run.Lease.Token, h, res.Artifact)
		switch {
		case err != nil:
			lastErr = fmt.Errorf("error uploading the artifact: %w", err)
			continue
		case status == http.StatusOK || status == http.StatusCreated || status == http.StatusNoContent:
			return nil
		case status == http.StatusConflict:
			return fmt.Errorf("%w: %s", errLeaseLost, snippet(b))
		case status >= 500:
			lastErr = fmt.Errorf("error uploading the artifact: the hub answered %d: %s", status, snippet(b))
			continue
		default:
			return fmt.Errorf("the hub refused the artifact (%d): %s", status, snippet(b))
		}
	}
	return lastErr
}

func (c *client) fail(ctx context.Context, run *leasedRun, cause error) {
	body, _ := json.Marshal(map[string]string{"error": cause.Error()})
	status, b, err := c.call(ctx, http.MethodPost, "/api/v1/trainer/runs/"+run.ID.String()+"/fail", run.Lease.Token, nil, body)
	if err != nil || status != http.StatusOK && status != http.StatusNoContent {
		c.log.Warn("error reporting the failure; the lease will lapse", "run", run.ID, "status", status, "error", err, "answer", snippet(b))
	}
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
