-- name: APITokenInsert :one
INSERT INTO api_tokens (user_id, name, token_hash, expires_at, trainer)
VALUES (@user_id, @name, @token_hash, @expires_at, @trainer)
RETURNING *;

-- name: APITokenGetUser :one
-- The user behind a live token.
SELECT sqlc.embed(users), api_tokens.id AS token_id, api_tokens.trainer
FROM api_tokens JOIN users ON users.id = api_tokens.user_id
WHERE api_tokens.token_hash = @token_hash
  AND api_tokens.revoked_at IS NULL
  AND (api_tokens.expires_at IS NULL OR api_tokens.expires_at > now());

-- name: APITokenTouch :exec
-- last_used_at is kept to the minute, so a busy script does not write on every call.
UPDATE api_tokens SET last_used_at = now()
WHERE id = @id AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute');

-- name: APITokenListByUser :many
SELECT * FROM api_tokens WHERE user_id = @user_id ORDER BY created_at DESC, id;

-- name: APITokenRevoke :execrows
UPDATE api_tokens SET revoked_at = now()
WHERE id = @id AND user_id = @user_id AND revoked_at IS NULL;

-- name: APITokenRevokeAllByUser :execrows
UPDATE api_tokens SET revoked_at = now() WHERE user_id = @user_id AND revoked_at IS NULL;
