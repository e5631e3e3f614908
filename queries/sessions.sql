-- name: SessionInsert :exec
INSERT INTO sessions (id_hash, user_id, expires_at, user_agent, ip)
VALUES (@id_hash, @user_id, @expires_at, @user_agent, @ip);

-- name: SessionGetUser :one
-- The user behind a live session.
SELECT sqlc.embed(users), sessions.expires_at AS session_expires_at
FROM sessions JOIN users ON users.id = sessions.user_id
WHERE sessions.id_hash = @id_hash AND sessions.expires_at > now();

-- name: SessionTouch :exec
-- Sliding expiry, written at most once a minute per session.
UPDATE sessions SET last_seen_at = now(), expires_at = @expires_at
WHERE id_hash = @id_hash AND last_seen_at < now() - interval '1 minute';

-- name: SessionDelete :exec
DELETE FROM sessions WHERE id_hash = @id_hash;

-- name: SessionDeleteByUser :exec
DELETE FROM sessions WHERE user_id = @user_id;

-- name: SessionDeleteExpired :execrows
DELETE FROM sessions WHERE expires_at < now();
