-- +goose Up

-- A Segment Anything pair served with its own tensors (docs/interactive.md,
-- "Triton"): its embed and interactive models are registered with layout
-- 'sam', and the hub makes and reads the two files' tensors itself.
ALTER TABLE models DROP CONSTRAINT models_layout_check,
    ADD CONSTRAINT models_layout_check CHECK (layout IN ('imagehub', 'yolo-seg', 'maskrcnn', 'label-studio', 'sam'));

-- +goose Down
DELETE FROM models WHERE layout = 'sam';
ALTER TABLE models DROP CONSTRAINT models_layout_check,
    ADD CONSTRAINT models_layout_check CHECK (layout IN ('imagehub', 'yolo-seg', 'maskrcnn', 'label-studio'));
