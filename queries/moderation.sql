-- name: ImageModerate :one
-- A moderator's decision on a flagged image (lifecycle.Moderate), which
-- holds the row lock; only a flagged image moves.
UPDATE images SET status = @status, reason = sqlc.narg(reason), updated_at = now()
WHERE id = @id AND status = 'flagged'
RETURNING *;

-- name: ImageModerationQueue :many
-- Flagged images, oldest first, keyset paged, narrowed to near-duplicates
-- or to a quality problem's words in the reason.
SELECT * FROM images i
WHERE i.status = 'flagged'
  AND (NOT @near_duplicate::boolean OR i.near_duplicate_of IS NOT NULL)
  AND (sqlc.narg(words)::text IS NULL OR strpos(i.reason, sqlc.narg(words)::text) > 0)
  AND (sqlc.narg(after_at)::timestamptz IS NULL
       OR (i.created_at, i.id) > (sqlc.narg(after_at)::timestamptz, sqlc.narg(after_id)::uuid))
ORDER BY i.created_at, i.id
LIMIT @max_rows;

-- name: ImagesByIDs :many
SELECT * FROM images WHERE id = ANY(@ids::uuid[]);
