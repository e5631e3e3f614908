-- +goose Up

CREATE TYPE evaluation_state AS ENUM ('queued', 'inferring', 'scoring', 'done', 'failed');

-- The evaluation of one model version on one split of a published dataset
-- version (package evaluation): its job queues inference of the split's
-- images the model has not run on (queued counts them, queued_through is
-- the manifest ordinal it has reached, so a retried job goes on where it
-- stopped), waits for them, then scores the model's proposals against the
-- version's annotations with COCO's metrics (package cocoeval). The figures
-- are written once, when the state becomes done; -1 means no ground truth.
-- Metrics are double precision: they must equal pycocotools' to 1e-6.
CREATE TABLE evaluations (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    model_id       uuid NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    dataset_id     uuid NOT NULL REFERENCES datasets (id),
    version_id     uuid NOT NULL REFERENCES dataset_versions (id),
    version_number integer NOT NULL,
    split          dataset_split NOT NULL,
    state          evaluation_state NOT NULL DEFAULT 'queued',
    images         integer NOT NULL DEFAULT 0,
    queued         integer NOT NULL DEFAULT 0,
    queued_through integer NOT NULL DEFAULT 0,
    -- images the model could not be run on: scored as having no detections
    failed_images  integer NOT NULL DEFAULT 0,
    detections     integer NOT NULL DEFAULT 0,
    ap             double precision,
    ap50           double precision,
    ap75           double precision,
    ap_small       double precision,
    ap_medium      double precision,
    ap_large       double precision,
    ar1            double precision,
    ar10           double precision,
    ar100          double precision,
    ar_small       double precision,
    ar_medium      double precision,
    ar_large       double precision,
    error          text,
    job_id         bigint,
    created_by     uuid NOT NULL REFERENCES users (id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);
CREATE INDEX evaluations_created_idx ON evaluations (created_at DESC, id DESC);
CREATE INDEX evaluations_version_idx ON evaluations (dataset_id, version_number, created_at DESC, id DESC);
CREATE INDEX evaluations_model_idx ON evaluations (model_id);

-- Per class figures of an evaluation (area all, maxDets 100), under the
-- name the version gave the label.
CREATE TABLE evaluation_classes (
    evaluation_id uuid NOT NULL REFERENCES evaluations (id) ON DELETE CASCADE,
    label_id      uuid NOT NULL REFERENCES labels (id),
    category_id   integer NOT NULL,
    name          text NOT NULL,
    ap            double precision NOT NULL,
    ap50          double precision NOT NULL,
    ap75          double precision NOT NULL,
    instances     integer NOT NULL,
    detections    integer NOT NULL,
    PRIMARY KEY (evaluation_id, label_id)
);

-- +goose Down
DROP TABLE evaluation_classes;
DROP TABLE evaluations;
DROP TYPE evaluation_state;
