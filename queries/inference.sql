-- name: ModelInsert :one
INSERT INTO models (name, version, task, timeout_ms, enabled)
VALUES (@name, @version, @task, @timeout_ms, @enabled)
RETURNING *;

-- name: ModelGet :one
SELECT * FROM models WHERE id = @id;

-- name: ModelGetByNameVersion :one
SELECT * FROM models WHERE name = @name AND version = @version;

-- name: ModelList :many
SELECT * FROM models ORDER BY name, version;

-- name: ModelEnabledIDs :many
-- The enabled models that propose masks when an image is accepted.
SELECT id FROM models WHERE enabled AND task = 'segmentation' ORDER BY id;

-- name: ModelEnabledOfTask :many
-- The enabled models of a task, the most recently registered first: the
-- hub answers prompts with the first.
SELECT * FROM models WHERE enabled AND task = @task ORDER BY created_at DESC, id;

-- name: ModelUpdate :one
UPDATE models SET timeout_ms = @timeout_ms, enabled = @enabled, updated_at = now()
WHERE id = @id RETURNING *;

-- name: ModelSetCheck :exec
-- The outcome of a health and metadata check.
UPDATE models SET binary_data = @binary_data, label_hints = @label_hints,
    problems = @problems, checked_at = now(), updated_at = now()
WHERE id = @id;

-- name: ModelSetLayout :exec
-- How the hub reads the model, as registered and completed by the check.
UPDATE models SET layout = @layout, labels = @labels, score_threshold = @score_threshold,
    iou_threshold = @iou_threshold, mask_threshold = @mask_threshold, max_instances = @max_instances,
    input_size = @input_size, input_name = @input_name, label_tag = @label_tag, updated_at = now()
WHERE id = @id;

-- name: ModelSetBatch :exec
-- How many images one request may carry and how long the hub waits to
-- gather them (docs/batching.md).
UPDATE models SET max_batch = @max_batch, batch_window_ms = @batch_window_ms, updated_at = now()
WHERE id = @id;

-- name: ModelSetHeaders :exec
-- The request headers of the model's endpoints: secrets, read back only by
-- the jobs that send them (RunBegin) and the check (ModelHeaders).
UPDATE models SET headers = @headers, updated_at = now() WHERE id = @id;

-- name: ModelHeaders :one
SELECT headers FROM models WHERE name = @name AND version = @version;

-- name: EndpointList :many
SELECT * FROM model_endpoints WHERE model_id = @model_id ORDER BY base_url;

-- name: EndpointListAll :many
SELECT e.*, m.name AS model_name, m.version AS model_version,
    (SELECT count(*) FROM endpoint_slots s WHERE s.endpoint_id = e.id AND s.held_until > now())::int AS in_flight
FROM model_endpoints e JOIN models m ON m.id = e.model_id
ORDER BY m.name, m.version, e.base_url;

-- name: EndpointUpsert :one
INSERT INTO model_endpoints (model_id, base_url, capacity)
VALUES (@model_id, @base_url, @capacity)
ON CONFLICT (model_id, base_url) DO UPDATE SET capacity = EXCLUDED.capacity
RETURNING *;

-- name: EndpointDeleteOthers :exec
-- Endpoints of the model that are no longer registered.
DELETE FROM model_endpoints WHERE model_id = @model_id AND NOT (base_url = ANY(@keep::text[]));

-- name: EndpointSlotsAdd :exec
-- One slot row per unit of capacity.
INSERT INTO endpoint_slots (endpoint_id, slot)
SELECT sqlc.arg(endpoint_id)::uuid, generate_series(0, sqlc.arg(capacity)::int - 1)
ON CONFLICT DO NOTHING;

-- name: EndpointSlotsTrim :exec
-- Drops slots past a lowered capacity (a request holding one finishes; its
-- release finds no row).
DELETE FROM endpoint_slots WHERE endpoint_id = @endpoint_id AND slot >= @capacity::int;

