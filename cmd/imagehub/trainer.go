package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/deepimageshub/imagehub/trainer"
)

// trainerCmd: imagehub trainer --hub URL --token T [--recipes a,b] [--once] —
// the project's own CPU trainer: it leases training runs from the hub,
// trains them (package trainer) and uploads the models, until Ctrl-C or
// SIGTERM. A run in progress at a shutdown is abandoned: its lease lapses
// and the hub queues it again. It needs neither the database nor the blob
// store, only the hub's URL and a trainer token.
func trainerCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("trainer", flag.ContinueOnError)
	fset.SetOutput(stderr)
	hub := fset.String("hub", getenv("TRAINER_HUB"), "the hub's base URL, else TRAINER_HUB")
	token := fset.String("token", getenv("TRAINER_TOKEN"), "a trainer token, else TRAINER_TOKEN")
	recipes := fset.String("recipes", "", "comma-separated recipes to train (default all: "+strings.Join(recipeNames(), ", ")+")")
	once := fset.Bool("once", false, "train at most one run, then exit (at once when none waits)")
	poll := fset.Duration("poll", 5*time.Second, "wait between leases when no run waits")
	tmp := fset.String("tmp", "", "folder for the downloaded datasets (default the system's)")
	fset.Usage = func() {
		fmt.Fprintln(stderr, "usage: imagehub trainer --hub URL --token T [--recipes R,…] [--once]")
		fset.PrintDefaults()
	}
	if err := fset.Parse(args); err != nil {
		return errUsage
	}
	bad := func(format string, a ...any) error {
		fmt.Fprintf(stderr, "imagehub trainer: "+format+"\n", a...)
		return errUsage
	}
	var names []string
	for _, r := range strings.Split(*recipes, ",") {
		if r = strings.TrimSpace(r); r != "" {
			if _, ok := trainer.Find(r); !ok {
				return bad("--recipes: unknown recipe %q; this trainer knows %s", r, strings.Join(recipeNames(), ", "))
			}
			names = append(names, r)
		}
	}
	switch {
	case fset.NArg() > 0:
		return bad("unexpected argument %q; imagehub trainer takes only flags", fset.Arg(0))
	case !strings.HasPrefix(*hub, "http://") && !strings.HasPrefix(*hub, "https://"):
		return bad("--hub %q: the hub's URL, e.g. http://127.0.0.1:8080", *hub)
	case *token == "":
		return bad("--token is needed (or TRAINER_TOKEN): a trainer token from the hub")
	case *poll <= 0:
		return bad("--poll %v: must be positive", *poll)
	}
	logger, err := workerLogger(getenv, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "imagehub trainer %s: leasing %s runs from %s\n", trainer.Version, cmp.Or(strings.Join(names, ", "), "all"), *hub)
	err = trainer.Run(ctx, trainer.Options{Hub: *hub, Token: *token, Recipes: names, Once: *once, Poll: *poll, Logger: logger, TempDir: *tmp})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func recipeNames() []string {
	var out []string
	for _, r := range trainer.Recipes() {
		out = append(out, r.Name)
	}
	return out
}
