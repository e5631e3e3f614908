-- +goose Up

-- Label Studio ML backends as model sources (docs/layouts.md, "label-studio").
-- label_tag is the labeling config's control, BrushLabels or PolygonLabels
-- ('' for other layouts).
ALTER TABLE models DROP CONSTRAINT models_layout_check,
    ADD CONSTRAINT models_layout_check CHECK (layout IN ('imagehub', 'yolo-seg', 'maskrcnn', 'label-studio')),
    ADD COLUMN label_tag text NOT NULL DEFAULT ''
        CHECK (label_tag IN ('', 'BrushLabels', 'PolygonLabels'));

-- The version a model reported for a run (Label Studio's model_version),
-- beside the registered one: provenance of the run's proposals.
ALTER TABLE inference_runs ADD COLUMN reported_version text;

-- Secrets the hub makes for itself, shared by every process of one
-- deployment through the database: url_signing signs the short-lived image
-- URLs that an ML backend fetches.
CREATE TABLE hub_secrets (
    name       text PRIMARY KEY,
    secret     bytea NOT NULL CHECK (length(secret) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE hub_secrets;
ALTER TABLE inference_runs DROP COLUMN reported_version;
DELETE FROM models WHERE layout = 'label-studio';
ALTER TABLE models DROP COLUMN label_tag, DROP CONSTRAINT models_layout_check,
    ADD CONSTRAINT models_layout_check CHECK (layout IN ('imagehub', 'yolo-seg', 'maskrcnn'));
