-- name: WebhookEndpointInsert :one
INSERT INTO webhook_endpoints (url, events, secret, description, created_by)
VALUES (@url, @events::text[], @secret, @description, @created_by)
RETURNING *;

-- name: WebhookEndpointGet :one
SELECT * FROM webhook_endpoints WHERE id = @id;

-- name: WebhookEndpointList :many
-- Every endpoint, newest first, with how its deliveries stand.
SELECT sqlc.embed(e),
    (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.state = 'pending')::int AS pending
FROM webhook_endpoints e
ORDER BY e.created_at DESC, e.id DESC;

-- name: WebhookEndpointUpdate :one
-- Changes what an admin may change. Enabling an endpoint clears its run of
-- failures, so it gets a fresh chance.
UPDATE webhook_endpoints SET
    url = coalesce(sqlc.narg(url), url),
    events = coalesce(sqlc.narg(events)::text[], events),
    description = coalesce(sqlc.narg(description), description),
    enabled = coalesce(sqlc.narg(enabled), enabled),
    consecutive_failures = CASE WHEN sqlc.narg(enabled)::boolean THEN 0 ELSE consecutive_failures END,
    failing_since = CASE WHEN sqlc.narg(enabled)::boolean THEN NULL ELSE failing_since END,
    disabled_at = CASE WHEN sqlc.narg(enabled)::boolean THEN NULL
                       WHEN NOT sqlc.narg(enabled)::boolean AND enabled THEN now() ELSE disabled_at END,
    disabled_reason = CASE WHEN sqlc.narg(enabled) IS NOT NULL THEN NULL ELSE disabled_reason END,
    updated_at = now()
WHERE id = @id
RETURNING *;

-- name: WebhookEndpointDelete :execrows
DELETE FROM webhook_endpoints WHERE id = @id;

-- name: WebhookEndpointsDisabled :many
-- Endpoints disabled for failing, for the notice on the admin pages.
SELECT id, url, disabled_at, disabled_reason FROM webhook_endpoints
WHERE NOT enabled AND disabled_reason IS NOT NULL
ORDER BY disabled_at DESC;

-- name: WebhookEndpointSucceeded :exec
UPDATE webhook_endpoints SET consecutive_failures = 0, failing_since = NULL WHERE id = @id;

-- name: WebhookEndpointFailed :one
-- Counts a failed try; once the run is at least @max_failures long and
-- began at least @min_duration ago, the endpoint is disabled with a reason.
UPDATE webhook_endpoints SET
    consecutive_failures = consecutive_failures + 1,
    failing_since = coalesce(failing_since, now()),
    enabled = NOT (enabled AND consecutive_failures + 1 >= @max_failures::int
                   AND coalesce(failing_since, now()) <= now() - make_interval(secs => @min_seconds::float8)),
    disabled_at = CASE WHEN enabled AND consecutive_failures + 1 >= @max_failures::int
                   AND coalesce(failing_since, now()) <= now() - make_interval(secs => @min_seconds::float8) THEN now() ELSE disabled_at END,
    disabled_reason = CASE WHEN enabled AND consecutive_failures + 1 >= @max_failures::int
                   AND coalesce(failing_since, now()) <= now() - make_interval(secs => @min_seconds::float8)
                   THEN @reason::text ELSE disabled_reason END
WHERE id = @id
RETURNING enabled, consecutive_failures;

-- name: WebhookDeliveryInsert :many
-- One delivery of an event to each enabled endpoint that asked for it.
INSERT INTO webhook_deliveries (endpoint_id, event, object_type, object_id, object_path, object_state)
SELECT e.id, @event, @object_type, @object_id, @object_path, sqlc.narg(object_state)
FROM webhook_endpoints e WHERE e.enabled AND e.events @> ARRAY[@event::text]
RETURNING id;

-- name: WebhookDeliveryGet :one
SELECT sqlc.embed(d), e.url, e.secret, e.enabled
FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
WHERE d.id = @id;

-- name: WebhookDeliveryOfEndpoint :one
SELECT * FROM webhook_deliveries WHERE id = @id AND endpoint_id = @endpoint_id;

-- name: WebhookDeliveryList :many
-- An endpoint's latest deliveries, newest first.
SELECT * FROM webhook_deliveries
WHERE endpoint_id = @endpoint_id
ORDER BY created_at DESC, id DESC
LIMIT @max_rows;

-- name: WebhookAttemptsOfDeliveries :many
SELECT * FROM webhook_attempts WHERE delivery_id = ANY (@ids::uuid[]) ORDER BY delivery_id, id;

-- name: WebhookAttemptInsert :exec
INSERT INTO webhook_attempts (delivery_id, attempt, started_at, duration_ms, status_code, error)
VALUES (@delivery_id, @attempt, @started_at, @duration_ms, @status_code, @error);

-- name: WebhookDeliveryRecord :exec
-- Records a try: @state is delivered, pending (to be retried) or failed.
UPDATE webhook_deliveries SET
    attempts = @attempts,
    state = @state,
    last_status = @last_status,
    last_error = @last_error,
    last_attempt_at = @last_attempt_at,
    last_duration_ms = @last_duration_ms,
    finished_at = CASE WHEN @state <> 'pending' THEN now() END
WHERE id = @id;

-- name: WebhookDeliveryRequeue :exec
-- "Send again": back to pending; its tries so far stay on record.
UPDATE webhook_deliveries SET state = 'pending', finished_at = NULL WHERE id = @id;
