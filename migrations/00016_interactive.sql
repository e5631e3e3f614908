-- +goose Up

-- Models of three tasks (docs/interactive.md): segmentation proposes the
-- masks of an image and is the only task run when an image is accepted;
-- interactive answers a reviewer's prompt (clicks, a box) with one mask;
-- embed computes the image embedding a two-stage interactive model's
-- decoder takes, once per image and model version.
ALTER TABLE models DROP CONSTRAINT models_task_check;
ALTER TABLE models ADD CONSTRAINT models_task_check CHECK (task IN ('segmentation', 'interactive', 'embed'));
-- A two-stage interactive model (its metadata takes EMBEDDING, not IMAGE)
-- names the embed model whose output it takes; the hub keeps that output
-- per image and embed model in the blob store (embeddings/{model id}/{sha}).
ALTER TABLE models ADD COLUMN embed_model_id uuid REFERENCES models (id) ON DELETE SET NULL;

-- +goose Down
ALTER TABLE models DROP COLUMN embed_model_id;
DELETE FROM models WHERE task <> 'segmentation';
ALTER TABLE models DROP CONSTRAINT models_task_check;
ALTER TABLE models ADD CONSTRAINT models_task_check CHECK (task = 'segmentation');
