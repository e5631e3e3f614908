-- +goose Up

-- An import sent through POST /api/v1/imports: its files wait in the blob
-- store under imports/<id>/ until its job has run, so that a process that
-- stops mid-import loses nothing and the job runs again after a restart.
CREATE TABLE imports (
    id           uuid PRIMARY KEY,
    created_by   uuid NOT NULL REFERENCES users(id),
    -- The annotations file's name: the provenance's source.
    source       text NOT NULL,
    as_proposals boolean NOT NULL DEFAULT false,
    -- The stored files: [{"key": blob key, "name": path in the import, "kind": "annotations"|"image"|"archive"}].
    files        jsonb NOT NULL,
    state        text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed')),
    -- Annotations read so far by the running job.
    progress     integer NOT NULL DEFAULT 0,
    summary      jsonb,
    error        text,
    job_id       bigint,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE imports;
