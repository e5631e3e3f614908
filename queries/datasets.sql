-- name: DatasetInsert :one
INSERT INTO datasets (name, description, label_ids, campaign_ids, min_sharpness, min_short_side, since, until,
    train_ppm, val_ppm, test_ppm, seed, created_by)
VALUES (@name, @description, @label_ids, @campaign_ids, sqlc.narg(min_sharpness), sqlc.narg(min_short_side),
    sqlc.narg(since), sqlc.narg(until), @train_ppm, @val_ppm, @test_ppm, @seed, @created_by)
RETURNING *;

-- name: DatasetGet :one
SELECT * FROM datasets WHERE id = @id;

-- name: DatasetGetForUpdate :one
-- Serialises publishing: the next version number is read under this lock.
SELECT * FROM datasets WHERE id = @id FOR UPDATE;

-- name: DatasetList :many
-- Every dataset with its latest published version (0 when none).
SELECT sqlc.embed(d),
    coalesce((SELECT max(v.number) FROM dataset_versions v
              WHERE v.dataset_id = d.id AND v.state = 'published'), 0)::int AS latest_version,
    (SELECT count(*) FROM dataset_versions v WHERE v.dataset_id = d.id)::int AS versions
FROM datasets d
ORDER BY lower(d.name), d.id;

-- name: DatasetCampaignsExist :one
-- How many of the given campaigns exist.
SELECT count(*)::int FROM campaigns WHERE id = ANY(@ids::uuid[]);

-- name: DatasetLabelsByIDs :many
SELECT * FROM labels WHERE id = ANY(@ids::uuid[]) ORDER BY name;

-- name: VersionInsert :one
-- The next version of a dataset, waiting for its publish job. The caller
-- holds the dataset's row lock (DatasetGetForUpdate).
INSERT INTO dataset_versions (dataset_id, number, filter, created_by)
SELECT sqlc.arg(dataset_id)::uuid, coalesce(max(v.number), 0) + 1, sqlc.arg(filter)::jsonb, sqlc.arg(created_by)::uuid
FROM dataset_versions v WHERE v.dataset_id = sqlc.arg(dataset_id)::uuid
RETURNING *;

-- name: VersionSetJob :exec
UPDATE dataset_versions SET job_id = @job_id WHERE id = @id;

-- name: VersionGet :one
SELECT * FROM dataset_versions WHERE dataset_id = @dataset_id AND number = @number;

-- name: VersionGetByID :one
SELECT * FROM dataset_versions WHERE id = @id;

-- name: VersionList :many
SELECT * FROM dataset_versions WHERE dataset_id = @dataset_id ORDER BY number DESC;

-- name: VersionForPublish :one
-- The version and its dataset's filter, for the publish job, which holds
-- an advisory lock on the version rather than its row (progress updates
-- write the row from another connection while the job's transaction runs).
SELECT sqlc.embed(v), sqlc.embed(d)
FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id
WHERE v.id = @id;

-- name: VersionPrevious :one
-- The latest version published before this one, for the diff.
SELECT * FROM dataset_versions
WHERE dataset_id = @dataset_id AND number < @number AND state = 'published'
ORDER BY number DESC LIMIT 1;

-- name: VersionProgress :exec
UPDATE dataset_versions SET step = @step, progress = @progress WHERE id = @id AND state = 'publishing';

-- name: VersionManifestInsert :execrows
-- Writes a version's manifest in one statement: the reviewed images the
-- dataset's filter takes (its fields are the parameters, so that the
-- planner sees an empty filter as one), each with its current first-review
-- annotations and its split, in image id order.
--
-- The split is a hash of the dataset's seed and the sha256 of the root of
-- the image's near-duplicate group (the image itself when it has no
-- near_duplicate_of), so near-duplicates share a split and an image keeps
-- its split in every version; dataset.Bucket computes the same in Go.
--
-- Why it is shaped so: a million images with two million annotations must
-- publish in well under 30 s. Annotations are grouped per image from a
-- sorted subquery (one sort, rather than one per image for ORDER BY inside
-- the aggregates), and the manifest is ordered by image id, the order that
-- grouping and the merge join with images produce anyway, so the window
-- that numbers the rows needs no sort of its own. A second review's
-- annotations are left out with an anti-join on the few second-review
-- items instead of a join with every first one. The root of a
-- near-duplicate group is looked up only for the images that have one.
INSERT INTO dataset_version_images (version_id, ordinal, sha256, image_id, split, width, height, content_type,
    byte_size, first_annotation, annotation_ids, annotation_labels, digest)