-- name: SlotAcquire :one
-- Takes a free slot of the least-loaded endpoint of a model that is not
-- cooling off. Rows locked by another dispatcher are skipped, so no slot is
-- handed out twice and the endpoint's requests in flight never exceed its
-- capacity, whatever the number of hub processes.
WITH load AS (
    SELECT e.id, e.base_url, e.capacity,
        count(*) FILTER (WHERE s.held_until > now()) AS busy
    FROM model_endpoints e JOIN endpoint_slots s ON s.endpoint_id = e.id
    WHERE e.model_id = @model_id AND (e.cool_until IS NULL OR e.cool_until <= now())
    GROUP BY e.id
), pick AS (
    SELECT s.endpoint_id, s.slot, l.base_url
    FROM endpoint_slots s JOIN load l ON l.id = s.endpoint_id
    WHERE s.held_until IS NULL OR s.held_until <= now()
    ORDER BY l.busy::float8 / l.capacity, l.busy, s.endpoint_id, s.slot
    LIMIT 1
    FOR UPDATE OF s SKIP LOCKED
)
UPDATE endpoint_slots s SET held_until = now() + make_interval(secs => @hold_seconds::float8), holder = @holder
FROM pick
WHERE s.endpoint_id = pick.endpoint_id AND s.slot = pick.slot
RETURNING s.endpoint_id, s.slot, pick.base_url;

-- name: SlotRelease :exec
-- Gives a slot back; after a good answer (@succeeded) also clears the
-- endpoint's failure count, in the same round trip.
WITH released AS (
    UPDATE endpoint_slots SET held_until = NULL, holder = NULL
    WHERE endpoint_id = @endpoint_id AND slot = @slot AND holder = @holder
)
UPDATE model_endpoints SET failures = 0, cool_until = NULL, last_ok_at = now()
WHERE id = @endpoint_id AND @succeeded::boolean
  AND (failures <> 0 OR cool_until IS NOT NULL OR last_ok_at IS NULL OR last_ok_at < now() - interval '5 seconds');

-- name: EndpointsCoolingUntil :one
-- When the first endpoint of a model that is cooling off comes back; NULL
-- when none is cooling off.
SELECT coalesce(min(cool_until), now())::timestamptz AS until FROM model_endpoints
WHERE model_id = @model_id AND cool_until > now();

-- name: EndpointFailed :one
-- A retryable failure. After @threshold in a row the endpoint cools off; a
-- failure of the first request after a cool-off starts another.
UPDATE model_endpoints SET
    failures = failures + 1,
    last_error = @last_error,
    cool_until = CASE WHEN failures + 1 >= @threshold::int
        THEN now() + make_interval(secs => @cool_seconds::float8) ELSE cool_until END
WHERE id = @id
RETURNING failures, cool_until;

-- name: EndpointInFlight :many
SELECT e.id, e.base_url, m.name AS model_name, m.version AS model_version, e.capacity,
    (SELECT count(*) FROM endpoint_slots s WHERE s.endpoint_id = e.id AND s.held_until > now())::int AS in_flight,
    (e.cool_until IS NOT NULL AND e.cool_until > now())::boolean AS cooling
FROM model_endpoints e JOIN models m ON m.id = e.model_id;

-- name: RunsQueue :exec
-- Queued runs for images of the given ids and models that have none yet.
INSERT INTO inference_runs (image_id, model_id)
SELECT i, m FROM unnest(@image_ids::uuid[]) AS i, unnest(@model_ids::uuid[]) AS m
ON CONFLICT DO NOTHING;

-- name: RunsMissingForModel :many
-- Images waiting for inference that have no run for a newly enabled model.
SELECT i.id FROM images i
WHERE i.status = 'awaiting_inference'
  AND NOT EXISTS (SELECT 1 FROM inference_runs r WHERE r.image_id = i.id AND r.model_id = @model_id)
ORDER BY i.created_at, i.id
LIMIT @batch;

