-- name: TrainingArtifactReferenced :one
-- Whether a training records the artifact stored under this key (orphan
-- sweep: an upload whose transaction never committed leaves a blob no
-- training names).
SELECT EXISTS (SELECT 1 FROM trainings WHERE artifact_key = @key::text);

-- name: EndpointMoveTrained :one
-- Moves the models trainings registered on the built-in worker at one of
-- @from_urls (the address the worker had before this start: it listens on a
-- new loopback port at each) to @to_url, where it listens now, and frees
-- the slots the process before held there. Returns how many moved. A
-- trained model an admin put on other endpoints keeps them.
WITH moved AS (
    UPDATE model_endpoints e SET base_url = @to_url::text, failures = 0, cool_until = NULL, last_error = NULL
    WHERE e.base_url = ANY(@from_urls::text[]) AND e.base_url <> @to_url::text
      AND e.model_id IN (SELECT t.model_id FROM trainings t WHERE t.model_id IS NOT NULL)
      AND NOT EXISTS (SELECT 1 FROM model_endpoints o WHERE o.model_id = e.model_id AND o.base_url = @to_url::text)
    RETURNING e.id
), freed AS (
    UPDATE endpoint_slots SET held_until = NULL, holder = NULL
    WHERE endpoint_id IN (SELECT id FROM moved)
    RETURNING 1
)
SELECT count(*)::int AS moved FROM moved;
