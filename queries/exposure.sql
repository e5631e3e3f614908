-- name: ReviewBlindFor :one
-- How an image's open second review stands for one reviewer: may_take when
-- it could be handed to them (they are not its excluded first reviewer),
-- holds when they have its lease now. Either way the first review must stay
-- hidden from them until the second is done.
SELECT
    EXISTS (SELECT 1 FROM review_items
            WHERE image_id = sqlc.arg(image_id)::uuid AND kind = 'second' AND done_at IS NULL
              AND (excluded_user IS NULL OR excluded_user <> @user_id::uuid))::boolean AS may_take,
    EXISTS (SELECT 1 FROM review_items
            WHERE image_id = sqlc.arg(image_id)::uuid AND kind = 'second' AND done_at IS NULL
              AND leased_by = @user_id::uuid AND lease_expires_at > now())::boolean AS holds;

-- name: ImageUploadGet :one
-- One contributor's own upload of an image: the name and campaign they gave.
SELECT * FROM image_uploads WHERE image_id = @image_id AND user_id = @user_id;

-- name: UploadQuotaTake :one
-- Counts one file of size bytes against user's quota for today (UTC), if it
-- fits under both limits (0 = no limit). No row means it does not fit.
-- The row lock of ON CONFLICT makes the check and the count one step.
INSERT INTO upload_quota AS q (user_id, day, files, bytes)
SELECT @user_id::uuid, (now() AT TIME ZONE 'UTC')::date, 1, @bytes::bigint
WHERE (@max_files::int = 0 OR 1 <= @max_files::int)
  AND (@max_bytes::bigint = 0 OR @bytes::bigint <= @max_bytes::bigint)
ON CONFLICT (user_id, day) DO UPDATE SET files = q.files + 1, bytes = q.bytes + excluded.bytes
WHERE (@max_files::int = 0 OR q.files + 1 <= @max_files::int)
  AND (@max_bytes::bigint = 0 OR q.bytes + excluded.bytes <= @max_bytes::bigint)
RETURNING q.day, q.files, q.bytes;

-- name: UploadQuotaRefund :exec
-- Gives back a counted file that was not stored after all (refused, or the
-- store failed).
UPDATE upload_quota SET files = greatest(files - 1, 0), bytes = greatest(bytes - @bytes::bigint, 0)
WHERE user_id = @user_id AND day = @day;