-- name: RunBegin :one
-- Starts an attempt of a run whose image still waits for inference (or
-- whatever its state, for an evaluation), and returns all the job needs of
-- the image and the model in one round trip; runs is how many models the
-- image has runs of (one: no committee to measure when it settles), prompts
-- whether an interactive model is enabled (one that sends the image to
-- review also queues its preparation for prompts, in the same transaction).
UPDATE inference_runs r SET state = 'running', attempt = @attempt, updated_at = now()
FROM images i, models m
WHERE r.image_id = @image_id AND r.model_id = @model_id AND r.state IN ('queued', 'running')
  AND i.id = r.image_id AND m.id = r.model_id
  AND (i.status = 'awaiting_inference' OR @evaluation::boolean) AND i.sha256 IS NOT NULL
RETURNING i.sha256, i.width, i.height, m.name, m.version, m.enabled, m.timeout_ms, m.binary_data, m.label_hints,
    m.layout, m.labels, m.score_threshold, m.iou_threshold, m.mask_threshold, m.max_instances, m.input_size,
    m.input_name, m.headers, m.max_batch, m.batch_window_ms, m.label_tag,
    ARRAY(SELECT l.name FROM image_labels il JOIN labels l ON l.id = il.label_id
          WHERE il.image_id = i.id ORDER BY l.name)::text[] AS hints,
    (SELECT count(*) FROM inference_runs r2 WHERE r2.image_id = i.id)::int AS runs,
    EXISTS (SELECT 1 FROM models mi WHERE mi.enabled AND mi.task = 'interactive')::boolean AS prompts;

-- name: RunRequeue :exec
-- A retryable failure: the run waits for its next attempt.
UPDATE inference_runs SET state = 'queued', error_kind = @error_kind, last_error = @last_error, updated_at = now()
WHERE image_id = @image_id AND model_id = @model_id AND state IN ('queued', 'running');

-- name: RunComplete :one
-- Stores a run's proposals and marks it succeeded, holding the image's row
-- lock so that runs ending together settle the image in turn. Nothing is
-- stored unless the run was still pending: a second copy of a job that
-- already completed stores nothing.
WITH img AS (
    SELECT images.id AS locked_id FROM images WHERE images.id = @image_id FOR UPDATE
), run AS (
    UPDATE inference_runs SET state = 'succeeded', instances = @instances, latency_ms = @latency_ms,
        endpoint = @endpoint, error_kind = NULL, last_error = NULL, updated_at = now()
    WHERE inference_runs.image_id = (SELECT locked_id FROM img) AND inference_runs.model_id = sqlc.arg(model_id)::uuid
      AND inference_runs.state IN ('queued', 'running')
    RETURNING inference_runs.image_id
), ins AS (
    INSERT INTO proposals (id, image_id, model_id, rank, label_id, score, bbox, area, height, width, counts)
    SELECT u.id, sqlc.arg(image_id)::uuid, sqlc.arg(model_id)::uuid, (u.n - 1)::int, (@label_ids::uuid[])[u.n], (@scores::real[])[u.n],
        ARRAY[(@xs::int[])[u.n], (@ys::int[])[u.n], (@ws::int[])[u.n], (@hs::int[])[u.n]],
        (@areas::int[])[u.n], sqlc.arg(height)::int, sqlc.arg(width)::int, (@counts::text[])[u.n]
    FROM unnest(@ids::uuid[]) WITH ORDINALITY AS u(id, n)
    WHERE EXISTS (SELECT 1 FROM run)
)
SELECT count(*)::int FROM run;

