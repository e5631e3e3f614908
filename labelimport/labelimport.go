// Package labelimport brings Open Images taxonomies and image-level labels
// into the hub at their full size (20,000 classes, millions of label rows)
// in set-based SQL: rows are streamed from the CSV into a temporary table
// with COPY and resolved against labels and images in one statement, so the
// importer's memory does not grow with the file.
package labelimport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deepimageshub/imagehub/openimages"
)

// Staged is an image-level labels CSV held in a temporary table of one
// connection, taken from the pool until Close.
type Staged struct {
	conn *pgxpool.Conn
	// Rows is the number of label rows staged (rows with Confidence 0 say a
	// class is absent and are not labels).
	Rows int64
	// UnknownMIDs counts the distinct label ids the taxonomy lacks; their
	// rows are skipped.
	UnknownMIDs int64
}

// Stage reads an image-level labels CSV row by row into a temporary table.
// A bad row stops it with the error naming its line, before anything is
// written outside the temporary table.
func Stage(ctx context.Context, pool *pgxpool.Pool, r io.Reader) (*Staged, error) {
	lr, err := openimages.NewImageLabelReader(r)
	if err != nil {
		return nil, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("error connecting: %w", err)
	}
	s := &Staged{conn: conn}
	if _, err := conn.Exec(ctx, `
		DROP TABLE IF EXISTS pg_temp.staged_image_labels, pg_temp.run_images;
		CREATE TEMPORARY TABLE staged_image_labels (image_key text NOT NULL, mid text NOT NULL)`); err != nil {
		s.Close()
		return nil, fmt.Errorf("error making staging table: %w", err)
	}
	var readErr error
	n, err := conn.CopyFrom(ctx, pgx.Identifier{"staged_image_labels"}, []string{"image_key", "mid"},
		pgx.CopyFromFunc(func() ([]any, error) {
			id, mid, err := lr.Next()
			if errors.Is(err, io.EOF) {
				return nil, nil
			}
			if err != nil {
				readErr = err
				return nil, err
			}
			return []any{id, mid}, nil
		}))
	if readErr != nil {
		s.Close()
		return nil, readErr
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("error staging image labels: %w", err)
	}
	s.Rows = n
	// The planner knows nothing of a fresh temporary table, and the labels'
	// statistics predate a class import made just before (external_id all
	// null): estimating one matching row, it picked nested loops that took
	// minutes over 500,000 rows instead of a second.
	if _, err := conn.Exec(ctx, `ANALYZE staged_image_labels; ANALYZE labels`); err != nil {
		s.Close()
		return nil, fmt.Errorf("error analysing staged labels: %w", err)
	}
	if err := conn.QueryRow(ctx, `
		SELECT count(DISTINCT s.mid) FROM staged_image_labels s
		WHERE NOT EXISTS (SELECT 1 FROM labels l WHERE l.external_id = s.mid)`).Scan(&s.UnknownMIDs); err != nil {
		s.Close()
		return nil, fmt.Errorf("error counting unknown label ids: %w", err)
	}
	return s, nil
}

// Image is an image taken in by a run and the key its label rows use (the
// file name without its extension, the Open Images ImageID).
type Image struct {
	ID  uuid.UUID
	Key string
}

// Apply gives each image the staged labels of its key whose MID is in the
// taxonomy, as added by addedBy. Labels an image already has are kept, so
// applying again adds nothing. It returns the number of labels added.
func (s *Staged) Apply(ctx context.Context, images []Image, addedBy uuid.UUID) (int64, error) {
	if len(images) == 0 {
		return 0, nil
	}
	var added int64
	err := pgx.BeginFunc(ctx, s.conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TEMPORARY TABLE run_images (image_id uuid NOT NULL, image_key text NOT NULL) ON COMMIT DROP`); err != nil {
			return fmt.Errorf("error making run table: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"run_images"}, []string{"image_id", "image_key"},
			pgx.CopyFromSlice(len(images), func(i int) ([]any, error) { return []any{images[i].ID, images[i].Key}, nil })); err != nil {
			return fmt.Errorf("error staging images: %w", err)
		}
		if _, err := tx.Exec(ctx, `ANALYZE run_images`); err != nil {
			return fmt.Errorf("error analysing run images: %w", err)
		}
		// Sorted by the primary key, the inserts walk image_labels' index
		// and the images' foreign-key lookups in order rather than at
		// random; the sort of a million rows wants more than the default
		// work_mem to stay off disk.
		if _, err := tx.Exec(ctx, `SET LOCAL work_mem = '128MB'`); err != nil {
			return fmt.Errorf("error setting work_mem: %w", err)
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO image_labels (image_id, label_id, added_by)
			SELECT DISTINCT r.image_id, l.id, $1::uuid
			FROM run_images r
			JOIN staged_image_labels s ON s.image_key = r.image_key
			JOIN labels l ON l.external_id = s.mid
			ORDER BY r.image_id, l.id
			ON CONFLICT (image_id, label_id) DO NOTHING`, addedBy)
		if err != nil {
			return fmt.Errorf("error adding image labels: %w", err)
		}
		added = tag.RowsAffected()
		return nil
	})
	return added, err
}

