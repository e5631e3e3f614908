-- name: OIDCLoginInsert :exec
INSERT INTO oidc_logins (state_hash, nonce, code_verifier, next, expires_at)
VALUES (@state_hash, @nonce, @code_verifier, @next, @expires_at);

-- name: OIDCLoginTake :one
-- Single use: the attempt is gone once its callback has been seen.
DELETE FROM oidc_logins WHERE state_hash = @state_hash AND expires_at > now()
RETURNING *;

-- name: OIDCLoginDeleteExpired :execrows
DELETE FROM oidc_logins WHERE expires_at < now();

-- name: OIDCAccountGet :one
SELECT * FROM oidc_accounts WHERE user_id = @user_id;

-- name: OIDCAccountUpsert :exec
INSERT INTO oidc_accounts (user_id, issuer, subject, granted_role, last_sign_in_at)
VALUES (@user_id, @issuer, @subject, @granted_role, now())
ON CONFLICT (user_id) DO UPDATE
SET issuer = excluded.issuer, subject = excluded.subject,
    granted_role = excluded.granted_role, last_sign_in_at = now();