SELECT sqlc.arg(version_id)::uuid, row_number() OVER w, r.sha256, r.id,
    CASE WHEN r.bucket < sqlc.arg(train_ppm)::int THEN 'train'::dataset_split
         WHEN r.bucket < sqlc.arg(train_ppm)::int + sqlc.arg(val_ppm)::int THEN 'val'::dataset_split
         ELSE 'test'::dataset_split END,
    r.width, r.height, r.content_type, r.byte_size, (sum(r.n) OVER w - r.n)::int,
    r.annotation_ids, r.annotation_labels, r.digest
FROM (
    SELECT i.id, i.sha256, i.width, i.height, i.content_type, i.byte_size,
        coalesce(ann.ids, '{}') AS annotation_ids, coalesce(ann.labels, '{}') AS annotation_labels,
        coalesce(ann.digest, sha256(''::bytea)) AS digest, coalesce(ann.n, 0) AS n,
        (('x' || encode(substring(sha256(sqlc.arg(seed)::bytea || coalesce(
            CASE WHEN i.near_duplicate_of IS NOT NULL THEN near_duplicate_root(i.id) END, i.sha256
        )) FROM 1 FOR 8), 'hex'))::bit(64)::bigint & 9223372036854775807) % 1000000 AS bucket
    FROM images i
    LEFT JOIN (
        SELECT s.image_id, array_agg(s.id) AS ids, array_agg(s.label_id) AS labels,
            sha256(string_agg(s.content_sha256, ''::bytea)) AS digest, count(*)::int AS n
        FROM (
            SELECT a.image_id, a.id, a.label_id, a.content_sha256
            FROM annotations a
            WHERE a.replaced_at IS NULL
              AND NOT EXISTS (SELECT 1 FROM review_items ri WHERE ri.id = a.review_item_id AND ri.kind <> 'first')
              AND (cardinality(sqlc.arg(label_ids)::uuid[]) = 0 OR a.label_id = ANY(sqlc.arg(label_ids)::uuid[]))
            ORDER BY a.image_id, a.created_at, a.id
        ) s
        GROUP BY s.image_id
    ) ann ON ann.image_id = i.id
    WHERE i.status = 'reviewed' AND i.sha256 IS NOT NULL
      -- An image whose blind second review is open waits for the next
      -- version: premium users may review, and must not read the first
      -- review from a download.
      AND NOT EXISTS (SELECT 1 FROM review_items s WHERE s.image_id = i.id AND s.kind = 'second' AND s.done_at IS NULL)
      AND (cardinality(sqlc.arg(label_ids)::uuid[]) = 0 OR ann.image_id IS NOT NULL)
      AND (cardinality(sqlc.arg(campaign_ids)::uuid[]) = 0 OR i.campaign_id = ANY(sqlc.arg(campaign_ids)::uuid[]))
      AND (sqlc.narg(since)::timestamptz IS NULL OR i.created_at >= sqlc.narg(since)::timestamptz)
      AND (sqlc.narg(until)::timestamptz IS NULL OR i.created_at < sqlc.narg(until)::timestamptz)
      AND (sqlc.narg(min_sharpness)::float8 IS NULL OR (i.quality->>'sharpness')::float8 >= sqlc.narg(min_sharpness)::float8)
      AND (sqlc.narg(min_short_side)::int IS NULL OR least(i.width, i.height) >= sqlc.narg(min_short_side)::int)
) r
WINDOW w AS (ORDER BY r.id ROWS UNBOUNDED PRECEDING);

