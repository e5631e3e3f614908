-- name: SessionInsert :exec
INSERT INTO sessions (id_hash, user_id, expires_at, user_agent, ip)
VALUES (@id_hash, @user_id, @expires_at, @user_agent, @ip);

-- name: SessionGetUser :one
-- The user behind a live session.
-- Besides its sliding expiry, a session ends max_age after it began.
SELECT sqlc.embed(users), sessions.expires_at AS session_expires_at
FROM sessions JOIN users ON users.id = sessions.user_id
WHERE sessions.id_hash = @id_hash AND sessions.expires_at > now()
  AND sessions.created_at > now() - make_interval(secs => @max_age_seconds::float8);

-- name: SessionTouch :exec
-- Sliding expiry, written at most once a minute per session, never past
-- the session's absolute lifetime.
UPDATE sessions SET last_seen_at = now(),
    expires_at = least(@expires_at::timestamptz, created_at + make_interval(secs => @max_age_seconds::float8))
WHERE id_hash = @id_hash AND last_seen_at < now() - interval '1 minute';

-- name: SessionDelete :exec
DELETE FROM sessions WHERE id_hash = @id_hash;

-- name: SessionDeleteByUser :exec
DELETE FROM sessions WHERE user_id = @user_id;

-- name: SessionDeleteExpired :execrows
DELETE FROM sessions WHERE expires_at < now();

-- name: SessionDeleteOthers :exec
-- Ends every session of the user but one (keep_id_hash may match none).
DELETE FROM sessions WHERE user_id = @user_id AND id_hash <> @keep_id_hash;
