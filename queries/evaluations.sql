-- name: EvaluationInsert :one
INSERT INTO evaluations (model_id, dataset_id, version_id, version_number, split, images, created_by)
VALUES (@model_id, @dataset_id, @version_id, @version_number, @split, @images, @created_by)
RETURNING *;

-- name: EvaluationSetJob :exec
UPDATE evaluations SET job_id = @job_id WHERE id = @id;

-- name: EvaluationGet :one
SELECT sqlc.embed(e), m.name AS model_name, m.version AS model_version
FROM evaluations e JOIN models m ON m.id = e.model_id
WHERE e.id = @id;

-- name: EvaluationList :many
-- Newest first, keyset paged; dataset and version narrow it when given.
SELECT sqlc.embed(e), m.name AS model_name, m.version AS model_version
FROM evaluations e JOIN models m ON m.id = e.model_id
WHERE (sqlc.narg(dataset_id)::uuid IS NULL OR e.dataset_id = sqlc.narg(dataset_id)::uuid)
  AND (sqlc.narg(version_number)::int IS NULL OR e.version_number = sqlc.narg(version_number)::int)
  AND (sqlc.narg(before_at)::timestamptz IS NULL
       OR (e.created_at, e.id) < (sqlc.narg(before_at)::timestamptz, sqlc.narg(before_id)::uuid))
ORDER BY e.created_at DESC, e.id DESC
LIMIT @max_rows;

-- name: EvaluationSplitImages :one
SELECT count(*)::int FROM dataset_version_images
WHERE version_id = @version_id AND split = @split;

-- name: EvaluationImagesToInfer :many
-- The next images of the split, in manifest order after @after, that the
-- model has no finished inference of (and that still exist).
SELECT m.ordinal, m.image_id
FROM dataset_version_images m JOIN images i ON i.id = m.image_id
WHERE m.version_id = @version_id AND m.split = @split AND m.ordinal > @after
  AND i.sha256 IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM inference_runs r
                  WHERE r.image_id = m.image_id AND r.model_id = @model_id AND r.state = 'succeeded')
ORDER BY m.ordinal
LIMIT @batch;

-- name: EvaluationRunsQueue :exec
-- Runs for an evaluation: new ones queued, failed ones queued again (an
-- evaluation asks once more), pending and succeeded ones left alone.
INSERT INTO inference_runs (image_id, model_id)
SELECT i, @model_id FROM unnest(@image_ids::uuid[]) AS i
ON CONFLICT (image_id, model_id) DO UPDATE SET state = 'queued', attempt = 0, error_kind = NULL,
    last_error = NULL, updated_at = now()
WHERE inference_runs.state = 'failed';

-- name: EvaluationQueued :exec
UPDATE evaluations SET queued = queued + @added, queued_through = @through
WHERE id = @id AND state = 'queued';

-- name: EvaluationSetState :exec
UPDATE evaluations SET state = @state WHERE id = @id AND state NOT IN ('done', 'failed');

-- name: EvaluationFail :execrows
UPDATE evaluations SET state = 'failed', error = @error, finished_at = now()
WHERE id = @id AND state NOT IN ('done', 'failed');

-- name: EvaluationGroundTruth :many
-- The split's annotations, in manifest order and in each image's order.
SELECT m.ordinal, a.label_id, a.height, a.width, a.counts, a.area
FROM dataset_version_images m
CROSS JOIN LATERAL unnest(m.annotation_ids) WITH ORDINALITY AS u(id, k)
JOIN annotations a ON a.id = u.id
WHERE m.version_id = @version_id AND m.split = @split
ORDER BY m.ordinal, u.k;

-- name: EvaluationDetections :many
-- The model's proposals for the split's images, in manifest order and in
-- the order the model gave them.
SELECT m.ordinal, p.label_id, p.height, p.width, p.counts, p.score
FROM dataset_version_images m
JOIN proposals p ON p.image_id = m.image_id AND p.model_id = @model_id
WHERE m.version_id = @version_id AND m.split = @split
ORDER BY m.ordinal, p.rank;

-- name: EvaluationSplitOrdinals :many
SELECT ordinal FROM dataset_version_images
WHERE version_id = @version_id AND split = @split ORDER BY ordinal;

-- name: EvaluationFailedImages :one
-- Images of the split whose run of the model ended without an answer.
SELECT count(*)::int FROM dataset_version_images m
JOIN inference_runs r ON r.image_id = m.image_id AND r.model_id = @model_id
WHERE m.version_id = @version_id AND m.split = @split AND r.state = 'failed';

-- name: EvaluationInferred :one
-- Images of the split the model has an answer for.
SELECT count(*)::int FROM dataset_version_images m
JOIN inference_runs r ON r.image_id = m.image_id AND r.model_id = @model_id
WHERE m.version_id = @version_id AND m.split = @split AND r.state = 'succeeded';

-- name: EvaluationFinish :execrows
UPDATE evaluations SET state = 'done', failed_images = @failed_images, detections = @detections,
    ap = @ap, ap50 = @ap50, ap75 = @ap75, ap_small = @ap_small, ap_medium = @ap_medium, ap_large = @ap_large,
    ar1 = @ar1, ar10 = @ar10, ar100 = @ar100, ar_small = @ar_small, ar_medium = @ar_medium, ar_large = @ar_large,
    finished_at = now()
WHERE id = @id AND state = 'scoring';

-- name: EvaluationClassesInsert :exec
INSERT INTO evaluation_classes (evaluation_id, label_id, category_id, name, ap, ap50, ap75, instances, detections)
SELECT @evaluation_id, unnest(@label_ids::uuid[]), unnest(@category_ids::int[]), unnest(@names::text[]),
    unnest(@aps::float8[]), unnest(@ap50s::float8[]), unnest(@ap75s::float8[]),
    unnest(@instances::int[]), unnest(@detections::int[]);

-- name: EvaluationClasses :many
SELECT * FROM evaluation_classes WHERE evaluation_id = @evaluation_id ORDER BY name;

-- name: EvaluationModelNameExists :one
SELECT EXISTS (SELECT 1 FROM models WHERE name = @name);

-- name: EvaluationsToStartForVersion :many
-- Enabled models without an evaluation on the version's split yet, for the
-- evaluations a newly published version starts.
SELECT m.id FROM models m
WHERE m.enabled AND m.task = 'segmentation' AND NOT EXISTS (
    SELECT 1 FROM evaluations e WHERE e.model_id = m.id AND e.version_id = @version_id AND e.split = @split)
ORDER BY m.name, m.version;