// Close drops the staging table and gives the connection back.
func (s *Staged) Close() {
	if s.conn == nil {
		return
	}
	// A connection back in the pool must not carry the staged rows.
	if _, err := s.conn.Exec(context.Background(), `DROP TABLE IF EXISTS pg_temp.staged_image_labels`); err != nil {
		_ = s.conn.Conn().Close(context.Background())
	}
	s.conn.Release()
	s.conn = nil
}

// labelName is the labels.name CHECK constraint (migrations/00002), checked
// here so a bad class is refused naming its MID rather than by a bare
// constraint violation of the batch.
var labelName = regexp.MustCompile(`^[a-z0-9][a-z0-9 _.()&/'-]{0,99}$`)

// Classes adds or updates labels from class descriptions in one
// transaction: a class whose MID a label already has updates that label's
// display name; any other class is upserted by its name, taking the MID.
// When the file names a MID or a name twice, its last row wins. It returns
// how many labels were added and how many updated.
func Classes(ctx context.Context, pool *pgxpool.Pool, classes []openimages.Class) (added, updated int64, err error) {
	for _, c := range classes {
		switch {
		case !labelName.MatchString(c.Name()):
			return 0, 0, fmt.Errorf("error importing %s (%s): the name %q is not a valid label name", c.MID, c.DisplayName, c.Name())
		case utf8.RuneCountInString(c.DisplayName) > 100:
			return 0, 0, fmt.Errorf("error importing %s (%s): the display name is longer than 100 characters", c.MID, c.DisplayName)
		case utf8.RuneCountInString(c.MID) > 100:
			return 0, 0, fmt.Errorf("error importing %s: the label id is longer than 100 characters", c.MID)
		}
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			CREATE TEMPORARY TABLE staged_classes (ord int NOT NULL, mid text NOT NULL, name text NOT NULL, display_name text NOT NULL)
			ON COMMIT DROP`); err != nil {
			return fmt.Errorf("error making staging table: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"staged_classes"}, []string{"ord", "mid", "name", "display_name"},
			pgx.CopyFromSlice(len(classes), func(i int) ([]any, error) {
				return []any{int32(i), classes[i].MID, classes[i].Name(), classes[i].DisplayName}, nil
			})); err != nil {
			return fmt.Errorf("error staging classes: %w", err)
		}
		// Classes whose MID is known: only the display name changes (the
		// name is the API's stable key).
		tag, err := tx.Exec(ctx, `
			WITH last AS (SELECT DISTINCT ON (mid) mid, display_name FROM staged_classes ORDER BY mid, ord DESC)
			UPDATE labels l SET display_name = last.display_name
			FROM last WHERE l.external_id = last.mid`)
		if err != nil {
			return fmt.Errorf("error updating labels by id: %w", err)
		}
		updated = tag.RowsAffected()
		// The rest by name. xmax is 0 on a row this statement inserted and
		// set on one it updated.
		rows, err := tx.Query(ctx, `
			WITH by_mid AS (
				SELECT DISTINCT ON (mid) ord, mid, name, display_name FROM staged_classes s
				WHERE NOT EXISTS (SELECT 1 FROM labels l WHERE l.external_id = s.mid)
				ORDER BY mid, ord DESC),
			fresh AS (SELECT DISTINCT ON (name) mid, name, display_name FROM by_mid ORDER BY name, ord DESC)
			INSERT INTO labels (name, display_name, external_id)
			SELECT name, display_name, mid FROM fresh
			ON CONFLICT (name) DO UPDATE SET display_name = EXCLUDED.display_name, external_id = EXCLUDED.external_id
			RETURNING xmax = 0`)
		if err != nil {
			return fmt.Errorf("error upserting labels: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var inserted bool
			if err := rows.Scan(&inserted); err != nil {
				return fmt.Errorf("error reading upsert: %w", err)
			}
			if inserted {
				added++
			} else {
				updated++
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("error upserting labels: %w", err)
		}
		return nil
	})
	return added, updated, err
}
