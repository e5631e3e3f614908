-- +goose Up

-- When a trainer last asked for work of each recipe (training.Service.Take).
-- The recipes list and a queued run's page say whether any trainer is there
-- to take a run (the project ships none for yolo-seg), and a run that no
-- trainer takes within TRAINING_QUEUE_TIMEOUT ends failed, saying why,
-- instead of holding its owner's training slot for ever.
CREATE TABLE trainer_polls (
    recipe    text PRIMARY KEY,
    trainer   text NOT NULL,
    polled_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE trainer_polls;
