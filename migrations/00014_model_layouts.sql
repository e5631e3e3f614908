-- +goose Up

-- How the hub reads a model (PROTOCOL.md, "Stock layouts"; docs/layouts.md):
-- imagehub is the convention; yolo-seg and maskrcnn are stock ONNX exports
-- whose input the hub makes and whose outputs it decodes, with the class
-- names in labels (output order; maskrcnn's label l is labels[l]) and these
-- thresholds. input_size is the side the hub sends (yolo-seg's S as the
-- model's metadata fixes it, maskrcnn's long side); input_name the model's
-- image input, as the last check found it ('' = "images").
ALTER TABLE models
    ADD COLUMN layout text NOT NULL DEFAULT 'imagehub' CHECK (layout IN ('imagehub', 'yolo-seg', 'maskrcnn')),
    ADD COLUMN labels text[] NOT NULL DEFAULT '{}',
    ADD COLUMN score_threshold real NOT NULL DEFAULT 0.25 CHECK (score_threshold > 0 AND score_threshold < 1),
    ADD COLUMN iou_threshold real NOT NULL DEFAULT 0.45 CHECK (iou_threshold > 0 AND iou_threshold < 1),
    ADD COLUMN mask_threshold real NOT NULL DEFAULT 0.5 CHECK (mask_threshold > 0 AND mask_threshold < 1),
    ADD COLUMN max_instances integer NOT NULL DEFAULT 100 CHECK (max_instances BETWEEN 1 AND 1000),
    ADD COLUMN input_size integer NOT NULL DEFAULT 0 CHECK (input_size = 0 OR input_size BETWEEN 32 AND 4096),
    ADD COLUMN input_name text NOT NULL DEFAULT '',
    -- Request headers sent to every endpoint of the model (a bearer token,
    -- an API key, a Host for an ingress): {name: value}. Secrets: no page,
    -- API answer, metric or log shows the values, only the names.
    ADD COLUMN headers jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(headers) = 'object');

-- +goose Down
ALTER TABLE models
    DROP COLUMN headers,
    DROP COLUMN input_name,
    DROP COLUMN input_size,
    DROP COLUMN max_instances,
    DROP COLUMN mask_threshold,
    DROP COLUMN iou_threshold,
    DROP COLUMN score_threshold,
    DROP COLUMN labels,
    DROP COLUMN layout;
