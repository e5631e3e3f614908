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

-- name: ImageNearDuplicates :many
-- Candidates share at least one 16-bit band with the probe sets (pigeonhole:
-- see imaging.Probes); the exact Hamming distance then filters them.
SELECT id, phash, bit_count(int8send(phash # @phash::bigint))::int AS distance
FROM images
WHERE id <> @id AND phash IS NOT NULL
  AND (phash_b0 = ANY(@p0::int[]) OR phash_b1 = ANY(@p1::int[])
       OR phash_b2 = ANY(@p2::int[]) OR phash_b3 = ANY(@p3::int[]))
  AND bit_count(int8send(phash # @phash::bigint)) <= @max_distance::int
ORDER BY distance, created_at
LIMIT 10;

-- name: ImageWindowHashesInsert :exec
-- An image's window hashes (imaging.WindowHashes), in imaging.Windows'
-- order; banded as images.phash is (imaging.Bands).
INSERT INTO image_window_hashes (image_id, window_no, hash, b0, b1, b2, b3)
SELECT @image_id, (t.n - 1)::smallint, t.h, (t.h >> 48) & 65535, (t.h >> 32) & 65535, (t.h >> 16) & 65535, t.h & 65535
FROM unnest(@hashes::bigint[]) WITH ORDINALITY AS t(h, n)
ON CONFLICT (image_id, window_no) DO NOTHING;

-- name: ImageNearDuplicatesInWindows :many
-- Images with a window whose hash is within max_distance of phash: the
-- image looked up may be a crop of them. Candidates share a band with the
-- probe sets (imaging.Probes), then the exact distance filters them.
SELECT i.id, min(bit_count(int8send(w.hash # @phash::bigint)))::int AS distance
FROM image_window_hashes w JOIN images i ON i.id = w.image_id
WHERE w.image_id <> @id
  AND (w.b0 = ANY(@p0::int[]) OR w.b1 = ANY(@p1::int[]) OR w.b2 = ANY(@p2::int[]) OR w.b3 = ANY(@p3::int[]))
  AND bit_count(int8send(w.hash # @phash::bigint)) <= @max_distance::int
GROUP BY i.id, i.created_at
ORDER BY distance, i.created_at
LIMIT 10;

-- name: ImageNearDuplicatesOfWindows :many
-- Images whose whole hash is within max_distance of one of hashes (the
-- window hashes of the image looked up, which may be the original of a
-- crop already stored). The probe sets are the union of each hash's, so a
-- candidate shares a band with the probes of the hash it is near.
SELECT c.id, c.distance
FROM (
    SELECT i.id, i.created_at,
        (SELECT min(bit_count(int8send(i.phash # h))) FROM unnest(@hashes::bigint[]) h)::int AS distance
    FROM images i
    WHERE i.id <> @id AND i.phash IS NOT NULL
      AND (i.phash_b0 = ANY(@p0::int[]) OR i.phash_b1 = ANY(@p1::int[])
           OR i.phash_b2 = ANY(@p2::int[]) OR i.phash_b3 = ANY(@p3::int[]))
) c
WHERE c.distance <= @max_distance::int
ORDER BY c.distance, c.created_at
LIMIT 10;

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
  AND (sqlc.narg(label)::text IS NULL OR EXISTS (
        SELECT 1 FROM image_labels il JOIN labels l ON l.id = il.label_id
        WHERE il.image_id = i.id AND l.name = sqlc.narg(label)::text))
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
        SELECT 1 FROM image_labels il JOIN labels l ON l.id = il.label_id
        WHERE il.image_id = i.id AND l.name = sqlc.narg(label)::text))
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
