-- +goose Up
-- Exports in the YOLO and VOC layouts, and COCO with polygon masks: the
-- mask format is part of what makes two exports the same subset.
ALTER TABLE dataset_exports DROP CONSTRAINT dataset_exports_format_check;
ALTER TABLE dataset_exports ADD CONSTRAINT dataset_exports_format_check CHECK (format IN ('coco', 'png', 'yolo', 'voc'));
ALTER TABLE dataset_exports ADD COLUMN mask_format text NOT NULL DEFAULT 'rle' CHECK (mask_format IN ('rle', 'polygon'));
ALTER TABLE dataset_exports DROP CONSTRAINT dataset_exports_version_id_format_splits_label_ids_key;
ALTER TABLE dataset_exports ADD CONSTRAINT dataset_exports_subset_key UNIQUE (version_id, format, mask_format, splits, label_ids);

-- +goose Down
DELETE FROM dataset_exports WHERE format NOT IN ('coco', 'png') OR mask_format <> 'rle';
ALTER TABLE dataset_exports DROP CONSTRAINT dataset_exports_subset_key;
ALTER TABLE dataset_exports DROP COLUMN mask_format;
ALTER TABLE dataset_exports ADD CONSTRAINT dataset_exports_version_id_format_splits_label_ids_key UNIQUE (version_id, format, splits, label_ids);
ALTER TABLE dataset_exports DROP CONSTRAINT dataset_exports_format_check;
ALTER TABLE dataset_exports ADD CONSTRAINT dataset_exports_format_check CHECK (format IN ('coco', 'png'));
