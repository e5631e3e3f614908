-- +goose Up

-- A trainer token (api_tokens.trainer) lets a remote trainer take training
-- runs and report on them, and nothing else: its requests carry the role
-- trainer whatever its owner's role (docs/training.md).
ALTER TABLE api_tokens ADD COLUMN trainer boolean NOT NULL DEFAULT false;

CREATE TYPE training_state AS ENUM ('queued', 'running', 'evaluating', 'succeeded', 'failed', 'cancelled');

-- A training run (package training): a recipe trained by a remote trainer
-- on a subset (label_ids, empty for all) of a published dataset version.
-- What makes it reproducible is recorded: version, subset, recipe, params,
-- seed and the trainer's name/version. A trainer holds a lease (its token's
-- SHA-256 and expiry) that it renews with progress; a lease that lapses
-- puts the run back to queued with attempt + 1 until max_attempts. The
-- artifact is stored under artifact_key once checked, and becomes version
-- model_version of model model_name (model_id), evaluated by evaluation_id
-- against baseline_evaluation_id (the model that proposes today, or the
-- previous version for a retrain).
CREATE TABLE trainings (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_by             uuid NOT NULL REFERENCES users (id),
    dataset_id             uuid NOT NULL REFERENCES datasets (id),
    version_id             uuid NOT NULL REFERENCES dataset_versions (id),
    version_number         integer NOT NULL,
    label_ids              uuid[] NOT NULL DEFAULT '{}',
    label_names            text[] NOT NULL DEFAULT '{}',
    recipe                 text NOT NULL,
    params                 jsonb NOT NULL DEFAULT '{}',
    seed                   bigint NOT NULL,
    retrain                boolean NOT NULL DEFAULT false,
    -- the training this one retrains on a newer version
    retrain_of             uuid REFERENCES trainings (id),
    enable                 boolean NOT NULL DEFAULT false,
    model_name             text NOT NULL,
    model_version          text,
    model_id               uuid REFERENCES models (id) ON DELETE SET NULL,
    state                  training_state NOT NULL DEFAULT 'queued',
    attempt                integer NOT NULL DEFAULT 0,
    max_attempts           integer NOT NULL,
    lease_hash             bytea,
    lease_expires_at       timestamptz,
    data_key_hash          bytea,
    trainer                text,
    step                   integer NOT NULL DEFAULT 0,
    steps                  integer NOT NULL DEFAULT 0,
    epoch                  integer,
    loss                   double precision,
    artifact_key           text,
    artifact_sha256        bytea,
    artifact_size          bigint,
    artifact_format        text,
    artifact_layout        text,
    artifact_labels        text[],
    evaluation_id          uuid REFERENCES evaluations (id) ON DELETE SET NULL,
    baseline_evaluation_id uuid REFERENCES evaluations (id) ON DELETE SET NULL,
    error                  text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    started_at             timestamptz,
    finished_at            timestamptz
);
CREATE INDEX trainings_queue_idx ON trainings (created_at) WHERE state = 'queued';
CREATE INDEX trainings_user_idx ON trainings (created_by, created_at DESC);
CREATE INDEX trainings_retrain_idx ON trainings (dataset_id) WHERE retrain;
CREATE UNIQUE INDEX trainings_model_version_idx ON trainings (model_name, model_version);

-- Every progress report, for the loss curve.
CREATE TABLE training_progress (
    training_id uuid NOT NULL REFERENCES trainings (id) ON DELETE CASCADE,
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    attempt     integer NOT NULL,
    step        integer NOT NULL,
    steps       integer NOT NULL,
    epoch       integer,
    loss        double precision,
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (training_id, seq)
);

-- +goose Down
DROP TABLE training_progress;
DROP TABLE trainings;
DROP TYPE training_state;
ALTER TABLE api_tokens DROP COLUMN trainer;
