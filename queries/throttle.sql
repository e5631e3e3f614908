-- name: LoginThrottleEnsure :exec
-- Creates the rows an attempt will lock; existing rows are left alone.
INSERT INTO login_throttle (client, account)
SELECT @client::text, unnest(@accounts::text[])
ON CONFLICT (client, account) DO NOTHING;

-- name: LoginThrottleLock :many
-- Locks the attempt's rows in key order (the per-client row, account '',
-- first), so that concurrent attempts queue here instead of racing.
SELECT * FROM login_throttle
WHERE client = @client AND account = ANY(@accounts::text[])
ORDER BY client, account
FOR UPDATE;

-- name: LoginThrottlePeek :many
-- The attempt's rows without a lock: a client that must wait anyway is
-- refused without queueing for the lock.
SELECT * FROM login_throttle
WHERE client = @client AND account = ANY(@accounts::text[]);

-- name: LoginThrottleSet :exec
UPDATE login_throttle
SET failures = @failures, last_failure_at = @last_failure_at, next_allowed_at = @next_allowed_at
WHERE client = @client AND account = @account;

-- name: LoginThrottleClear :exec
-- A successful sign-in forgets that pair's failures.
DELETE FROM login_throttle WHERE client = @client AND account = @account;

-- name: LoginThrottleRefund :exec
-- A successful sign-in does not count against its client.
UPDATE login_throttle SET failures = greatest(failures - 1, 0)
WHERE client = @client AND account = '';

-- name: LoginThrottleDeleteOld :execrows
DELETE FROM login_throttle
WHERE last_failure_at < now() - make_interval(secs => @older_than_seconds::float8)
  AND next_allowed_at < now();

-- name: SignupThrottleHit :one
-- Counts one sign-up attempt of a client in a fixed window, atomically.
INSERT INTO signup_throttle AS t (client, window_start, attempts)
VALUES (@client, now(), 1)
ON CONFLICT (client) DO UPDATE SET
    attempts = CASE WHEN t.window_start <= now() - make_interval(secs => @window_seconds::float8) THEN 1 ELSE t.attempts + 1 END,
    window_start = CASE WHEN t.window_start <= now() - make_interval(secs => @window_seconds::float8) THEN now() ELSE t.window_start END
RETURNING attempts, window_start;

-- name: SignupThrottleDeleteOld :execrows
DELETE FROM signup_throttle WHERE window_start < now() - make_interval(secs => @older_than_seconds::float8);

-- name: SetupCodeInsert :exec
INSERT INTO setup_codes (code_hash) VALUES (@code_hash);

-- name: SetupCodeTake :execrows
-- Uses a code up: it is deleted, so it works once.
DELETE FROM setup_codes WHERE code_hash = @code_hash;

-- name: SetupCodeDeleteAll :exec
DELETE FROM setup_codes;
