-- name: ImportCreate :exec
INSERT INTO imports (id, created_by, source, as_proposals, files)
VALUES (@id, @created_by, @source, @as_proposals, @files);

-- name: ImportSetJob :exec
UPDATE imports SET job_id = @job_id WHERE id = @id;

-- name: ImportGet :one
SELECT * FROM imports WHERE id = @id;

-- name: ImportStart :exec
UPDATE imports SET state = 'running', error = NULL, updated_at = now() WHERE id = @id AND state <> 'done';

-- name: ImportProgress :exec
UPDATE imports SET progress = @progress, updated_at = now() WHERE id = @id;

-- name: ImportFinish :exec
-- The end of a run: done, or failed with the error (summary is what it did).
UPDATE imports SET state = @state, summary = @summary, error = sqlc.narg(error), updated_at = now() WHERE id = @id;
