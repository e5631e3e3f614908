package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/deepimageshub/imagehub/account"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/regionmodel"
	"github.com/deepimageshub/imagehub/trainer"
	"github.com/deepimageshub/imagehub/training"
	"github.com/deepimageshub/imagehub/worker/onnxworker"
)

// hubRecipes is what serve offers users: the recipes a GPU trainer takes
// (training.DefaultRecipes) and those of the project's CPU trainer, converted
// from the trainer's own list so that the hub checks params with exactly the
// ranges and defaults the trainer applies.
func hubRecipes() []training.Recipe {
	out := append([]training.Recipe(nil), training.DefaultRecipes...)
	for _, r := range trainer.Recipes() {
		params := make(map[string]training.Param, len(r.Params))
		for _, p := range r.Params {
			params[p.Name] = training.Param{Type: p.Type, Min: p.Min, Max: p.Max, Default: p.Default, Description: p.Description}
		}
		out = append(out, training.Recipe{Name: r.Name, Description: r.Description, LabelsMax: r.LabelsMax, Params: params, Format: r.DataFormat})
	}
	return out
}

// artifactCheckers checks the uploads: the CPU trainer's with its own
// checker, ONNX files (after the hub's structural check) by loading them
// into ONNX Runtime from lib where this process can, so that a file with
// corrupt weights is refused at upload rather than failing in the worker.
func artifactCheckers(lib string) map[string]training.Checker {
	return map[string]training.Checker{regionmodel.Format: regionmodel.Check, training.ArtifactONNX: onnxworker.CheckLoads(lib, "")}
}

// trainedLoader lets the built-in worker serve the region models trainings
// registered, read from the blob store. Anything else (another format, a
// model no training made) is not found, which the worker answers 404;
// trainedONNX, in front of it, serves the ONNX ones.
func trainedLoader(store *training.Store) func(ctx context.Context, name, version string) (io.ReadCloser, error) {
	return func(ctx context.Context, name, version string) (io.ReadCloser, error) {
		t, err := store.Find(ctx, name, version)
		if errors.Is(err, problem.NotFound) {
			return nil, fmt.Errorf("%w: %w", fs.ErrNotExist, err)
		}
		if err != nil {
			return nil, err
		}
		if t.Format != regionmodel.Format {
			return nil, fmt.Errorf("model %s version %s is a %s artifact, which the built-in worker does not serve: %w", name, version, t.Format, fs.ErrNotExist)
		}
		return store.Open(ctx, t)
	}
}

// builtinTrainerTokenLife bounds how long a token minted for the built-in
// trainer lives: a hub that is killed leaves a token that soon ends; a hub
// that runs longer mints another when the hub refuses the old one.
const builtinTrainerTokenLife = 24 * time.Hour

// startBuiltinTrainer runs the CPU trainer in this process against the hub
// at base (its own loopback address), with a trainer token of the built-in
// trainer's service account (account.Service.BuiltinTrainerToken). The
// returned stop ends it (a run in progress is abandoned: its lease lapses
// and it is queued again) and revokes the token; calling it again does
// nothing.
func startBuiltinTrainer(ctx context.Context, e *env, base, tmp string) (stop func()) {
	accounts := account.NewService(e.pool, account.Limits{PasswordCost: e.cfg.PasswordHashCost})
	loopback := toLoopback(e.cfg.BaseURL, base)
	logger := e.logger.With("component", "trainer")
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			tok, err := accounts.BuiltinTrainerToken(ctx, builtinTrainerTokenLife)
			if err != nil {
				if ctx.Err() == nil {
					logger.Error("error minting the built-in trainer's token; retrying in a minute", "error", err)
					sleepCtx(ctx, time.Minute)
				}
				continue
			}
			logger.Info("built-in trainer is leasing runs", "hub", base, "recipes", recipeNames())
			err = trainer.Run(ctx, trainer.Options{Hub: base, Token: tok.Secret, Logger: logger, TempDir: tmp,
				Client: &http.Client{Timeout: 10 * time.Minute, Transport: loopback}})
			// Revoked under a context of its own: the shutdown has
			// cancelled ctx by now.
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if rerr := accounts.RevokeToken(rctx, tok.UserID, tok.ID); rerr != nil && !errors.Is(rerr, problem.NotFound) {
				logger.Warn("error revoking the built-in trainer's token", "error", rerr)
			}
			rcancel()
			switch {
			case ctx.Err() != nil:
			case errors.Is(err, trainer.ErrUnauthorized):
				logger.Info("the built-in trainer's token ended; minting another")
			case err != nil:
				logger.Error("built-in trainer stopped; restarting it in a minute", "error", err)
				sleepCtx(ctx, time.Minute)
			}
		}
	}()
	return sync.OnceFunc(func() {
		cancel()
		<-done
		logger.Info("built-in trainer stopped")
	})
}

// toLoopback sends the requests for public (BASE_URL, as in the data URLs
// the hub hands out) to loopback instead: behind a proxy, or in a test on a
// port of its own, the public address may not lead back to this process.
func toLoopback(public, loopback string) http.RoundTripper {
	pub, err1 := url.Parse(public)
	lo, err2 := url.Parse(loopback)
	if err1 != nil || err2 != nil {
		return http.DefaultTransport
	}
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Scheme == pub.Scheme && r.URL.Host == pub.Host && strings.HasPrefix(r.URL.Path, strings.TrimRight(pub.Path, "/")+"/") {
			r = r.Clone(r.Context())
			r.URL.Scheme, r.URL.Host = lo.Scheme, lo.Host
			r.URL.Path = "/" + strings.TrimPrefix(r.URL.Path, strings.TrimRight(pub.Path, "/")+"/")
			r.Host = ""
		}
		return http.DefaultTransport.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
