-- +goose Up

-- Batching (docs/batching.md): up to max_batch images of this model go in
-- one request, gathered from waiting jobs for at most batch_window_ms.
-- max_batch 1 sends every image on its own, as before. A model that
-- batches declares a variable leading batch dimension (IMAGE BYTES [-1]).
ALTER TABLE models
    ADD COLUMN max_batch integer NOT NULL DEFAULT 1 CHECK (max_batch BETWEEN 1 AND 256),
    ADD COLUMN batch_window_ms integer NOT NULL DEFAULT 10 CHECK (batch_window_ms BETWEEN 0 AND 1000);

-- +goose Down
ALTER TABLE models
    DROP COLUMN batch_window_ms,
    DROP COLUMN max_batch;
