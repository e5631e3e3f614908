-- +goose Up

-- What a trainer says it is doing within a running run: "running" (training)
-- or "evaluating" (its own validation pass), from its latest progress report
-- (docs/training.md). The run's state stays running until the upload; the
-- hub's own evaluation after it is the state evaluating.
ALTER TABLE trainings ADD COLUMN phase text CHECK (phase IN ('running', 'evaluating'));

-- +goose Down
ALTER TABLE trainings DROP COLUMN phase;
