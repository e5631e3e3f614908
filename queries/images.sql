-- name: ImageInsert :one
-- A new upload. ON CONFLICT makes two simultaneous uploads of the same bytes
-- produce one row: the loser gets no row back and treats its upload as a
-- duplicate.
INSERT INTO images (id, upload_sha256, owner_id, campaign_id, filename, content_type, byte_size, width, height)
VALUES (@id, @upload_sha256, @owner_id, sqlc.narg(campaign_id), @filename, @content_type, @byte_size, @width, @height)
ON CONFLICT (upload_sha256) DO NOTHING
RETURNING *;

-- name: ImageGetByUploadHash :one
SELECT * FROM images WHERE upload_sha256 = @upload_sha256;

-- name: ImageGet :one
SELECT * FROM images WHERE id = @id;

-- name: ImageGetForUpdate :one
SELECT * FROM images WHERE id = @id FOR UPDATE;

-- name: ImageUploadInsert :exec
INSERT INTO image_uploads (image_id, user_id, filename, campaign_id)
VALUES (@image_id, @user_id, @filename, sqlc.narg(campaign_id))
ON CONFLICT (user_id, image_id) DO NOTHING;

-- name: ImageUploadedBy :one
SELECT EXISTS (SELECT 1 FROM image_uploads WHERE image_id = @image_id AND user_id = @user_id);

-- name: ImageLabelsAdd :exec
INSERT INTO image_labels (image_id, label_id, added_by)
SELECT @image_id, unnest(@label_ids::uuid[]), @added_by
ON CONFLICT (image_id, label_id) DO NOTHING;

-- name: ImageLabelNames :many
SELECT l.name FROM image_labels il JOIN labels l ON l.id = il.label_id
WHERE il.image_id = @image_id ORDER BY l.name;

-- name: ImageLabelNamesMany :many
SELECT il.image_id, l.name FROM image_labels il JOIN labels l ON l.id = il.label_id
WHERE il.image_id = ANY(@image_ids::uuid[]) ORDER BY il.image_id, l.name;

-- name: ImageSetProcessing :execrows
UPDATE images SET status = 'processing', updated_at = now()
WHERE id = @id AND status IN ('uploaded', 'processing');

-- name: ImageFinishIngest :execrows
-- Ingest's verdict. Only an image still being ingested is changed, so a
-- retried job never overwrites a later state.
UPDATE images SET
    sha256 = sqlc.narg(sha256), width = @width, height = @height, byte_size = @byte_size,
    content_type = @content_type, status = @status, reason = sqlc.narg(reason),
    phash = sqlc.narg(phash), phash_b0 = sqlc.narg(phash_b0), phash_b1 = sqlc.narg(phash_b1),
    phash_b2 = sqlc.narg(phash_b2), phash_b3 = sqlc.narg(phash_b3),
    near_duplicate_of = sqlc.narg(near_duplicate_of), quality = sqlc.narg(quality),
    updated_at = now()
WHERE id = @id AND status IN ('uploaded', 'processing');

-- name: ImageGetBySHA :one
SELECT * FROM images WHERE sha256 = @sha256;