-- name: VersionLabelsInsert :exec
-- The version's categories, with names as they are now, and its class
-- histogram in one pass over the manifest: per split, the instances of
-- each label and the images with at least one (an image counts once, at
-- its first instance of the label). Labels the dataset has no category id
-- for yet get the next ids, in name order, and keep them ever after; the
-- filter's labels are categories even with no instance. One version of a
-- dataset is published at a time, so max() is not raced.
WITH hist AS (
    SELECT u.label_id,
        count(*) FILTER (WHERE m.split = 'train')::int AS train_instances,
        count(*) FILTER (WHERE m.split = 'val')::int AS val_instances,
        count(*) FILTER (WHERE m.split = 'test')::int AS test_instances,
        count(*) FILTER (WHERE m.split = 'train' AND array_position(m.annotation_labels, u.label_id) = u.k)::int AS train_images,
        count(*) FILTER (WHERE m.split = 'val' AND array_position(m.annotation_labels, u.label_id) = u.k)::int AS val_images,
        count(*) FILTER (WHERE m.split = 'test' AND array_position(m.annotation_labels, u.label_id) = u.k)::int AS test_images
    FROM dataset_version_images m CROSS JOIN LATERAL unnest(m.annotation_labels) WITH ORDINALITY AS u(label_id, k)
    WHERE m.version_id = sqlc.arg(version_id)::uuid
    GROUP BY u.label_id
), wanted AS (
    SELECT h.label_id FROM hist h
    UNION
    SELECT unnest(sqlc.arg(filter_labels)::uuid[])
), known AS (
    SELECT c.label_id, c.category_id FROM dataset_categories c WHERE c.dataset_id = sqlc.arg(dataset_id)::uuid
), added AS (
    INSERT INTO dataset_categories (dataset_id, label_id, category_id)
    SELECT sqlc.arg(dataset_id)::uuid, l.id,
        ((SELECT coalesce(max(k.category_id), 0) FROM known k) + row_number() OVER (ORDER BY l.name))::int
    FROM labels l
    WHERE l.id IN (SELECT w.label_id FROM wanted w) AND l.id NOT IN (SELECT k.label_id FROM known k)
    RETURNING dataset_categories.label_id, dataset_categories.category_id
), cats AS (
    SELECT k.label_id, k.category_id FROM known k WHERE k.label_id IN (SELECT w.label_id FROM wanted w)
    UNION ALL
    SELECT a.label_id, a.category_id FROM added a
)
INSERT INTO dataset_version_labels (version_id, category_id, label_id, name, display_name,
    train_images, val_images, test_images, train_instances, val_instances, test_instances)
SELECT sqlc.arg(version_id)::uuid, c.category_id, l.id, l.name, l.display_name,
    coalesce(h.train_images, 0), coalesce(h.val_images, 0), coalesce(h.test_images, 0),
    coalesce(h.train_instances, 0), coalesce(h.val_instances, 0), coalesce(h.test_instances, 0)
FROM cats c
JOIN labels l ON l.id = c.label_id
LEFT JOIN hist h ON h.label_id = c.label_id;

-- name: VersionChangesInsert :exec
-- The diff against the previous published version: images added, removed,
-- or whose annotations' contents changed.
INSERT INTO dataset_version_changes (version_id, sha256, image_id, change)
SELECT sqlc.arg(version_id)::uuid, coalesce(cur.sha256, prev.sha256), coalesce(cur.image_id, prev.image_id),
    CASE WHEN prev.sha256 IS NULL THEN 'added'::dataset_change
         WHEN cur.sha256 IS NULL THEN 'removed'::dataset_change
         ELSE 'changed'::dataset_change END
FROM (SELECT m.sha256, m.image_id, m.digest FROM dataset_version_images m
      WHERE m.version_id = sqlc.arg(version_id)::uuid) cur
FULL JOIN (SELECT m.sha256, m.image_id, m.digest FROM dataset_version_images m
           WHERE m.version_id = sqlc.arg(previous_id)::uuid) prev ON prev.sha256 = cur.sha256
WHERE prev.sha256 IS NULL OR cur.sha256 IS NULL OR prev.digest <> cur.digest;

