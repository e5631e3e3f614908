package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/jackc/pgx/v5"

	"github.com/deepimageshub/imagehub/openimages"
	"github.com/deepimageshub/imagehub/queries"
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

func importClasses(ctx context.Context, e *env, classes []openimages.Class) (added, updated int, err error) {
	q := queries.New()
	err = pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		for _, c := range classes {
			mid := c.MID
			existing, err := q.LabelGetByExternalID(ctx, tx, &mid)
			switch {
			case err == nil:
				if _, err := q.LabelUpdate(ctx, tx, queries.LabelUpdateParams{ID: existing.ID, DisplayName: c.DisplayName, ExternalID: &mid}); err != nil {
					return fmt.Errorf("error updating %s: %w", c.MID, err)
				}
				updated++
				continue
			case !errors.Is(err, pgx.ErrNoRows):
				return fmt.Errorf("error reading label %s: %w", c.MID, err)
			}
			before, err := q.LabelGetByNames(ctx, tx, []string{c.Name()})
			if err != nil {
				return fmt.Errorf("error reading label %q: %w", c.Name(), err)
			}
			if _, err := q.LabelUpsert(ctx, tx, queries.LabelUpsertParams{Name: c.Name(), DisplayName: c.DisplayName, ExternalID: &mid}); err != nil {
				return fmt.Errorf("error importing %s (%s): %w", c.MID, c.DisplayName, err)
			}
			if len(before) > 0 {
				updated++
			} else {
				added++
			}
		}
		return nil
	})
	return added, updated, err
}
