-- name: ImportedAnnotationInsert :execrows
-- Stages an imported annotation; nothing when this source's annotation of
-- the image was imported before.
INSERT INTO imported_annotations (id, image_id, source, original_id, importer_id, label_id, height, width, counts, model_id)
VALUES (@id, @image_id, @source, @original_id, @importer_id, @label_id, @height, @width, @counts, sqlc.narg(model_id))
ON CONFLICT (source, original_id, image_id) DO NOTHING;

-- name: ImportedPendingOfImage :many
-- The imported annotations of an image not yet applied, in the order they
-- were imported (ids are UUIDv7, made in that order).
SELECT ia.*, l.name AS label_name FROM imported_annotations ia
JOIN labels l ON l.id = ia.label_id
WHERE ia.image_id = @image_id AND ia.applied_at IS NULL AND ia.skipped IS NULL AND ia.ready
ORDER BY ia.id;

-- name: ImportedSkip :exec
UPDATE imported_annotations SET skipped = @skipped WHERE id = ANY(@ids::uuid[]);

-- name: ImportedMarkApplied :exec
UPDATE imported_annotations SET applied_at = now() WHERE id = ANY(@ids::uuid[]);

-- name: ReviewFirstImported :one
-- The image's first review, done by the importer (the annotations it
-- brings are its first review).
INSERT INTO review_items (image_id, kind, done_by, done_at)
VALUES (@image_id, 'first', @done_by, now())
ON CONFLICT (image_id, kind) DO UPDATE SET done_by = EXCLUDED.done_by, done_at = now(), leased_by = NULL, lease_expires_at = NULL
    WHERE review_items.done_at IS NULL
RETURNING id;

-- name: AnnotationImportedInsert :exec
INSERT INTO annotations (id, image_id, review_item_id, label_id, height, width, counts, bbox, area, content_sha256, author_id, imported_id)
VALUES (@id, @image_id, @review_item_id, @label_id, @height, @width, @counts, @bbox::int[], @area, @content_sha256, @author_id, @imported_id);

-- name: ImageMarkImported :exec
UPDATE images SET status = 'reviewed', reason = NULL, updated_at = now()
WHERE id = @id AND status IN ('awaiting_inference', 'awaiting_review');

-- name: AnnotationProvenance :many
-- Where an image's current imported annotations came from.
SELECT a.id, ia.source, ia.original_id, ia.importer_id FROM annotations a
JOIN imported_annotations ia ON ia.id = a.imported_id
WHERE a.image_id = @image_id AND a.replaced_at IS NULL
ORDER BY a.id;

-- name: ImportedReady :exec
-- The end of an import run: its staged annotations may be applied.
UPDATE imported_annotations SET ready = true WHERE source = @source AND image_id = ANY(@image_ids::uuid[]) AND NOT ready;

-- name: ImportedSkipPendingOfImage :execrows
UPDATE imported_annotations SET skipped = @skipped
WHERE image_id = @image_id AND applied_at IS NULL AND skipped IS NULL AND ready;

-- name: ModelEnsureImported :one
-- The model an import's proposals belong to: named for its source, never
-- enabled (nothing dispatches to it).
INSERT INTO models (name, version, enabled) VALUES (@name, 'imported', false)
ON CONFLICT (name, version) DO UPDATE SET updated_at = models.updated_at
RETURNING id;

-- name: ProposalImportedInsert :exec
INSERT INTO proposals (id, image_id, model_id, rank, label_id, score, bbox, area, height, width, counts)
VALUES (@id, @image_id, @model_id,
        (SELECT coalesce(max(rank), 0) + 1 FROM proposals p WHERE p.image_id = @image_id AND p.model_id = @model_id),
        @label_id, 1, @bbox::int[], @area, @height, @width, @counts);

-- name: InferenceRunImported :exec
-- The imported model's run on an image, done: ImageSettle counts it like
-- any other.
INSERT INTO inference_runs (image_id, model_id, state, instances)
VALUES (@image_id, @model_id, 'succeeded', @instances)
ON CONFLICT (image_id, model_id) DO UPDATE SET instances = inference_runs.instances + EXCLUDED.instances, updated_at = now();