-- name: VersionFinish :one
-- Marks a version published with its counts. Without a previous version
-- every image counts as added.
UPDATE dataset_versions v SET state = 'published', step = 'published', progress = 1, published_at = now(),
    images = s.images, instances = s.instances, bytes = s.bytes,
    train_images = s.train_images, val_images = s.val_images, test_images = s.test_images,
    train_instances = s.train_instances, val_instances = s.val_instances, test_instances = s.test_instances,
    previous = sqlc.narg(previous)::int,
    added = CASE WHEN sqlc.narg(previous)::int IS NULL THEN s.images ELSE c.added END,
    removed = c.removed, changed = c.changed
FROM (
    SELECT count(*)::int AS images,
        coalesce(sum(cardinality(m.annotation_ids)), 0)::bigint AS instances,
        coalesce(sum(m.byte_size), 0)::bigint AS bytes,
        count(*) FILTER (WHERE m.split = 'train')::int AS train_images,
        count(*) FILTER (WHERE m.split = 'val')::int AS val_images,
        count(*) FILTER (WHERE m.split = 'test')::int AS test_images,
        coalesce(sum(cardinality(m.annotation_ids)) FILTER (WHERE m.split = 'train'), 0)::bigint AS train_instances,
        coalesce(sum(cardinality(m.annotation_ids)) FILTER (WHERE m.split = 'val'), 0)::bigint AS val_instances,
        coalesce(sum(cardinality(m.annotation_ids)) FILTER (WHERE m.split = 'test'), 0)::bigint AS test_instances
    FROM dataset_version_images m WHERE m.version_id = sqlc.arg(id)::uuid
) s, (
    SELECT count(*) FILTER (WHERE ch.change = 'added')::int AS added,
        count(*) FILTER (WHERE ch.change = 'removed')::int AS removed,
        count(*) FILTER (WHERE ch.change = 'changed')::int AS changed
    FROM dataset_version_changes ch WHERE ch.version_id = sqlc.arg(id)::uuid
) c
WHERE v.id = sqlc.arg(id)::uuid
RETURNING v.*;

-- name: VersionFail :exec
UPDATE dataset_versions SET state = 'failed', step = 'failed', error = @error
WHERE id = @id AND state = 'publishing';

-- name: VersionLabels :many
SELECT * FROM dataset_version_labels WHERE version_id = @version_id ORDER BY category_id;

-- name: VersionChanges :many
SELECT sha256, image_id FROM dataset_version_changes
WHERE version_id = @version_id AND change = @change
ORDER BY sha256 LIMIT @max_rows;

-- name: VersionManifestPage :many
-- The rows of a version's manifest with ordinals in (@after, @until],
-- limited to a subset: some splits, and images with an instance of some
-- labels (empty arrays for all). Pages are ranges of the primary key rather
-- than LIMITs: a range is an index range scan whatever plan the statement
-- cache settles on, so a page costs the same at the end of a
-- ten-million-row version as at its start.
SELECT m.ordinal, m.sha256, m.split, m.width, m.height, m.content_type, m.byte_size, m.annotation_labels
FROM dataset_version_images m
WHERE m.version_id = @version_id AND m.ordinal > @after AND m.ordinal <= @until
  AND (cardinality(@splits::text[]) = 0 OR m.split::text = ANY(@splits::text[]))
  AND (cardinality(@label_ids::uuid[]) = 0 OR m.annotation_labels && @label_ids::uuid[])
ORDER BY m.ordinal;

-- name: VersionImagesPage :many
-- VersionManifestPage without the labels, for the passes that need none.
SELECT m.ordinal, m.sha256, m.split, m.width, m.height, m.content_type, m.byte_size
FROM dataset_version_images m
WHERE m.version_id = @version_id AND m.ordinal > @after AND m.ordinal <= @until
  AND (cardinality(@splits::text[]) = 0 OR m.split::text = ANY(@splits::text[]))
  AND (cardinality(@label_ids::uuid[]) = 0 OR m.annotation_labels && @label_ids::uuid[])
ORDER BY m.ordinal;

