-- +goose Up

-- What a model calls an instance it cannot name (the built-in worker, given
-- no label hints). Reviewers relabel it.
INSERT INTO labels (name, display_name) VALUES ('object', 'Object (unnamed)')
ON CONFLICT (name) DO NOTHING;

-- A model version served by one or more inference endpoints (PROTOCOL.md).
-- binary and label_hints are what the last check found: the server lists
-- binary_tensor_data, and the model takes LABEL_HINTS. problems lists what
-- did not fit the convention at that check (empty when it fitted).
CREATE TABLE models (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$'),
    version     text NOT NULL CHECK (version ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    task        text NOT NULL DEFAULT 'segmentation' CHECK (task = 'segmentation'),
    timeout_ms  integer NOT NULL DEFAULT 60000 CHECK (timeout_ms BETWEEN 100 AND 600000),
    enabled     boolean NOT NULL DEFAULT true,
    binary_data boolean NOT NULL DEFAULT false,
    label_hints boolean NOT NULL DEFAULT true,
    problems    text[] NOT NULL DEFAULT '{}',
    checked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (name, version)
);

-- One server of a model. failures counts consecutive retryable failures;
-- past a threshold the endpoint cools off until cool_until.
CREATE TABLE model_endpoints (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    model_id   uuid NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    base_url   text NOT NULL CHECK (base_url ~ '^https?://'),
    capacity   integer NOT NULL CHECK (capacity BETWEEN 1 AND 1024),
    failures   integer NOT NULL DEFAULT 0,
    cool_until timestamptz,
    last_error text,
    last_ok_at timestamptz,
    UNIQUE (model_id, base_url)
);

-- One row per request slot of an endpoint (capacity rows). A dispatcher in
-- any process takes a free slot with FOR UPDATE SKIP LOCKED and gives it
-- back when the answer is in; held_until bounds a slot held by a process
-- that died, so capacity is never lost for longer than a request's timeout.
CREATE TABLE endpoint_slots (
    endpoint_id uuid NOT NULL REFERENCES model_endpoints (id) ON DELETE CASCADE,
    slot        integer NOT NULL,
    held_until  timestamptz,
    holder      uuid,
    PRIMARY KEY (endpoint_id, slot)
);

CREATE TYPE inference_state AS ENUM ('queued', 'running', 'succeeded', 'failed');

-- The inference of one image by one model version: what the image page
-- shows, and what decides when an image is ready for review.
CREATE TABLE inference_runs (
    image_id   uuid NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    model_id   uuid NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    state      inference_state NOT NULL DEFAULT 'queued',
    attempt    integer NOT NULL DEFAULT 0,
    error_kind text,
    last_error text,
    instances  integer,
    latency_ms integer,
    endpoint   text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (image_id, model_id)
);
CREATE INDEX inference_runs_model_idx ON inference_runs (model_id, state);

-- What a model proposed for an image. Rows are written once, in the
-- transaction that completes the inference, and never edited: reviewers'
-- corrections live beside them.
CREATE TABLE proposals (
    id         uuid PRIMARY KEY,
    image_id   uuid NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    model_id   uuid NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    rank       integer NOT NULL,
    label_id   uuid NOT NULL REFERENCES labels (id),
    score      real NOT NULL CHECK (score >= 0 AND score <= 1),
    bbox       integer[] NOT NULL CHECK (cardinality(bbox) = 4),
    area       integer NOT NULL CHECK (area > 0),
    height     integer NOT NULL,
    width      integer NOT NULL,
    counts     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (image_id, model_id, rank)
);
CREATE INDEX proposals_label_idx ON proposals (label_id);

-- +goose Down
DROP TABLE proposals;
DROP TABLE inference_runs;
DROP TYPE inference_state;
DROP TABLE endpoint_slots;
DROP TABLE model_endpoints;
DROP TABLE models;
