-- +goose Up
-- Exports in the YOLO and VOC layouts, and COCO with polygon masks: the
-- mask format is part of what makes two exports the same subset.
ALTER TABLE dataset_exports DROP CONSTRAINT dataset_exports_format_check;
ALTER TABLE dataset_exports ADD CONSTRAINT dataset_exports_format_check CHECK (format IN ('coco', 'png', 'yolo', 'voc'));
ALTER TABLE dataset_exports ADD COLUMN mask_format text NOT NULL DEFAULT 'rle' CHECK (mask_format IN ('rle', 'polygon'));
ALTER TABLE dataset_exports DROP CONSTRAINT dataset_exports_version_id_format_splits_label_ids_key;
ALTER TABLE dataset_exports ADD CONSTRAINT dataset_exports_subset_key UNIQUE (version_id, format, mask_format, splits, label_ids);

-- Annotations brought in from another tool's COCO file (imagehub import
-- --coco): staged here when the image is taken in, and applied as its
-- first review once ingest accepts it (or at once when it already has
-- been). A row is also the annotation's provenance: source file, importer
-- and the id it had there. One row per source, original id and image, so
-- a second run adds nothing.
CREATE TABLE imported_annotations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    image_id    uuid NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    source      text NOT NULL,
    original_id text NOT NULL,
    importer_id uuid NOT NULL REFERENCES users (id),
    label_id    uuid NOT NULL REFERENCES labels (id),
    height      integer NOT NULL,
    width       integer NOT NULL,
    counts      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    applied_at  timestamptz,
    skipped     text,
    -- with --as-proposals: the annotation becomes a proposal of this
    -- model (named for the source, never enabled) instead
    model_id    uuid REFERENCES models (id) ON DELETE CASCADE,
    -- set once the importer has staged everything of the run, so that
    -- ingest never applies half of an image's annotations
    ready       boolean NOT NULL DEFAULT false,
    UNIQUE (source, original_id, image_id)
);
CREATE INDEX imported_annotations_pending ON imported_annotations (image_id) WHERE applied_at IS NULL AND skipped IS NULL AND ready;
ALTER TABLE annotations ADD COLUMN imported_id uuid REFERENCES imported_annotations (id);

-- +goose Down
ALTER TABLE annotations DROP COLUMN imported_id;
DROP TABLE imported_annotations;
DELETE FROM dataset_exports WHERE format NOT IN ('coco', 'png') OR mask_format <> 'rle';
ALTER TABLE dataset_exports DROP CONSTRAINT dataset_exports_subset_key;
ALTER TABLE dataset_exports DROP COLUMN mask_format;
ALTER TABLE dataset_exports ADD CONSTRAINT dataset_exports_version_id_format_splits_label_ids_key UNIQUE (version_id, format, splits, label_ids);
ALTER TABLE dataset_exports DROP CONSTRAINT dataset_exports_format_check;
ALTER TABLE dataset_exports ADD CONSTRAINT dataset_exports_format_check CHECK (format IN ('coco', 'png'));
