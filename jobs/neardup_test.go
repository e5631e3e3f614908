package jobs

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"image"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/dbtest"
	"github.com/deepimageshub/imagehub/imaging"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
	"github.com/deepimageshub/imagehub/queries"
)

// nearDupHashes are an image's hashes as ingest computes them.
type nearDupHashes struct {
	whole   uint64
	windows []uint64
}

// hashesOf hashes img as imaging.Derive does (the grid thumbnail made from
// the review one), without the thumbnails' JPEG encoding and the quality
// measures, which would take most of the test's time;
// TestNearDuplicateHashesAreIngests checks they agree.
func hashesOf(tb testing.TB, img image.Image) nearDupHashes {
	tb.Helper()
	grid := imaging.Thumbnail(imaging.Thumbnail(img, imaging.ReviewSize), imaging.GridSize)
	return nearDupHashes{imaging.PHash(grid), imaging.WindowHashes(grid)}
}

// hashAll hashes images on every core.
func hashAll(tb testing.TB, imgs []image.Image) []nearDupHashes {
	tb.Helper()
	out := make([]nearDupHashes, len(imgs))
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				out[i] = hashesOf(tb, imgs[i])
			}
		})
	}
	for i := range imgs {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

func TestNearDuplicateHashesAreIngests(t *testing.T) {
	t.Parallel()
	for _, img := range []image.Image{imagingtest.Photo(400, 300, 1), imagingtest.Scene(1700, 1000, 1, 1)} {
		d, err := imaging.Derive(&imaging.Result{Image: img, Format: "png"})
		require.NoError(t, err)
		require.Equal(t, nearDupHashes{d.PHash, d.Windows}, hashesOf(t, img))
	}
}

// nearDupScore counts the outcomes of near-duplicate lookups on a
// NearDuplicateSet: a lookup is right when it names an image made from
// the same original, a false alarm when it names one made from another.
type nearDupScore struct {
	found, missed, falseAlarms int
	cropsFound, cropsMissed    int // crops looked up among originals
	origsFound, origsMissed    int // originals looked up among their crops
	lookups                    int
	lookupTime                 time.Duration
	alarms                     []string // what was confused with what
	misses                     []string // what was not found
}

func (s nearDupScore) precision() float64 {
	return float64(s.found) / float64(max(1, s.found+s.falseAlarms))
}

func (s nearDupScore) recall() float64 { return float64(s.found) / float64(max(1, s.found+s.missed)) }

func (s nearDupScore) cropRecall() float64 {
	return float64(s.cropsFound) / float64(max(1, s.cropsFound+s.cropsMissed))
}

func (s nearDupScore) reverseRecall() float64 {
	return float64(s.origsFound) / float64(max(1, s.origsFound+s.origsMissed))
}

// scoreNearDuplicates stores the originals' hashes as ingest does and
// looks up every variant among them; every original among the others
// (where any hit is a false alarm, the similar scenes included); then,
// with only the crops stored, every original among them (the original
// uploaded after its crop). Rows already in the database (a benchmark's
// million) stay and take part.
func scoreNearDuplicates(tb testing.TB, pool *pgxpool.Pool, photos, w, h int) nearDupScore {
	tb.Helper()
	ctx := context.Background()
	originals, variants, _ := imagingtest.NearDuplicateSet(photos, w, h)
	worker := &IngestWorker{pool: pool, q: queries.New(), logger: slog.New(slog.NewTextHandler(io.Discard, nil)), nearDist: 6}
	var owner uuid.UUID
	require.NoError(tb, pool.QueryRow(ctx, `INSERT INTO users (email, name, password_hash)
		VALUES ('neardup-'||gen_random_uuid()||'@example.com', 'Near', 'x') RETURNING id`).Scan(&owner))

	group := map[uuid.UUID]int{} // stored image → its original
	var s nearDupScore
	lookup := func(id uuid.UUID, hs nearDupHashes, of int, what string) (found, alarm bool) {
		start := time.Now()
		got, err := worker.nearDuplicate(ctx, id, hs.whole, hs.windows)
		s.lookupTime += time.Since(start)
		s.lookups++
		require.NoError(tb, err)
		if got == nil {
			return false, false
		}
		g, ours := group[*got]
		if !ours {
			// A row the set did not store (a benchmark's random hash).
			s.alarms = append(s.alarms, what+" ~ a stored row not in the set")
			return false, true
		}
		if g != of {
			s.alarms = append(s.alarms, fmt.Sprintf("%s ~ photo %d", what, g))
			return false, true
		}
		return true, false
	}

	var imgs []image.Image
	for _, o := range originals {
		imgs = append(imgs, o)
	}
	for _, v := range variants {
		imgs = append(imgs, v.Image)
	}
	all := hashAll(tb, imgs)
	origHashes, varHashes := all[:len(originals)], all[len(originals):]
	origIDs := make([]uuid.UUID, len(originals))
	for i := range originals {
		origIDs[i] = storeHashes(tb, pool, owner, origHashes[i])
		group[origIDs[i]] = i
	}
	for k, v := range variants {
		found, alarm := lookup(uuid.New(), varHashes[k], v.Of, fmt.Sprintf("%s of photo %d", v.Name, v.Of))
		switch {
		case found:
			s.found++
		case alarm:
			s.falseAlarms++
		default:
			s.missed++
			s.misses = append(s.misses, fmt.Sprintf("%s of photo %d", v.Name, v.Of))
		}
		if v.Crop && found {
			s.cropsFound++
		} else if v.Crop {
			s.cropsMissed++
		}
	}
	for i := range originals {
		// Its own row is left out, so any answer is another photo.
		if _, alarm := lookup(origIDs[i], origHashes[i], -1, fmt.Sprintf("photo %d", i)); alarm {
			s.falseAlarms++
		}
	}

	// The crops first, then their originals.
	_, err := pool.Exec(ctx, "DELETE FROM images WHERE id = ANY($1)", origIDs)
	require.NoError(tb, err)
	clear(group)
	for k, v := range variants {
		if v.Crop {
			group[storeHashes(tb, pool, owner, varHashes[k])] = v.Of
		}
	}
	for i := range originals {
		found, alarm := lookup(uuid.New(), origHashes[i], i, fmt.Sprintf("photo %d after its crops", i))
		switch {
		case found:
			s.found++
			s.origsFound++
		case alarm:
			s.falseAlarms++
		default:
			s.missed++
			s.origsMissed++
			s.misses = append(s.misses, fmt.Sprintf("photo %d after its crops", i))
		}
	}
	return s
}

// storeHashes adds an image row with the given hashes, as ingest leaves it.
func storeHashes(tb testing.TB, pool *pgxpool.Pool, owner uuid.UUID, hs nearDupHashes) uuid.UUID {
	tb.Helper()
	ctx := context.Background()
	sha := make([]byte, 32)
	_, _ = rand.Read(sha)
	b := imaging.Bands(hs.whole)
	var id uuid.UUID
	require.NoError(tb, pool.QueryRow(ctx, `
		INSERT INTO images (upload_sha256, owner_id, filename, content_type, byte_size, width, height, status,
		                    phash, phash_b0, phash_b1, phash_b2, phash_b3)
		VALUES ($1, $2, 'x.jpg', 'image/jpeg', 1, 1, 1, 'awaiting_review', $3, $4, $5, $6, $7) RETURNING id`,
		sha, owner, int64(hs.whole), int32(b[0]), int32(b[1]), int32(b[2]), int32(b[3])).Scan(&id))
	require.NoError(tb, queries.New().ImageWindowHashesInsert(ctx, pool, queries.ImageWindowHashesInsertParams{
		ImageID: id, Hashes: windowInts(hs.windows),
	}))
	return id
}

// TestNearDuplicatesSurviveCrops: on 40 generated photos (half of them
// pairs of different photos of one scene) and their re-encoded, resized,
// cropped (80% at the centre and the corners) and retouched copies, the
// lookup finds at least 95% of the copies and of the crops, in both orders
// of upload, and never names a different photo. BenchmarkNearDuplicateQuality
// scores 60 photos at 1024×768; 40 small ones keep make test's time down.
func TestNearDuplicatesSurviveCrops(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	s := scoreNearDuplicates(t, pool, 40, 400, 300)
	t.Logf("precision %.3f, recall %.3f (%d found, %d missed), crops %.3f, originals after their crops %.3f",
		s.precision(), s.recall(), s.found, s.missed, s.cropRecall(), s.reverseRecall())
	t.Logf("missed: %v", s.misses)
	require.Empty(t, s.alarms, "false alarms")
	require.Zero(t, s.falseAlarms)
	require.GreaterOrEqual(t, s.cropRecall(), 0.95, "crops found among their originals")
	require.GreaterOrEqual(t, s.reverseRecall(), 0.95, "originals found among their crops")
	require.GreaterOrEqual(t, s.recall(), 0.95)
}

// TestBackfillWindowHashes: an image ingested before window hashes existed
// gets them from its grid thumbnail, and from then on its crops are found;
// an image whose thumbnail is gone is skipped, and a second run has
// nothing to do.
func TestBackfillWindowHashes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	store, err := blob.NewFS(t.TempDir())
	require.NoError(t, err)
	var owner uuid.UUID
	require.NoError(t, pool.QueryRow(ctx, `INSERT INTO users (email, name, password_hash)
		VALUES ('old@example.com', 'Old', 'x') RETURNING id`).Scan(&owner))
	old := func(photo *image.RGBA, withThumb bool) uuid.UUID {
		d, err := imaging.Derive(&imaging.Result{Image: photo, Format: "png"})
		require.NoError(t, err)
		sha := make([]byte, 32)
		_, _ = rand.Read(sha)
		b := imaging.Bands(d.PHash)
		var id uuid.UUID
		require.NoError(t, pool.QueryRow(ctx, `
			INSERT INTO images (upload_sha256, sha256, owner_id, filename, content_type, byte_size, width, height, status,
			                    phash, phash_b0, phash_b1, phash_b2, phash_b3)
			VALUES ($1, $1, $2, 'x.jpg', 'image/jpeg', 1, 1, 1, 'awaiting_review', $3, $4, $5, $6, $7) RETURNING id`,
			sha, owner, int64(d.PHash), int32(b[0]), int32(b[1]), int32(b[2]), int32(b[3])).Scan(&id))
		if withThumb {
			require.NoError(t, store.Put(ctx, blob.ThumbKey(blob.ThumbGrid, sha), bytes.NewReader(d.Grid), int64(len(d.Grid)), "image/jpeg"))
		}
		return id
	}
	photo := imagingtest.Photo(800, 600, 4242)
	kept := old(photo, true)
	lost := old(imagingtest.Photo(800, 600, 4343), false)
	count := func(id uuid.UUID) (n int) {
		require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM image_window_hashes WHERE image_id = $1", id).Scan(&n))
		return n
	}

	ingest := &IngestWorker{pool: pool, q: queries.New(), logger: slog.New(slog.NewTextHandler(io.Discard, nil)), nearDist: 6}
	crop := hashesOf(t, photo.SubImage(image.Rect(0, 0, 640, 480)))
	got, err := ingest.nearDuplicate(ctx, uuid.New(), crop.whole, crop.windows)
	require.NoError(t, err)
	require.Nil(t, got, "without window hashes a crop is not found")

	w := &BackfillWindowHashesWorker{pool: pool, q: queries.New(), blobs: store, logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	require.NoError(t, w.Work(ctx, &river.Job[BackfillWindowHashesArgs]{}))
	require.Equal(t, len(imaging.Windows), count(kept))
	require.Zero(t, count(lost), "no thumbnail, nothing to hash")

	got, err = ingest.nearDuplicate(ctx, uuid.New(), crop.whole, crop.windows)
	require.NoError(t, err)
	require.NotNil(t, got, "the crop is found once the original has window hashes")
	require.Equal(t, kept, *got)

	require.NoError(t, w.Work(ctx, &river.Job[BackfillWindowHashesArgs]{}))
	require.Equal(t, len(imaging.Windows), count(kept), "a second run adds nothing")
}