-- name: ImageNearDuplicateFind :many
-- The earlier image the one looked up (whole hash phash, window hashes
-- hashes) most likely duplicates, in one round trip: first one whose whole
-- hash is within max_distance of phash (kind 0, a re-encoded, resized or
-- retouched copy); else, within window_distance, the nearest of one with a
-- window near phash (kind 1: the image looked up is a crop of it) and one
-- whose whole hash is near one of hashes (kind 2: it is a crop of the image
-- looked up), kind 1 first on a tie. Candidates share at least one 16-bit
-- band with the probe sets (pigeonhole: see imaging.Probes): p0..p3 for the
-- whole hash, w0..w3 for the windows searched with it, u0..u3 the union of
-- the probes of hashes; the exact Hamming distance then filters them.
--
-- Each band of each lookup is its own arm of a UNION ALL, not a term of an
-- OR: an OR is a bitmap scan, which reads every candidate's table row (a
-- thousand rows at a million images), while an arm is an index-only scan
-- of the band's covering index (migration 00021). A candidate found in two
-- bands, or near two windows, comes twice, which changes neither the
-- nearest nor the order.
SELECT c.id, c.kind, c.distance FROM (
    SELECT g.id, g.created_at, bit_count(int8send(g.phash # @phash::bigint))::int AS distance, 0 AS kind
    FROM images g
    WHERE g.phash_b0 = ANY(@p0::int[]) AND g.phash IS NOT NULL AND g.id <> @id
      AND bit_count(int8send(g.phash # @phash::bigint)) <= @max_distance::int
    UNION ALL
    SELECT g.id, g.created_at, bit_count(int8send(g.phash # @phash::bigint))::int AS distance, 0 AS kind
    FROM images g
    WHERE g.phash_b1 = ANY(@p1::int[]) AND g.phash IS NOT NULL AND g.id <> @id
      AND bit_count(int8send(g.phash # @phash::bigint)) <= @max_distance::int
    UNION ALL
    SELECT g.id, g.created_at, bit_count(int8send(g.phash # @phash::bigint))::int AS distance, 0 AS kind
    FROM images g
    WHERE g.phash_b2 = ANY(@p2::int[]) AND g.phash IS NOT NULL AND g.id <> @id
      AND bit_count(int8send(g.phash # @phash::bigint)) <= @max_distance::int
    UNION ALL
    SELECT g.id, g.created_at, bit_count(int8send(g.phash # @phash::bigint))::int AS distance, 0 AS kind
    FROM images g
    WHERE g.phash_b3 = ANY(@p3::int[]) AND g.phash IS NOT NULL AND g.id <> @id
      AND bit_count(int8send(g.phash # @phash::bigint)) <= @max_distance::int
    UNION ALL
    SELECT i.id, i.created_at, bit_count(int8send(w.hash # @phash::bigint))::int, 1
    FROM image_window_hashes w JOIN images i ON i.id = w.image_id
    WHERE w.b0 = ANY(@w0::int[]) AND w.image_id <> @id
      AND bit_count(int8send(w.hash # @phash::bigint)) <= @window_distance::int
    UNION ALL
    SELECT i.id, i.created_at, bit_count(int8send(w.hash # @phash::bigint))::int, 1
    FROM image_window_hashes w JOIN images i ON i.id = w.image_id
    WHERE w.b1 = ANY(@w1::int[]) AND w.image_id <> @id
      AND bit_count(int8send(w.hash # @phash::bigint)) <= @window_distance::int
    UNION ALL
    SELECT i.id, i.created_at, bit_count(int8send(w.hash # @phash::bigint))::int, 1
    FROM image_window_hashes w JOIN images i ON i.id = w.image_id
    WHERE w.b2 = ANY(@w2::int[]) AND w.image_id <> @id
      AND bit_count(int8send(w.hash # @phash::bigint)) <= @window_distance::int
    UNION ALL
    SELECT i.id, i.created_at, bit_count(int8send(w.hash # @phash::bigint))::int, 1
    FROM image_window_hashes w JOIN images i ON i.id = w.image_id
    WHERE w.b3 = ANY(@w3::int[]) AND w.image_id <> @id
      AND bit_count(int8send(w.hash # @phash::bigint)) <= @window_distance::int
    UNION ALL
    SELECT o.id, o.created_at, bit_count(int8send(o.phash # h.h))::int, 2
    FROM images o CROSS JOIN unnest(@hashes::bigint[]) AS h(h)
    WHERE o.phash_b0 = ANY(@u0::int[]) AND o.phash IS NOT NULL AND o.id <> @id
      AND bit_count(int8send(o.phash # h.h)) <= @window_distance::int
    UNION ALL
    SELECT o.id, o.created_at, bit_count(int8send(o.phash # h.h))::int, 2
    FROM images o CROSS JOIN unnest(@hashes::bigint[]) AS h(h)
    WHERE o.phash_b1 = ANY(@u1::int[]) AND o.phash IS NOT NULL AND o.id <> @id
      AND bit_count(int8send(o.phash # h.h)) <= @window_distance::int
    UNION ALL
    SELECT o.id, o.created_at, bit_count(int8send(o.phash # h.h))::int, 2
    FROM images o CROSS JOIN unnest(@hashes::bigint[]) AS h(h)
    WHERE o.phash_b2 = ANY(@u2::int[]) AND o.phash IS NOT NULL AND o.id <> @id
      AND bit_count(int8send(o.phash # h.h)) <= @window_distance::int
    UNION ALL
    SELECT o.id, o.created_at, bit_count(int8send(o.phash # h.h))::int, 2
    FROM images o CROSS JOIN unnest(@hashes::bigint[]) AS h(h)
    WHERE o.phash_b3 = ANY(@u3::int[]) AND o.phash IS NOT NULL AND o.id <> @id
      AND bit_count(int8send(o.phash # h.h)) <= @window_distance::int
) c
ORDER BY c.kind = 0 DESC, c.distance, c.kind, c.created_at
LIMIT 1;

-- name: ImageWindowHashesInsert :exec
-- An image's window hashes (imaging.WindowHashes), in imaging.Windows'
-- order; banded as images.phash is (imaging.Bands).
INSERT INTO image_window_hashes (image_id, window_no, hash, b0, b1, b2, b3)
SELECT @image_id, (t.n - 1)::smallint, t.h, (t.h >> 48) & 65535, (t.h >> 32) & 65535, (t.h >> 16) & 65535, t.h & 65535
FROM unnest(@hashes::bigint[]) WITH ORDINALITY AS t(h, n)
ON CONFLICT (image_id, window_no) DO NOTHING;

-- name: ImageListMissingWindowHashes :many
-- Images ingested before window hashes were (migration 00019) that have a
-- grid thumbnail to compute them from, in id order after after_id.
SELECT i.id, i.sha256 FROM images i
WHERE i.id > @after_id AND i.phash IS NOT NULL AND i.sha256 IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM image_window_hashes w WHERE w.image_id = i.id)
ORDER BY i.id
LIMIT @max_rows;

-- name: ImageListByUploader :many
-- A contributor's own uploads, newest first, keyset paged.
SELECT sqlc.embed(i), u.created_at AS uploaded_at, u.filename AS upload_filename, u.campaign_id AS upload_campaign_id
FROM image_uploads u JOIN images i ON i.id = u.image_id
WHERE u.user_id = @user_id
  AND (sqlc.narg(status)::image_status IS NULL OR i.status = sqlc.narg(status)::image_status)
  AND (sqlc.narg(campaign_id)::uuid IS NULL OR u.campaign_id = sqlc.narg(campaign_id)::uuid)
  -- The label's id is looked up once and the check reads the upload's
  -- image id, so it is an index-only probe of image_labels' key made before
  -- the image row is fetched: only matching uploads cost an image read.
  AND (sqlc.narg(label)::text IS NULL OR EXISTS (
        SELECT 1 FROM image_labels il
        WHERE il.image_id = u.image_id
          AND il.label_id = (SELECT l.id FROM labels l WHERE l.name = sqlc.narg(label)::text)))
  AND (sqlc.narg(before_at)::timestamptz IS NULL
       OR (u.created_at, u.image_id) < (sqlc.narg(before_at)::timestamptz, sqlc.narg(before_id)::uuid))
ORDER BY u.created_at DESC, u.image_id DESC
LIMIT @max_rows;

-- name: ImageListAll :many
-- Every image, for reviewers and admins, newest first, keyset paged.
SELECT sqlc.embed(i), i.created_at AS uploaded_at
FROM images i
WHERE (sqlc.narg(status)::image_status IS NULL OR i.status = sqlc.narg(status)::image_status)
  AND (sqlc.narg(campaign_id)::uuid IS NULL OR i.campaign_id = sqlc.narg(campaign_id)::uuid)
  AND (sqlc.narg(label)::text IS NULL OR EXISTS (
        SELECT 1 FROM image_labels il
        WHERE il.image_id = i.id
          AND il.label_id = (SELECT l.id FROM labels l WHERE l.name = sqlc.narg(label)::text)))
  AND (sqlc.narg(before_at)::timestamptz IS NULL
       OR (i.created_at, i.id) < (sqlc.narg(before_at)::timestamptz, sqlc.narg(before_id)::uuid))
ORDER BY i.created_at DESC, i.id DESC
LIMIT @max_rows;

-- name: ImageStatuses :many
-- Status of some images, for the live status refresh of a page.
SELECT id, status, reason FROM images WHERE id = ANY(@ids::uuid[]);

-- name: ImageReferencesHash :one
-- Whether any image still needs a blob named by this hash (orphan sweep).
SELECT EXISTS (SELECT 1 FROM images WHERE upload_sha256 = @hash OR sha256 = @hash);

-- name: ImageUploadStillNeeded :one
-- The upload bytes are needed until ingest has written the canonical copy.
SELECT EXISTS (SELECT 1 FROM images WHERE upload_sha256 = @hash AND status IN ('uploaded', 'processing'));
