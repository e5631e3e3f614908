package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/deepimageshub/imagehub/labelimport"
	"github.com/deepimageshub/imagehub/openimages"
)

// labelsCmd: imagehub labels import FILE — add or update labels from an Open
// Images class-descriptions CSV. Re-running it is safe: a class already
// imported (same MID) or a label of the same name is updated, not doubled.
func labelsCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) != 2 || args[0] != "import" {
		fmt.Fprintln(stderr, "usage: imagehub labels import class-descriptions.csv")
		return errUsage
	}
	f, err := os.Open(args[1])
	if err != nil {
		return err
	}
	defer f.Close()
	classes, err := openimages.ReadClasses(f)
	if err != nil {
		return fmt.Errorf("error reading %s: %w", args[1], err)
	}
	e, err := setup(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	defer e.pool.Close()
	added, updated, err := importClasses(ctx, e, classes)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d labels added, %d updated\n", added, updated)
	return nil
}

// importClasses adds or updates the classes' labels in one batch.
func importClasses(ctx context.Context, e *env, classes []openimages.Class) (added, updated int64, err error) {
	return labelimport.Classes(ctx, e.pool, classes)
}
