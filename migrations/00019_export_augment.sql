-- +goose Up
-- Augmented prepared exports: the augment request (augment.Spec.String(),
-- empty for none) is part of what makes two exports the same, as the
-- same request gives the same bytes.
ALTER TABLE dataset_exports ADD COLUMN augment text NOT NULL DEFAULT '';
ALTER TABLE dataset_exports DROP CONSTRAINT dataset_exports_subset_key;
ALTER TABLE dataset_exports ADD CONSTRAINT dataset_exports_subset_key UNIQUE (version_id, format, mask_format, splits, label_ids, augment);

-- +goose Down
DELETE FROM dataset_exports WHERE augment <> '';
ALTER TABLE dataset_exports DROP CONSTRAINT dataset_exports_subset_key;
ALTER TABLE dataset_exports DROP COLUMN augment;
ALTER TABLE dataset_exports ADD CONSTRAINT dataset_exports_subset_key UNIQUE (version_id, format, mask_format, splits, label_ids);
