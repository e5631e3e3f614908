// Package datasettest makes reviewed images for dataset tests and
// benchmarks: image rows with their canonical bytes in the blob store, and
// first-review annotations written as the review workflow writes them
// (review items, annotation rows never updated, replaced_at on the old ones
// when an image is reviewed again).
package datasettest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/review"
)

// Fixture writes images and reviews into one database and blob store.
type Fixture struct {
	tb    testing.TB
	Pool  *pgxpool.Pool
	Blobs blob.Store
	// Owner uploaded the images; Reviewer reviewed them.
	Owner, Reviewer uuid.UUID
	seq             atomic.Uint64
}

// New creates the fixture's two users.
func New(tb testing.TB, pool *pgxpool.Pool, blobs blob.Store) *Fixture {
	tb.Helper()
	f := &Fixture{tb: tb, Pool: pool, Blobs: blobs}
	for _, u := range []struct {
		dst   *uuid.UUID
		email string
		role  string
	}{{&f.Owner, "fixture-owner", "contributor"}, {&f.Reviewer, "fixture-reviewer", "reviewer"}} {
		err := pool.QueryRow(context.Background(), `
			INSERT INTO users (email, name, password_hash, role) VALUES ($1 || '-' || gen_random_uuid() || '@example.com', $1, 'x', $2::user_role)
			RETURNING id`, u.email, u.role).Scan(u.dst)
		if err != nil {
			tb.Fatalf("datasettest: error creating user: %v", err)
		}
	}
	return f
}

// Image is a reviewed image.
type Image struct {
	ID          uuid.UUID
	SHA         []byte
	Bytes       []byte
	W, H        int
	ContentType string
}

// ImageOpts shape an image; zero values give a 96×64 JPEG uploaded now.
type ImageOpts struct {
	W, H            int
	PNG             bool
	NearDuplicateOf *uuid.UUID
	CampaignID      *uuid.UUID
	Sharpness       float64
	CreatedAt       time.Time
	Status          string // default "reviewed"
	// Bytes, when set, are the image's file (a PNG with PNG set, else a
	// JPEG) instead of a generated photo; W and H must be its size.
	Bytes []byte
}

// Image stores a new image: a distinct photo, its canonical bytes under
// blob.ImageKey, and its row.
func (f *Fixture) Image(o ImageOpts) Image {
	f.tb.Helper()
	ctx := context.Background()
	if o.W == 0 {
		o.W, o.H = 96, 64
	}
	if o.Status == "" {
		o.Status = "reviewed"
	}
	if o.Sharpness == 0 {
		o.Sharpness = 100
	}
	if o.CreatedAt.IsZero() {
		o.CreatedAt = time.Now()
	}
	n := f.seq.Add(1)
	img := Image{ID: uuid.New(), W: o.W, H: o.H, ContentType: "image/jpeg"}
	switch {
	case o.Bytes != nil:
		img.Bytes = o.Bytes
		if o.PNG {
			img.ContentType = "image/png"
		}
	case o.PNG:
		img.Bytes, img.ContentType = imagingtest.PNG(imagingtest.Photo(o.W, o.H, uint64(time.Now().UnixNano())^n)), "image/png"
	default:
		img.Bytes = imagingtest.JPEG(imagingtest.Photo(o.W, o.H, uint64(time.Now().UnixNano())^n))
	}
	sum := sha256.Sum256(img.Bytes)
	img.SHA = sum[:]
	if err := f.Blobs.Put(ctx, blob.ImageKey(img.SHA), bytes.NewReader(img.Bytes), int64(len(img.Bytes)), img.ContentType); err != nil {
		f.tb.Fatalf("datasettest: error storing image: %v", err)
	}
	upload := sha256.Sum256(append([]byte("upload"), img.SHA...))
	_, err := f.Pool.Exec(ctx, `
		INSERT INTO images (id, upload_sha256, sha256, owner_id, campaign_id, filename, content_type, byte_size, width, height,
		                    status, near_duplicate_of, quality, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::image_status, $12, jsonb_build_object('sharpness', $13::float8), $14)`,
		img.ID, upload[:], img.SHA, f.Owner, o.CampaignID, fmt.Sprintf("photo-%d.jpg", n), img.ContentType,
		len(img.Bytes), o.W, o.H, o.Status, o.NearDuplicateOf, o.Sharpness, o.CreatedAt)
	if err != nil {
		f.tb.Fatalf("datasettest: error inserting image: %v", err)
	}
	return img
}