-- name: RunSetReportedVersion :exec
-- The version the model said it is (Label Studio's model_version), recorded
-- before the run completes.
UPDATE inference_runs SET reported_version = @reported_version
WHERE image_id = @image_id AND model_id = @model_id AND state IN ('queued', 'running');

-- name: RunFail :exec
UPDATE inference_runs SET state = 'failed', error_kind = @error_kind, last_error = @last_error,
    endpoint = sqlc.narg(endpoint), updated_at = now()
WHERE image_id = @image_id AND model_id = @model_id AND state IN ('queued', 'running');

-- name: RunsForImage :many
SELECT r.*, m.name AS model_name, m.version AS model_version
FROM inference_runs r JOIN models m ON m.id = r.model_id
WHERE r.image_id = @image_id ORDER BY m.name, m.version;

-- name: ImageSettle :exec
-- Moves an image on once none of its runs is pending: to review (with its
-- review item, least confident first) when some model proposed, to failed
-- when none could, with @failed_reason (lifecycle.ReasonNoProposals). The
-- caller holds the image's row lock.
WITH s AS (
    SELECT count(*) FILTER (WHERE state IN ('queued', 'running')) AS pending,
           count(*) FILTER (WHERE state = 'succeeded') AS succeeded
    FROM inference_runs r WHERE r.image_id = sqlc.arg(image_id)::uuid
), moved AS (
    UPDATE images i SET
        status = CASE WHEN s.succeeded > 0 THEN 'awaiting_review'::image_status ELSE 'failed'::image_status END,
        reason = CASE WHEN s.succeeded > 0 THEN NULL ELSE sqlc.arg(failed_reason)::text END,
        updated_at = now()
    FROM s
    WHERE i.id = sqlc.arg(image_id)::uuid AND i.status = 'awaiting_inference' AND s.pending = 0
    RETURNING i.id, i.status
)
INSERT INTO review_items (image_id, confidence)
SELECT moved.id, (SELECT avg(p.score) FROM proposals p WHERE p.image_id = moved.id)::real
FROM moved WHERE moved.status = 'awaiting_review'
ON CONFLICT (image_id, kind) DO NOTHING;

-- name: ProposalsForImage :many
SELECT p.*, l.name AS label, m.name AS model_name, m.version AS model_version
FROM proposals p JOIN labels l ON l.id = p.label_id JOIN models m ON m.id = p.model_id
WHERE p.image_id = @image_id ORDER BY m.name, m.version, p.rank;

-- name: LabelLookup :many
-- Every way a model may name a label: the name, the external id, the display name.
SELECT id, name, external_id, display_name FROM labels;

-- name: SlotRenew :one
-- A slot handed from one request to the next in the same process: the new
-- holder takes it over with its own deadline, and the good answer that
-- freed it clears the endpoint's failure count. No row means the slot was
-- lost meanwhile (its hold expired, or the capacity was lowered).
WITH renewed AS (
    UPDATE endpoint_slots SET held_until = now() + make_interval(secs => @hold_seconds::float8), holder = @new_holder
    WHERE endpoint_slots.endpoint_id = @endpoint_id AND endpoint_slots.slot = @slot AND endpoint_slots.holder = @old_holder
    RETURNING endpoint_slots.endpoint_id
), healthy AS (
    UPDATE model_endpoints SET failures = 0, cool_until = NULL, last_ok_at = now()
    WHERE model_endpoints.id = (SELECT renewed.endpoint_id FROM renewed)
      AND (failures <> 0 OR cool_until IS NOT NULL OR last_ok_at IS NULL OR last_ok_at < now() - interval '5 seconds')
)
SELECT count(*)::int FROM renewed;

-- name: EndpointSucceeded :exec
-- A good answer: the endpoint's failure count starts again from zero.
UPDATE model_endpoints SET failures = 0, cool_until = NULL, last_ok_at = now()
WHERE id = @id AND (failures <> 0 OR cool_until IS NOT NULL OR last_ok_at IS NULL OR last_ok_at < now() - interval '5 seconds');

-- name: ModelSetEmbed :exec
UPDATE models SET embed_model_id = sqlc.narg(embed_model_id), updated_at = now() WHERE id = @id;

-- name: PromptsReadyFor :one
-- Whether an image that waits for review has an enabled interactive model
-- to prepare it for.
SELECT EXISTS (
    SELECT 1 FROM images i, models m
    WHERE i.id = @image_id AND i.status = 'awaiting_review' AND m.enabled AND m.task = 'interactive'
)::boolean;
