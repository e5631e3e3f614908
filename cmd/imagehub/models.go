package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deepimageshub/imagehub/dispatch"
	"github.com/deepimageshub/imagehub/inference"
	"github.com/deepimageshub/imagehub/jobs"
)

// modelsCmd registers models from the command line, for deployments that
// register their inference servers as they start them (the Helm chart's
// post-install Job) without an admin's token or an HTTP client.
func modelsCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "register" {
		fmt.Fprintln(stderr, "usage: imagehub models register --file model.json [--wait D]")
		return errUsage
	}
	fset := flag.NewFlagSet("models register", flag.ContinueOnError)
	fset.SetOutput(stderr)
	file := fset.String("file", "", "the model as POST /api/v1/models takes it (JSON); - reads stdin")
	wait := fset.Duration("wait", 0, "how long to wait for every endpoint to answer ready; 0 saves at once, as the API does")
	if err := fset.Parse(args[1:]); err != nil {
		return errUsage
	}
	if *file == "" || fset.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: imagehub models register --file model.json [--wait D]")
		return errUsage
	}
	spec, err := readSpec(*file)
	if err != nil {
		return err
	}
	e, err := setup(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	defer e.pool.Close()
	probe := spec
	if spec.Headers == nil {
		// An update that keeps the stored headers checks with them, as the API does.
		h, err := dispatch.StoredHeaders(ctx, e.pool, spec)
		if err != nil {
			return err
		}
		probe.Headers = h
	}
	check, err := inspectUntilReady(ctx, probe, *wait)
	if err != nil {
		return err
	}
	rc, err := jobs.NewClient(jobs.Deps{Pool: e.pool, Logger: e.logger, Config: e.cfg}, jobs.Options{})
	if err != nil {
		return err
	}
	var created bool
	err = pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		var err error
		_, created, err = jobs.SaveModel(ctx, tx, rc, spec, check)
		return err
	})
	if err != nil {
		return fmt.Errorf("error saving model %s %s: %w", spec.Name, spec.Version, err)
	}
	what := "updated"
	if created {
		what = "registered"
	}
	fmt.Fprintf(stdout, "%s model %s version %s with %d endpoint(s)\n", what, spec.Name, spec.Version, len(spec.Endpoints))
	for _, u := range check.Unreachable {
		fmt.Fprintf(stdout, "warning: %s\n", u)
	}
	return nil
}

func readSpec(file string) (dispatch.Spec, error) {
	var r io.Reader = os.Stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return dispatch.Spec{}, fmt.Errorf("error opening model file: %w", err)
		}
		defer f.Close()
		r = f
	}
	var spec dispatch.Spec
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return dispatch.Spec{}, fmt.Errorf("error reading model %s: %w", file, err)
	}
	if err := spec.Normalize(); err != nil {
		return dispatch.Spec{}, fmt.Errorf("model %s: %w", file, err)
	}
	return spec, nil
}

// inspectUntilReady asks the endpoints about the model, again every few
// seconds while some do not answer and wait has not run out: a server that
// starts with the release may still be loading its model.
func inspectUntilReady(ctx context.Context, spec dispatch.Spec, wait time.Duration) (dispatch.Check, error) {
	client := inference.New(nil)
	deadline := time.Now().Add(wait)
	for {
		check := dispatch.Inspect(ctx, client, spec, 10*time.Second)
		if len(check.Unfit) > 0 {
			return check, fmt.Errorf("the model does not fit its layout (PROTOCOL.md): %s", strings.Join(check.Unfit, "; "))
		}
		if len(check.Unreachable) == 0 || wait == 0 {
			return check, nil
		}
		if time.Now().After(deadline) {
			return check, errors.New("endpoints not ready after " + wait.String() + ": " + strings.Join(check.Unreachable, "; "))
		}
		select {
		case <-ctx.Done():
			return check, ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
}