// Instance is one annotated object.
type Instance struct {
	Label string
	Mask  *mask.Bitmap
}

// Annotation is a stored annotation.
type Annotation struct {
	ID    uuid.UUID
	Label string
	RLE   mask.RLE
}

// Review gives an image its first review (or a new one, replacing the
// current annotations, as the review workflow does), marks it reviewed,
// and returns the new annotations in the order given.
func (f *Fixture) Review(img Image, instances ...Instance) []Annotation {
	f.tb.Helper()
	ctx := context.Background()
	tx, err := f.Pool.Begin(ctx)
	if err != nil {
		f.tb.Fatalf("datasettest: %v", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after commit
	var item uuid.UUID
	err = tx.QueryRow(ctx, `
		INSERT INTO review_items (image_id, kind, done_by, done_at) VALUES ($1, 'first', $2, now())
		ON CONFLICT (image_id, kind) DO UPDATE SET done_at = now()
		RETURNING id`, img.ID, f.Reviewer).Scan(&item)
	if err != nil {
		f.tb.Fatalf("datasettest: error recording review: %v", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE annotations SET replaced_at = now() WHERE image_id = $1 AND review_item_id = $2 AND replaced_at IS NULL`, img.ID, item); err != nil {
		f.tb.Fatalf("datasettest: error replacing annotations: %v", err)
	}
	out := make([]Annotation, 0, len(instances))
	for i, in := range instances {
		rle := mask.Encode(in.Mask)
		area, err := rle.Area()
		if err != nil {
			f.tb.Fatalf("datasettest: %v", err)
		}
		box, err := rle.BBox()
		if err != nil {
			f.tb.Fatalf("datasettest: %v", err)
		}
		a := Annotation{ID: uuid.New(), Label: in.Label, RLE: rle}
		// created_at spaced by microseconds keeps the given order, as one
		// review's rows would be in practice.
		_, err = tx.Exec(ctx, `
			INSERT INTO annotations (id, image_id, review_item_id, label_id, height, width, counts, bbox, area, content_sha256, author_id, created_at)
			SELECT $1, $2, $3, l.id, $5, $6, $7, $8, $9, $10, $11, now() + make_interval(secs => $12::float8 / 1e6)
			FROM labels l WHERE l.name = $4`,
			a.ID, img.ID, item, in.Label, rle.Size[0], rle.Size[1], rle.Counts, box[:], area,
			review.ContentHash(in.Label, rle), f.Reviewer, i)
		if err != nil {
			f.tb.Fatalf("datasettest: error inserting annotation: %v", err)
		}
		out = append(out, a)
	}
	if _, err := tx.Exec(ctx, `UPDATE images SET status = 'reviewed' WHERE id = $1`, img.ID); err != nil {
		f.tb.Fatalf("datasettest: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		f.tb.Fatalf("datasettest: %v", err)
	}
	return out
}

// Box returns a w×h mask with the rectangle [x0, x1) × [y0, y1) set.
func Box(w, h, x0, y0, x1, y1 int) *mask.Bitmap {
	b := mask.NewBitmap(w, h)
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			b.Set(x, y, true)
		}
	}
	return b
}

// Blob returns a w×h mask with an ellipse inscribed in the box, so masks
// are not all rectangles.
func Blob(w, h, x0, y0, x1, y1 int) *mask.Bitmap {
	b := mask.NewBitmap(w, h)
	cx, cy := float64(x0+x1)/2, float64(y0+y1)/2
	rx, ry := float64(x1-x0)/2, float64(y1-y0)/2
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			dx, dy := (float64(x)+0.5-cx)/rx, (float64(y)+0.5-cy)/ry
			if dx*dx+dy*dy <= 1 {
				b.Set(x, y, true)
			}
		}
	}
	return b
}