-- name: VersionInstancesPage :many
-- The annotations the subset takes of the images with ordinals in
-- (@after, @until], in manifest order; k is an annotation's 1-based place
-- among its image's, fixed by the version. The database joins them, so no
-- list of ids travels.
SELECT m.ordinal, m.sha256, m.content_type, m.first_annotation, u.k::int AS k,
    a.id AS annotation_id, a.label_id, a.height, a.width, a.counts, a.bbox, a.area
FROM dataset_version_images m
CROSS JOIN LATERAL unnest(m.annotation_ids) WITH ORDINALITY AS u(id, k)
JOIN annotations a ON a.id = u.id
WHERE m.version_id = @version_id AND m.ordinal > @after AND m.ordinal <= @until
  AND (cardinality(@splits::text[]) = 0 OR m.split::text = ANY(@splits::text[]))
  AND (cardinality(@label_ids::uuid[]) = 0 OR a.label_id = ANY(@label_ids::uuid[]))
ORDER BY m.ordinal, u.k;

-- name: VersionSubsetSize :one
-- The images of a subset and their bytes, for an export's progress.
SELECT count(*)::int AS images, coalesce(sum(m.byte_size), 0)::bigint AS bytes
FROM dataset_version_images m
WHERE m.version_id = @version_id
  AND (cardinality(@splits::text[]) = 0 OR m.split::text = ANY(@splits::text[]))
  AND (cardinality(@label_ids::uuid[]) = 0 OR m.annotation_labels && @label_ids::uuid[]);

-- name: ExportGet :one
SELECT * FROM dataset_exports WHERE id = @id;

-- name: ExportGetBySubset :one
SELECT * FROM dataset_exports
WHERE version_id = @version_id AND format = @format AND mask_format = @mask_format
  AND splits = @splits::text[] AND label_ids = @label_ids::uuid[] AND augment = @augment;

-- name: ExportInsert :one
-- A new export of a subset; nothing when another request made it first.
INSERT INTO dataset_exports (version_id, format, mask_format, splits, label_ids, augment, requested_by)
VALUES (@version_id, @format, @mask_format, @splits::text[], @label_ids::uuid[], @augment, @requested_by)
ON CONFLICT (version_id, format, mask_format, splits, label_ids, augment) DO NOTHING
RETURNING *;

-- name: ExportRetry :one
-- A failed export asked for again.
UPDATE dataset_exports SET state = 'queued', progress = 0, error = NULL, requested_by = @requested_by
WHERE id = @id AND state = 'failed'
RETURNING *;

-- name: ExportSetJob :exec
UPDATE dataset_exports SET job_id = @job_id WHERE id = @id;

-- name: ExportList :many
SELECT * FROM dataset_exports WHERE version_id = @version_id ORDER BY created_at, id;

-- name: ExportBegin :one
-- Starts (or restarts) building an export; no row when it is already
-- built or gone.
UPDATE dataset_exports SET state = 'running', progress = 0
WHERE id = @id AND state IN ('queued', 'running')
RETURNING *;

-- name: ExportProgress :exec
UPDATE dataset_exports SET progress = @progress WHERE id = @id AND state = 'running';

-- name: ExportFinish :exec
UPDATE dataset_exports SET state = 'ready', progress = 1, blob_key = @blob_key, byte_size = @byte_size,
    finished_at = now()
WHERE id = @id;

-- name: ExportFail :exec
UPDATE dataset_exports SET state = 'failed', error = @error, finished_at = now()
WHERE id = @id AND state IN ('queued', 'running');

-- name: DatasetPage :many
-- One page of DatasetList, after (lower(name), id) of the page before.
SELECT sqlc.embed(d),
    coalesce((SELECT max(v.number) FROM dataset_versions v
              WHERE v.dataset_id = d.id AND v.state = 'published'), 0)::int AS latest_version,
    (SELECT count(*) FROM dataset_versions v WHERE v.dataset_id = d.id)::int AS versions,
    lower(d.name)::text AS sort_name
FROM datasets d
WHERE sqlc.narg(after_name)::text IS NULL OR (lower(d.name), d.id) > (sqlc.narg(after_name)::text, @after_id::uuid)
ORDER BY lower(d.name), d.id
LIMIT @lim;
