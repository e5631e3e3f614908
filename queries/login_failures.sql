-- name: LoginFailureInsert :exec
INSERT INTO login_failures (subject) VALUES (@subject);

-- name: LoginFailureCount :one
SELECT count(*) FROM login_failures
WHERE subject = @subject AND created_at > now() - make_interval(secs => @window_seconds::int);

-- name: LoginFailureOldest :one
-- When the oldest failure inside the window happened: it tells how long to wait.
SELECT coalesce(min(created_at), now())::timestamptz FROM login_failures
WHERE subject = @subject AND created_at > now() - make_interval(secs => @window_seconds::int);

-- name: LoginFailureClear :exec
DELETE FROM login_failures WHERE subject = @subject;

-- name: LoginFailureDeleteOld :execrows
DELETE FROM login_failures WHERE created_at < now() - make_interval(secs => @window_seconds::int);
