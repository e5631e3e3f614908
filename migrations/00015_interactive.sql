-- +goose Up

-- Models of three tasks (docs/interactive.md): segmentation proposes the
-- masks of an image and is the only task run when an image is accepted;
-- interactive answers a reviewer's prompt (clicks, a box) with one mask;
-- embed computes the image embedding a two-stage interactive model's
-- decoder takes, once per image and model version.
ALTER TABLE models DROP CONSTRAINT models_task_check;
ALTER TABLE models ADD CONSTRAINT models_task_check CHECK (task IN ('segmentation', 'interactive', 'embed'));

-- +goose Down
DELETE FROM models WHERE task <> 'segmentation';
ALTER TABLE models DROP CONSTRAINT models_task_check;
ALTER TABLE models ADD CONSTRAINT models_task_check CHECK (task = 'segmentation');
